"""Per-tenant secrets (provider API keys, telephony auth tokens).

Two backends behind one protocol: HashiCorp Vault KV v2 through hvac (production) and
encrypted files, one per secret (embedded default). Values go in and, for the media plane
only, come out through ``reveal``; the API never returns them. Secrets live under
``tenants/<tenant_id>/`` (Vault) or ``<data_dir>/secrets/<tenant_id>/`` (files).
"""

import asyncio
import json
import os
import re
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


# Tenant ids and secret names as file names: the API's own shapes, nothing that could
# climb out of the directory.
_SAFE_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


class EncryptedFileSecretStore:
    """One Fernet-encrypted file (AES-128-CBC + HMAC-SHA256) per secret, under a directory
    per tenant, each rewritten atomically. A lookup reads and decrypts one small file, so it
    costs the same with 10 secrets or 10,000; only the current value is kept (with its
    version count), as a key that was replaced must not linger on disk."""

    def __init__(self, root: Path, key: str | bytes, legacy: Path | None = None):
        self._root = root
        self._fernet = Fernet(key)
        self._lock = threading.Lock()
        root.mkdir(parents=True, exist_ok=True)
        if legacy is not None and legacy.exists():
            self._split(legacy)

    def _file(self, tenant_id: str, name: str = "") -> Path:
        for part in (tenant_id, name):
            if part and not _SAFE_PART.fullmatch(part):
                raise ValueError(f"{part!r} cannot name a secret's file")
        return self._root / tenant_id / f"{name}.secret" if name else self._root / tenant_id

    def _read(self, path: Path) -> dict | None:
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return json.loads(self._fernet.decrypt(blob))
        except InvalidToken as e:
            raise RuntimeError(f"{path} cannot be decrypted with this secrets key") from e

    def _write(self, path: Path, entry: dict) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        blob = self._fernet.encrypt(json.dumps(entry).encode())
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secret-")
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # readers see the old file or the new one, never half

    def _split(self, legacy: Path) -> None:
        """The single file every secret used to share, into one file per secret (its
        latest value and version count); the old file goes once all are written."""
        try:
            data = json.loads(self._fernet.decrypt(legacy.read_bytes()))
        except InvalidToken as e:
            raise RuntimeError(f"{legacy} cannot be decrypted with this secrets key") from e
        for tenant_id, entries in data.items():
            for name, entry in entries.items():
                self._write(
                    self._file(tenant_id, name),
                    {
                        "value": entry["versions"][-1],
                        "version": len(entry["versions"]),
                        "updated_at": entry["updated_at"],
                    },
                )
        legacy.unlink()

    @staticmethod
    def _meta(name: str, entry: dict) -> SecretMeta:
        return SecretMeta(name, entry["version"], datetime.fromisoformat(entry["updated_at"]))

    def _put(self, tenant_id: str, name: str, value: str) -> SecretMeta:
        path = self._file(tenant_id, name)
        with self._lock:
            previous = self._read(path)
            entry = {
                "value": value,
                "version": (previous["version"] if previous else 0) + 1,
                "updated_at": _now().isoformat(),
            }
            self._write(path, entry)
        return self._meta(name, entry)

    def _get(self, tenant_id: str, name: str) -> dict | None:
        return self._read(self._file(tenant_id, name))

    def _list(self, tenant_id: str) -> list[SecretMeta]:
        folder = self._file(tenant_id)
        names = sorted(p.stem for p in folder.glob("*.secret")) if folder.exists() else []
        return [
            self._meta(name, entry)
            for name in names
            if (entry := self._get(tenant_id, name)) is not None
        ]

    def _delete(self, tenant_id: str, name: str) -> bool:
        with self._lock:
            try:
                self._file(tenant_id, name).unlink()
            except FileNotFoundError:
                return False
            return True

    async def put(self, tenant_id: str, name: str, value: str) -> SecretMeta:
        return await asyncio.to_thread(self._put, tenant_id, name, value)

    async def metadata(self, tenant_id: str, name: str) -> SecretMeta | None:
        entry = await asyncio.to_thread(self._get, tenant_id, name)
        return self._meta(name, entry) if entry else None

    async def list(self, tenant_id: str) -> list[SecretMeta]:
        return await asyncio.to_thread(self._list, tenant_id)

    async def delete(self, tenant_id: str, name: str) -> bool:
        return await asyncio.to_thread(self._delete, tenant_id, name)

    async def reveal(self, tenant_id: str, name: str) -> str | None:
        entry = await asyncio.to_thread(self._get, tenant_id, name)
        return entry["value"] if entry else None


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
    return EncryptedFileSecretStore(data_dir / "secrets", key, legacy=data_dir / "secrets.enc")
