"""Envelope encryption of payloads: per-tenant data keys wrapped by the master key.

The wrapped data keys live in one small JSON key store next to the segments, never
inside the (append-only) segments: shredding a tenant deletes its wrapped keys there,
and master-key rotation rewrites only that file. Records are never rewritten.
Several processes share the store; every change is made under an exclusive file lock
and written atomically.
"""

from __future__ import annotations

import base64
import fcntl
import os
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from appliance.audit.keys import fingerprint
from appliance.errors import ConfigError

_VERSION = 1


class WrongMasterKey(ConfigError):
    """The master key does not match the one the key store was written with."""


@dataclass(frozen=True, slots=True)
class SealedPayload:
    key_id: str
    nonce: bytes
    ciphertext: bytes


def _wrap_aad(tenant: str, key_id: str) -> bytes:
    return b"appliance-dek|" + tenant.encode() + b"|" + key_id.encode()


def _payload_aad(tenant: str, request_id: str, key_id: str) -> bytes:
    return b"appliance-payload|" + "|".join((tenant, request_id, key_id)).encode()


def _blob_aad(tenant: str, name: str, key_id: str) -> bytes:
    return b"appliance-blob|" + "|".join((tenant, name, key_id)).encode()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class TenantKeyStore:
    """Per-tenant AES-256-GCM data keys, wrapped by the master key, in ``keystore.json``."""

    def __init__(self, path: Path, master_key: bytes) -> None:
        self.path = path
        self._lock_path = path.with_suffix(".lock")
        self._master = AESGCM(master_key)
        self._master_id = fingerprint(master_key)
        self._mtime: tuple[int, int] | None = None
        self._keys: dict[str, tuple[str, AESGCM]] = {}  # key_id -> (tenant, cipher)
        self._current: dict[str, str] = {}  # tenant -> newest key_id
        self._mutex = threading.RLock()  # threads of one process share this object

    # -- file handling ------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._lock_path, "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> dict[str, Any]:
        try:
            doc: dict[str, Any] = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {"version": _VERSION, "master_key_id": self._master_id, "keys": [], "log": []}
        if doc.get("master_key_id") != self._master_id:
            raise WrongMasterKey("the audit master key does not match the key store")
        return doc

    def _write(self, doc: dict[str, Any]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            f.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)

    def _load(self, doc: dict[str, Any]) -> None:
        keys: dict[str, tuple[str, AESGCM]] = {}
        current: dict[str, str] = {}
        for entry in doc["keys"]:
            blob = base64.b64decode(entry["wrapped"])
            try:
                raw = self._master.decrypt(
                    blob[:12], blob[12:], _wrap_aad(entry["tenant"], entry["key_id"])
                )
            except InvalidTag:
                raise WrongMasterKey("a data key does not unwrap under the master key") from None
            keys[entry["key_id"]] = (entry["tenant"], AESGCM(raw))
            current[entry["tenant"]] = entry["key_id"]
        self._keys, self._current = keys, current

    def refresh(self) -> None:
        """Reload the store if another process changed it (shred, rotation, new tenant)."""
        with self._mutex:
            self._refresh()

    def _refresh(self) -> None:
        try:
            st = self.path.stat()
            mtime: tuple[int, int] | None = (st.st_ino, st.st_mtime_ns)
        except FileNotFoundError:
            mtime = None
        if mtime != self._mtime or mtime is None:
            if mtime is None:
                self._keys, self._current = {}, {}
            else:
                self._load(self._read())
            self._mtime = mtime

    def _wrap(self, tenant: str, key_id: str, raw: bytes) -> str:
        nonce = secrets.token_bytes(12)
        return base64.b64encode(nonce + self._master.encrypt(nonce, raw, _wrap_aad(tenant, key_id))).decode()

    # -- operations ---------------------------------------------------------------

    def _key_for_write(self, tenant: str) -> tuple[str, AESGCM]:
        with self._mutex:
            return self._key_for_write_locked(tenant)

    def _key_for_write_locked(self, tenant: str) -> tuple[str, AESGCM]:
        self.refresh()
        key_id = self._current.get(tenant)
        if key_id is None:
            with self._locked():
                doc = self._read()
                existing = [e for e in doc["keys"] if e["tenant"] == tenant]
                if not existing:
                    key_id = "dk-" + secrets.token_hex(8)
                    doc["keys"].append(
                        {
                            "tenant": tenant,
                            "key_id": key_id,
                            "wrapped": self._wrap(tenant, key_id, AESGCM.generate_key(256)),
                            "created": time.time(),
                        }
                    )
                    self._write(doc)
                self._mtime = None
            self.refresh()
            key_id = self._current[tenant]
        return key_id, self._keys[key_id][1]

    def has_key(self, tenant: str) -> bool:
        """Whether a data key for ``tenant`` is loaded (sealing then needs no file I/O)."""
        return tenant in self._current

    def seal(self, tenant: str, request_id: str, payload: object) -> SealedPayload:
        key_id, cipher = self._key_for_write(tenant)
        nonce = secrets.token_bytes(12)
        plain = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
        ct = cipher.encrypt(nonce, plain, _payload_aad(tenant, request_id, key_id))
        return SealedPayload(key_id=key_id, nonce=nonce, ciphertext=ct)

    def open(self, tenant: str, request_id: str, sealed: SealedPayload) -> object | None:
        """The decrypted payload, or None when the tenant's key was shredded."""
        with self._mutex:
            self._refresh()
            entry = self._keys.get(sealed.key_id)
        if entry is None or entry[0] != tenant:
            return None
        plain = entry[1].decrypt(
            sealed.nonce, sealed.ciphertext, _payload_aad(tenant, request_id, sealed.key_id)
        )
        result: object = orjson.loads(plain)
        return result

    # -- blobs kept for callers (audit/sealed_store.py): raw bytes, their own AAD -------

    def seal_bytes(self, tenant: str, name: str, content: bytes) -> SealedPayload:
        """Seal raw bytes (a stored response, an uploaded file) under the tenant's key;
        ``name`` (kind and id of the blob) is bound into the authenticated data."""
        key_id, cipher = self._key_for_write(tenant)
        nonce = secrets.token_bytes(12)
        ct = cipher.encrypt(nonce, content, _blob_aad(tenant, name, key_id))
        return SealedPayload(key_id=key_id, nonce=nonce, ciphertext=ct)

    def open_bytes(self, tenant: str, name: str, sealed: SealedPayload) -> bytes | None:
        """The bytes, or None when the tenant's key was shredded (or belongs to another)."""
        with self._mutex:
            self._refresh()
            entry = self._keys.get(sealed.key_id)
        if entry is None or entry[0] != tenant:
            return None
        return entry[1].decrypt(sealed.nonce, sealed.ciphertext, _blob_aad(tenant, name, sealed.key_id))

    def can_open(self, tenant: str, key_id: str) -> bool:
        """Whether ``key_id`` is a live data key of ``tenant`` (not shredded)."""
        with self._mutex:
            self._refresh()
            entry = self._keys.get(key_id)
        return entry is not None and entry[0] == tenant

    def shred(self, tenant: str) -> list[str]:
        """Destroy every data key of ``tenant``; returns the destroyed key ids."""
        with self._mutex, self._locked():
            doc = self._read()
            gone = [e["key_id"] for e in doc["keys"] if e["tenant"] == tenant]
            doc["keys"] = [e for e in doc["keys"] if e["tenant"] != tenant]
            doc["log"].append({"op": "shred", "tenant": tenant, "key_ids": gone, "at": time.time()})
            self._write(doc)
        self._mtime = None
        self.refresh()
        return gone

    def rotate_master(self, new_master: bytes) -> int:
        """Rewrap every data key under ``new_master``; returns how many were rewrapped."""
        with self._mutex, self._locked():
            doc = self._read()
            self._load(doc)
            new = TenantKeyStore(self.path, new_master)
            for entry in doc["keys"]:
                raw = self._unwrap_entry(entry)
                entry["wrapped"] = new._wrap(entry["tenant"], entry["key_id"], raw)
            doc["master_key_id"] = new._master_id
            doc["log"].append({"op": "rotate", "master_key_id": new._master_id, "at": time.time()})
            self._write(doc)
        self._master, self._master_id, self._mtime = AESGCM(new_master), fingerprint(new_master), None
        return len(doc["keys"])

    def _unwrap_entry(self, entry: dict[str, Any]) -> bytes:
        blob = base64.b64decode(entry["wrapped"])
        return self._master.decrypt(blob[:12], blob[12:], _wrap_aad(entry["tenant"], entry["key_id"]))

    def tenants(self) -> dict[str, list[str]]:
        self.refresh()
        out: dict[str, list[str]] = {}
        for key_id, (tenant, _) in self._keys.items():
            out.setdefault(tenant, []).append(key_id)
        return out
