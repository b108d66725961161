"""Per-tenant secrets (provider API keys, telephony auth tokens).

Two backends behind one protocol: HashiCorp Vault KV v2 through hvac (production) and an
encrypted file (embedded default). Values go in and, for the media plane only, come out
through ``reveal``; the API never returns them. Secrets live under ``tenants/<tenant_id>/``.
"""

import asyncio
import json
import os
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import hvac
import hvac.exceptions
from cryptography.fernet import Fernet, InvalidToken


@dataclass(frozen=True, slots=True)
class SecretMeta:
    name: str
    version: int
    updated_at: datetime


class SecretStore(Protocol):
    async def put(self, tenant_id: str, name: str, value: str) -> SecretMeta: ...

    async def metadata(self, tenant_id: str, name: str) -> SecretMeta | None: ...

    async def list(self, tenant_id: str) -> list[SecretMeta]: ...

    async def delete(self, tenant_id: str, name: str) -> bool: ...

    async def reveal(self, tenant_id: str, name: str) -> str | None: ...


def _path(tenant_id: str, name: str = "") -> str:
    return f"tenants/{tenant_id}/{name}" if name else f"tenants/{tenant_id}"


def _now() -> datetime:
    return datetime.now(UTC)


class EncryptedFileSecretStore:
    """One Fernet-encrypted JSON file (AES-128-CBC + HMAC-SHA256), rewritten atomically."""

    def __init__(self, path: Path, key: str | bytes):
        self._path = path
        self._fernet = Fernet(key)
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def _load(self) -> dict:
        if not self._path.exists():
            return {}
        try:
            return json.loads(self._fernet.decrypt(self._path.read_bytes()))
        except InvalidToken as e:
            raise RuntimeError(f"{self._path} cannot be decrypted with this secrets key") from e

    def _save(self, data: dict) -> None:
        blob = self._fernet.encrypt(json.dumps(data).encode())
        fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=".secrets-")
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._path)  # readers see the old file or the new one, never half

    @staticmethod
    def _meta(name: str, entry: dict) -> SecretMeta:
        return SecretMeta(name, len(entry["versions"]), datetime.fromisoformat(entry["updated_at"]))

    def _put(self, tenant_id: str, name: str, value: str) -> SecretMeta:
        with self._lock:
            data = self._load()
            entry = data.setdefault(tenant_id, {}).setdefault(name, {"versions": []})
            entry["versions"].append(value)
            entry["updated_at"] = _now().isoformat()
            self._save(data)
            return self._meta(name, entry)

    def _get(self, tenant_id: str, name: str) -> dict | None:
        with self._lock:
            return self._load().get(tenant_id, {}).get(name)

    def _delete(self, tenant_id: str, name: str) -> bool:
        with self._lock:
            data = self._load()
            if data.get(tenant_id, {}).pop(name, None) is None:
                return False
            self._save(data)
            return True

    async def put(self, tenant_id: str, name: str, value: str) -> SecretMeta:
        return await asyncio.to_thread(self._put, tenant_id, name, value)

    async def metadata(self, tenant_id: str, name: str) -> SecretMeta | None:
        entry = await asyncio.to_thread(self._get, tenant_id, name)
        return self._meta(name, entry) if entry else None

    async def list(self, tenant_id: str) -> list[SecretMeta]:
        with self._lock:
            entries = self._load().get(tenant_id, {})
        return [self._meta(name, entry) for name, entry in sorted(entries.items())]

    async def delete(self, tenant_id: str, name: str) -> bool:
        return await asyncio.to_thread(self._delete, tenant_id, name)

    async def reveal(self, tenant_id: str, name: str) -> str | None:
        entry = await asyncio.to_thread(self._get, tenant_id, name)
        return entry["versions"][-1] if entry else None


class VaultSecretStore:
    """HashiCorp Vault KV v2 through hvac (its client is blocking: run in a thread)."""

    def __init__(self, url: str, token: str, mount: str = "secret"):
        self._client = hvac.Client(url=url, token=token)
        self._kv = self._client.secrets.kv.v2
        self._mount = mount

    @staticmethod
    def _meta(name: str, data: dict) -> SecretMeta:
        updated = data.get("updated_time") or data["created_time"]
        return SecretMeta(
            name=name,
            version=int(data.get("current_version") or data.get("version") or 0),
            updated_at=datetime.fromisoformat(updated.replace("Z", "+00:00")),
        )

    def _put(self, tenant_id: str, name: str, value: str) -> SecretMeta:
        self._kv.create_or_update_secret(
            path=_path(tenant_id, name), secret={"value": value}, mount_point=self._mount
        )
        meta = self._metadata(tenant_id, name)
        assert meta is not None
        return meta

    def _metadata(self, tenant_id: str, name: str) -> SecretMeta | None:
        try:
            r = self._kv.read_secret_metadata(path=_path(tenant_id, name), mount_point=self._mount)
        except hvac.exceptions.InvalidPath:
            return None
        return self._meta(name, r["data"])

    def _list(self, tenant_id: str) -> list[SecretMeta]:
        try:
            keys = self._kv.list_secrets(path=_path(tenant_id), mount_point=self._mount)
        except hvac.exceptions.InvalidPath:
            return []
        names = sorted(k for k in keys["data"]["keys"] if not k.endswith("/"))
        return [m for n in names if (m := self._metadata(tenant_id, n)) is not None]

    def _delete(self, tenant_id: str, name: str) -> bool:
        if self._metadata(tenant_id, name) is None:
            return False
        self._kv.delete_metadata_and_all_versions(
            path=_path(tenant_id, name), mount_point=self._mount
        )
        return True

    def _reveal(self, tenant_id: str, name: str) -> str | None:
        try:
            r = self._kv.read_secret_version(
                path=_path(tenant_id, name), mount_point=self._mount, raise_on_deleted_version=True
            )
        except hvac.exceptions.InvalidPath:
            return None
        return r["data"]["data"].get("value")

    async def put(self, tenant_id: str, name: str, value: str) -> SecretMeta:
        return await asyncio.to_thread(self._put, tenant_id, name, value)

    async def metadata(self, tenant_id: str, name: str) -> SecretMeta | None:
        return await asyncio.to_thread(self._metadata, tenant_id, name)

    async def list(self, tenant_id: str) -> list[SecretMeta]:
        return await asyncio.to_thread(self._list, tenant_id)

    async def delete(self, tenant_id: str, name: str) -> bool:
        return await asyncio.to_thread(self._delete, tenant_id, name)

    async def reveal(self, tenant_id: str, name: str) -> str | None:
        return await asyncio.to_thread(self._reveal, tenant_id, name)


def open_secret_store(
    *,
    vault_url: str | None,
    vault_token: str | None,
    vault_mount: str,
    secrets_key: str | None,
    data_dir: Path,
) -> SecretStore:
    """The one place the secrets backend is chosen."""
    if vault_url:
        if not vault_token:
            raise RuntimeError("SWITCHBOARD_VAULT_URL is set but SWITCHBOARD_VAULT_TOKEN is not")
        return VaultSecretStore(vault_url, vault_token, vault_mount)
    key = secrets_key
    if key is None:
        # Development only (production refuses to start without a key): a generated key
        # kept beside the data, so secrets survive restarts on this machine.
        key_file = data_dir / "secrets.key"
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(Fernet.generate_key())
        key = key_file.read_text().strip()
    return EncryptedFileSecretStore(data_dir / "secrets.enc", key)
