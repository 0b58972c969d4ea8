"""One interface over an S3-compatible bucket and a directory.

``s3://bucket/prefix`` talks to S3 (or any S3-compatible server: the endpoint comes from
``APPLIANCE_S3_ENDPOINT`` or ``AWS_ENDPOINT_URL_S3``, credentials from the usual AWS
variables), a path or ``file://`` URL to a directory (an NFS mount in production).
Every write is checked: the store's SHA-256 of what it holds must equal the local one.
Calls are blocking (botocore, file I/O): callers run them on a thread.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit


class StoreError(Exception):
    """The store could not be reached or refused the operation (message has no secrets)."""


@dataclass(frozen=True)
class Fetched:
    """A conditional read: ``body`` None means unchanged since ``etag``."""

    body: bytes | None
    etag: str


class ObjectStore(Protocol):
    url: str

    def put(self, key: str, data: bytes, *, retain_days: int | None = None) -> str:
        """Store ``data`` under ``key``; returns the SHA-256 (hex) the store confirmed."""
        ...

    def get(self, key: str) -> bytes: ...

    def fetch(self, key: str, etag: str | None) -> Fetched: ...

    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys under ``prefix``, relative to the store's root."""
        ...

    def sha256(self, key: str) -> str | None:
        """The SHA-256 of the stored object as the store reports it (None: absent)."""
        ...


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class DirectoryStore:
    """A directory; writes go to a temporary name, are fsynced, then renamed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = str(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents and path != self.root.resolve():
            raise StoreError(f"key {key!r} leaves the store")
        return path

    def put(self, key: str, data: bytes, *, retain_days: int | None = None) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            if retain_days:
                os.chmod(path, 0o444)  # a directory has no Object Lock: read-only at least
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"cannot write {key} under {self.root}: {e.strerror}") from None
        got = self.sha256(key)
        if got is None:
            raise StoreError(f"{key} is missing right after it was written")
        return got

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except OSError as e:
            raise StoreError(f"cannot read {key} under {self.root}: {e.strerror}") from None

    def fetch(self, key: str, etag: str | None) -> Fetched:
        try:
            st = self._path(key).stat()
        except OSError as e:
            raise StoreError(f"cannot read {key} under {self.root}: {e.strerror}") from None
        tag = f"{st.st_mtime_ns}-{st.st_size}"
        return Fetched(None if tag == etag else self.get(key), tag)

    def list(self, prefix: str = "") -> Iterator[str]:
        base = self.root / prefix
        if not base.exists():
            return
        for path in sorted(base.rglob("*") if base.is_dir() else [base]):
            if path.is_file() and not path.name.startswith("."):
                yield path.relative_to(self.root).as_posix()

    def sha256(self, key: str) -> str | None:
        try:
            return sha256_hex(self._path(key).read_bytes())
        except FileNotFoundError:
            return None


class S3Store:
    """An S3 bucket and prefix; each object's SHA-256 is checked by the server on upload
    (``ChecksumSHA256``) and read back from it; Object Lock retention where asked."""

    def __init__(self, bucket: str, prefix: str, *, endpoint: str | None = None) -> None:
        import botocore.config
        import botocore.session

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}"
        session = botocore.session.get_session()
        self._client: Any = session.create_client(
            "s3",
            endpoint_url=endpoint or os.environ.get("APPLIANCE_S3_ENDPOINT")
            or os.environ.get("AWS_ENDPOINT_URL_S3") or None,
            region_name=os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1",
            config=botocore.config.Config(connect_timeout=3, read_timeout=30,
                                          retries={"max_attempts": 2, "mode": "standard"}),
        )

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _error(self, what: str, e: Exception) -> StoreError:
        code = getattr(e, "response", {}).get("Error", {}).get("Code") if hasattr(e, "response") else None
        return StoreError(f"S3 {what} failed on {self.url}: {code or type(e).__name__}")

    def put(self, key: str, data: bytes, *, retain_days: int | None = None) -> str:
        import datetime as dt

        from botocore.exceptions import BotoCoreError, ClientError

        digest = hashlib.sha256(data).digest()
        kw: dict[str, Any] = {"ChecksumSHA256": base64.b64encode(digest).decode()}
        if retain_days:
            kw["ObjectLockMode"] = "COMPLIANCE"
            kw["ObjectLockRetainUntilDate"] = dt.datetime.now(dt.UTC) + dt.timedelta(days=retain_days)
        try:
            self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **kw)
        except (BotoCoreError, ClientError) as e:
            raise self._error("upload", e) from None
        got = self.sha256(key)
        if got is None:
            raise StoreError(f"{key} is missing from {self.url} right after its upload")
        return got

    def get(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            body: bytes = self._client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
            return body
        except (BotoCoreError, ClientError) as e:
            raise self._error("download", e) from None

    def fetch(self, key: str, etag: str | None) -> Fetched:
        from botocore.exceptions import BotoCoreError, ClientError

        kw = {"IfNoneMatch": etag} if etag else {}
        try:
            got = self._client.get_object(Bucket=self.bucket, Key=self._key(key), **kw)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("304", "NotModified") and etag:
                return Fetched(None, etag)
            raise self._error("download", e) from None
        except BotoCoreError as e:
            raise self._error("download", e) from None
        return Fetched(got["Body"].read(), str(got.get("ETag") or ""))

    def list(self, prefix: str = "") -> Iterator[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        paginator = self._client.get_paginator("list_objects_v2")
        full = self._key(prefix)
        skip = len(self.prefix) + 1 if self.prefix else 0
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
                for obj in page.get("Contents") or ():
                    yield str(obj["Key"])[skip:]
        except (BotoCoreError, ClientError) as e:
            raise self._error("listing", e) from None

    def sha256(self, key: str) -> str | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            head = self._client.head_object(Bucket=self.bucket, Key=self._key(key), ChecksumMode="ENABLED")
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise self._error("checksum read", e) from None
        except BotoCoreError as e:
            raise self._error("checksum read", e) from None
        checksum = head.get("ChecksumSHA256")
        if checksum:
            return base64.b64decode(checksum).hex()
        return sha256_hex(self.get(key))  # a store without checksums: read it back


def open_store(url: str) -> DirectoryStore | S3Store:
    """The store a URL names: ``s3://bucket/prefix``, ``file:///dir`` or a plain path."""
    parts = urlsplit(url)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ValueError(f"{url!r}: an S3 URL names a bucket: s3://bucket/prefix")
        return S3Store(parts.netloc, parts.path)
    if parts.scheme == "file":
        return DirectoryStore(Path(parts.path))
    if parts.scheme in ("", ):
        return DirectoryStore(Path(url))
    raise ValueError(f"{url!r}: not an s3://, file:// URL or a path")


def split_object_url(url: str) -> tuple[str, str]:
    """``s3://b/p/bundle.tar.gz`` -> (``s3://b/p``, ``bundle.tar.gz``); paths likewise."""
    head, _, name = url.rstrip("/").rpartition("/")
    return head or ".", name
