"""One contract for every secrets backend: the encrypted file, Vault through hvac against
the KV v2 test server, and a real Vault when SWITCHBOARD_TEST_VAULT_URL/_TOKEN are set."""

import os
import uuid
from collections.abc import Iterator

import hvac.exceptions
import pytest

from control_plane.secrets.store import (
    EncryptedFileSecretStore,
    SecretStore,
    VaultSecretStore,
)
from switchboard.demo.run import free_port
from tests.servers import LiveServer
from tests.servers.vault_kv2 import vault_kv2_app

BACKENDS = ["encrypted-file", "vault-test-server"]
if os.environ.get("SWITCHBOARD_TEST_VAULT_URL"):
    BACKENDS.append("vault")


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path) -> Iterator[SecretStore]:
    if request.param == "encrypted-file":
        from cryptography.fernet import Fernet

        yield EncryptedFileSecretStore(tmp_path / "secrets", Fernet.generate_key())
    elif request.param == "vault-test-server":
        with LiveServer(vault_kv2_app(token="root-token"), free_port()) as vault:
            yield VaultSecretStore(vault.url, "root-token")
    else:
        yield VaultSecretStore(
            os.environ["SWITCHBOARD_TEST_VAULT_URL"], os.environ["SWITCHBOARD_TEST_VAULT_TOKEN"]
        )


@pytest.fixture
def tenant() -> str:
    return f"ten_{uuid.uuid4().hex[:12]}"


async def test_put_versions_and_metadata(store, tenant):
    first = await store.put(tenant, "deepgram", "dg-key-1")
    second = await store.put(tenant, "deepgram", "dg-key-2")
    assert (first.name, first.version, second.version) == ("deepgram", 1, 2)
    assert second.updated_at >= first.updated_at
    meta = await store.metadata(tenant, "deepgram")
    assert (meta.name, meta.version) == ("deepgram", 2)
    assert await store.reveal(tenant, "deepgram") == "dg-key-2"


async def test_tenants_never_see_each_others_secrets(store, tenant):
    other = f"ten_{uuid.uuid4().hex[:12]}"
    await store.put(tenant, "twilio", "mine")
    assert await store.reveal(other, "twilio") is None
    assert await store.metadata(other, "twilio") is None
    assert await store.list(other) == []
    assert [m.name for m in await store.list(tenant)] == ["twilio"]


async def test_list_and_delete(store, tenant):
    for name in ("cartesia", "anthropic"):
        await store.put(tenant, name, f"{name}-key")
    assert [m.name for m in await store.list(tenant)] == ["anthropic", "cartesia"]
    assert await store.delete(tenant, "anthropic") is True
    assert await store.delete(tenant, "anthropic") is False
    assert await store.reveal(tenant, "anthropic") is None
    assert [m.name for m in await store.list(tenant)] == ["cartesia"]


async def test_missing_secrets_are_none(store, tenant):
    assert await store.metadata(tenant, "nothing") is None
    assert await store.reveal(tenant, "nothing") is None


def test_the_encrypted_files_hold_no_plaintext_and_need_their_key(tmp_path):
    import asyncio

    from cryptography.fernet import Fernet

    root = tmp_path / "secrets"
    asyncio.run(EncryptedFileSecretStore(root, Fernet.generate_key()).put("t", "k", "sk-PLAIN"))
    (only,) = [p for p in root.rglob("*") if p.is_file()]
    assert b"sk-PLAIN" not in only.read_bytes()
    with pytest.raises(RuntimeError, match="cannot be decrypted"):
        asyncio.run(EncryptedFileSecretStore(root, Fernet.generate_key()).list("t"))


async def test_each_secret_is_its_own_file_and_a_replaced_value_is_not_kept(tmp_path):
    from cryptography.fernet import Fernet

    root = tmp_path / "secrets"
    store = EncryptedFileSecretStore(root, Fernet.generate_key())
    for n in range(50):
        await store.put("ten_busy", f"key-{n}", "x" * 40)
    first = await store.put("ten_1", "twilio", "v" * 40)
    size = (root / "ten_1" / "twilio.secret").stat().st_size
    for _ in range(2, 21):
        meta = await store.put("ten_1", "twilio", "v" * 40)
    assert (first.version, meta.version) == (1, 20)
    # One file per secret; the twentieth version is no bigger than the first.
    assert len(list(root.rglob("*.secret"))) == 51
    assert (root / "ten_1" / "twilio.secret").stat().st_size == size
    assert await store.reveal("ten_1", "twilio") == "v" * 40
    with pytest.raises(ValueError, match="cannot name a secret"):
        await store.reveal("../ten_1", "twilio")


def test_the_single_file_of_earlier_versions_is_split_into_one_per_secret(tmp_path):
    import asyncio
    import json

    from cryptography.fernet import Fernet

    key = Fernet.generate_key()
    legacy = tmp_path / "secrets.enc"
    old = {
        "ten_1": {"twilio": {"versions": ["old", "new"], "updated_at": "2026-11-30T10:00:00+00:00"}}
    }
    legacy.write_bytes(Fernet(key).encrypt(json.dumps(old).encode()))
    store = EncryptedFileSecretStore(tmp_path / "secrets", key, legacy=legacy)
    assert asyncio.run(store.reveal("ten_1", "twilio")) == "new"
    assert asyncio.run(store.metadata("ten_1", "twilio")).version == 2
    assert not legacy.exists()


async def test_vault_refuses_a_wrong_token():
    with LiveServer(vault_kv2_app(token="root-token"), free_port()) as vault:
        store = VaultSecretStore(vault.url, "not-the-token")
        with pytest.raises(hvac.exceptions.Forbidden):
            await store.put("t", "k", "v")
