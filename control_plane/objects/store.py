"""Object storage for call recordings and original documents, one tenant's prefix at a time.

Every method takes the tenant id and builds the key under ``tenants/{tenant_id}/`` itself,
so no caller can reach another tenant's objects by choosing a key. Two backends, one
interface: MinIO (or any S3 API) through the ``minio`` client, and a local directory — the
embedded default — whose presigned URLs this platform serves and checks itself.
"""

import asyncio
import hashlib
import hmac
import io
import os
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, urlsplit

from minio import Minio
from minio.error import S3Error

from control_plane.kit.crypto import same_secret

# One path segment of a key: no separators, no dot-only names, nothing to escape.
_SEGMENT = re.compile(r"^(?!\.{1,2}$)[A-Za-z0-9._-]{1,200}$")


# S3's bounds for a presigned URL's lifetime; the local store keeps the same ones.
MIN_LINK_LIFETIME = timedelta(seconds=1)
MAX_LINK_LIFETIME = timedelta(days=7)


class ObjectNotFound(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class StoredObject:
    name: str  # the key relative to the tenant's prefix, e.g. "recordings/call_x.wav"
    size: int
    modified: datetime


def _checked(segment: str) -> str:
    if not _SEGMENT.match(segment):
        raise ValueError(f"invalid object key segment {segment!r}")
    return segment


def _tenant_prefix(tenant_id: str) -> str:
    return f"tenants/{_checked(tenant_id)}/"


def tenant_key(tenant_id: str, name: str) -> str:
    """The full object key for one tenant's object; refuses anything that could escape."""
    return _tenant_prefix(tenant_id) + "/".join(_checked(part) for part in name.split("/"))


class ObjectStore(Protocol):
    async def put(self, tenant_id: str, name: str, data: bytes, content_type: str) -> None: ...

    async def get(self, tenant_id: str, name: str) -> bytes:
        """The object's bytes; ObjectNotFound if there is none."""
        ...

    async def stat(self, tenant_id: str, name: str) -> StoredObject | None: ...

    async def delete(self, tenant_id: str, name: str) -> None:
        """Idempotent: deleting what is not there is not an error."""
        ...

    async def list(self, tenant_id: str, prefix: str = "") -> list[StoredObject]: ...

    async def presigned_url(self, tenant_id: str, name: str, expires: timedelta) -> str:
        """A URL anyone holding it can GET the object with, until it expires."""
        ...


class MinioObjectStore:
    """MinIO or any S3-compatible server, through the official ``minio`` client.

    The client is synchronous (urllib3); each call runs on a worker thread so the event
    loop, and every live call on it, never waits on the object store.
    """

    def __init__(
        self,
        url: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        region: str = "us-east-1",
    ):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"object store URL must be http(s)://host[:port], got {url!r}")
        # The region is given, not discovered: presigning then needs no round trip.
        self._client = Minio(
            parts.netloc,
            access_key=access_key,
            secret_key=secret_key,
            secure=parts.scheme == "https",
            region=region,
        )
        self._bucket = bucket

    async def ensure_bucket(self) -> None:
        def ensure() -> None:
            if not self._client.bucket_exists(self._bucket):
                self._client.make_bucket(self._bucket)

        await asyncio.to_thread(ensure)

    async def put(self, tenant_id: str, name: str, data: bytes, content_type: str) -> None:
        key = tenant_key(tenant_id, name)
        await asyncio.to_thread(
            self._client.put_object,
            self._bucket,
            key,
            io.BytesIO(data),
            len(data),
            content_type=content_type,
        )

    async def get(self, tenant_id: str, name: str) -> bytes:
        key = tenant_key(tenant_id, name)

        def read() -> bytes:
            try:
                response = self._client.get_object(self._bucket, key)
            except S3Error as e:
                if e.code == "NoSuchKey":
                    raise ObjectNotFound(name) from e
                raise
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

        return await asyncio.to_thread(read)

    async def stat(self, tenant_id: str, name: str) -> StoredObject | None:
        key = tenant_key(tenant_id, name)

        def stat() -> StoredObject | None:
            try:
                info = self._client.stat_object(self._bucket, key)
            except S3Error as e:
                if e.code in ("NoSuchKey", "NoSuchObject", "ResourceNotFound"):
                    return None
                raise
            return StoredObject(name, info.size or 0, info.last_modified or datetime.now(UTC))

        return await asyncio.to_thread(stat)

    async def delete(self, tenant_id: str, name: str) -> None:
        key = tenant_key(tenant_id, name)
        await asyncio.to_thread(self._client.remove_object, self._bucket, key)

    async def list(self, tenant_id: str, prefix: str = "") -> list[StoredObject]:
        root = _tenant_prefix(tenant_id)

        def listing() -> list[StoredObject]:
            found = self._client.list_objects(self._bucket, prefix=root + prefix, recursive=True)
            return [
                StoredObject(
                    o.object_name.removeprefix(root),
                    o.size or 0,
                    o.last_modified or datetime.now(UTC),
                )
                for o in found
                if o.object_name
            ]

        return await asyncio.to_thread(listing)

    async def presigned_url(self, tenant_id: str, name: str, expires: timedelta) -> str:
        # Computed locally from the credentials; no request reaches the server.
        return self._client.presigned_get_object(
            self._bucket, tenant_key(tenant_id, name), expires=expires
        )


class LocalObjectStore:
    """The embedded default: files under a directory.

    Presigned URLs point at this platform's ``/objects/{key}`` route and carry an expiry
    and an HMAC over key and expiry, so they work like S3's: whoever holds one can fetch
    that one object until it expires, and a changed key or expiry is refused.
    """

    def __init__(self, root: Path, signing_key: bytes, base_url: str):
        self._root = root
        self._key = signing_key
        self._base_url = base_url.rstrip("/")

    def path_for(self, key: str) -> Path:
        return self._root / key

    async def put(self, tenant_id: str, name: str, data: bytes, content_type: str) -> None:
        path = self.path_for(tenant_key(tenant_id, name))

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Written aside then renamed: a reader never sees half an object.
            tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)

        await asyncio.to_thread(write)

    async def get(self, tenant_id: str, name: str) -> bytes:
        path = self.path_for(tenant_key(tenant_id, name))
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError as e:
            raise ObjectNotFound(name) from e

    async def stat(self, tenant_id: str, name: str) -> StoredObject | None:
        path = self.path_for(tenant_key(tenant_id, name))
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        return StoredObject(name, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))

    async def delete(self, tenant_id: str, name: str) -> None:
        self.path_for(tenant_key(tenant_id, name)).unlink(missing_ok=True)

    async def list(self, tenant_id: str, prefix: str = "") -> list[StoredObject]:
        root = self.path_for(_tenant_prefix(tenant_id))

        def listing() -> list[StoredObject]:
            if not root.is_dir():
                return []
            found = []
            for path in sorted(root.rglob("*")):
                name = path.relative_to(root).as_posix()
                if path.is_file() and not path.name.startswith(".") and name.startswith(prefix):
                    st = path.stat()
                    found.append(
                        StoredObject(name, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))
                    )
            return found

        return await asyncio.to_thread(listing)

    async def presigned_url(self, tenant_id: str, name: str, expires: timedelta) -> str:
        key = tenant_key(tenant_id, name)
        if not MIN_LINK_LIFETIME <= expires <= MAX_LINK_LIFETIME:
            raise ValueError("a link's lifetime must be between 1 second and 7 days")
        until = int(time.time() + expires.total_seconds())
        query = f"expires={until}&signature={self.sign(key, until)}"
        return f"{self._base_url}/objects/{quote(key)}?{query}"

    def sign(self, key: str, until: int) -> str:
        return hmac.new(self._key, f"{key}\n{until}".encode(), hashlib.sha256).hexdigest()

    def verify(self, key: str, until: int, signature: str) -> bool:
        return until >= time.time() and same_secret(signature, self.sign(key, until))


@dataclass(frozen=True, slots=True)
class Link:
    url: str
    expires_at: datetime
    bytes: int
    stored_at: datetime


async def link(store: ObjectStore, tenant_id: str, name: str, lifetime: timedelta) -> Link | None:
    """A presigned link to one stored object, or None if it is not (or no longer) stored."""
    info = await store.stat(tenant_id, name)
    if info is None:
        return None
    url = await store.presigned_url(tenant_id, name, lifetime)
    return Link(url, datetime.now(UTC) + lifetime, info.size, info.modified)


def load_or_create_url_key(path: Path) -> bytes:
    """The local store's URL-signing key: made once, owner-only, kept across restarts so
    URLs handed out before a restart still work until they expire."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
    return path.read_bytes()


async def open_object_store(
    *,
    minio_url: str | None,
    access_key: str | None,
    secret_key: str | None,
    bucket: str,
    region: str,
    data_dir: Path,
    base_url: str,
) -> ObjectStore:
    """The one place the object store is chosen."""
    if minio_url:
        store = MinioObjectStore(minio_url, access_key or "", secret_key or "", bucket, region)
        await store.ensure_bucket()
        return store
    url_key = load_or_create_url_key(data_dir / "objects-url.key")
    return LocalObjectStore(data_dir / "objects", url_key, base_url)
