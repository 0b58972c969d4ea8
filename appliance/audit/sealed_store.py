"""What the appliance keeps for a caller between requests, sealed with the tenant's data key.

Stored responses (conversation state for ``previous_response_id``), uploaded files and
batch output and error files live here as rows of one SQLite file under the data
directory (``state.db``). SQLite rather than DuckDB for the control plane's reason:
several server processes and the CLI read and write it at once, by primary key, and
DuckDB allows one writer per file. Each blob is AES-GCM sealed under the same per-tenant
data key as the audit payloads (:class:`TenantKeyStore`), with the blob's kind, id and
tenant in the authenticated data: shredding a tenant's key (``appliance audit shred``)
makes every blob of that tenant unreadable, and a blob read under another tenant fails.
Metadata kept in clear is limited to ids, sizes, times and statuses (never content).
Rows expire with the tenant's audit retention (``appliance audit purge``).
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag

from appliance.audit.envelope import SealedPayload, TenantKeyStore
from appliance.audit.keys import key_bytes, load_secret
from appliance.audit.segments import AuditPaths
from appliance.config import Config

_DAY_S = 86_400.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blobs (
    kind       TEXT NOT NULL,
    id         TEXT NOT NULL,
    tenant     TEXT NOT NULL,
    created_at REAL NOT NULL,
    key_id     TEXT NOT NULL,
    nonce      BLOB NOT NULL,
    ct         BLOB NOT NULL,
    meta       TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (kind, id)
);
CREATE INDEX IF NOT EXISTS blobs_tenant ON blobs (tenant, kind, created_at);
"""


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """A blob's clear metadata: identifiers, times and the caller-visible status fields."""

    kind: str
    id: str
    tenant: str
    created_at: float
    meta: dict[str, Any]


def state_path(config: Config) -> Path:
    return config.storage.data_dir / "state.db"


def open_keystore(config: Config) -> TenantKeyStore:
    """The audit log's per-tenant key store (shared with the payload columns)."""
    secret = load_secret(config.audit.master_key, config.storage.data_dir, "audit master")
    return TenantKeyStore(AuditPaths.from_config(config).keystore, key_bytes(secret, "audit master"))


def _aad(kind: str, blob_id: str) -> str:
    # TenantKeyStore binds tenant and key id; the kind keeps a file from opening as a response.
    return f"{kind}:{blob_id}"


class SealedStore:
    """Sealed blobs by (kind, id), owned by one tenant. Thread-safe; calls block briefly
    (one indexed SQLite statement and an AES-GCM pass): async callers use a thread."""

    def __init__(self, path: Path, keys: TenantKeyStore) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._keys = keys
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=10000")
        self._conn.executescript(_SCHEMA)
        self._lock = threading.Lock()

    @classmethod
    def open(cls, config: Config) -> SealedStore:
        return cls(state_path(config), open_keystore(config))

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # -- writing ----------------------------------------------------------------------

    def put(
        self,
        kind: str,
        blob_id: str,
        tenant: str,
        content: bytes,
        meta: dict[str, Any] | None = None,
        *,
        created_at: float | None = None,
    ) -> BlobInfo:
        """Seal ``content`` under the tenant's data key and store it (replacing the id)."""
        sealed = self._keys.seal_bytes(tenant, _aad(kind, blob_id), content)
        created = time.time() if created_at is None else created_at
        info = BlobInfo(kind, blob_id, tenant, created, dict(meta or {}))
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO blobs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (kind, blob_id, tenant, created, sealed.key_id, sealed.nonce,
                 sealed.ciphertext, orjson.dumps(info.meta).decode()),
            )
        return info

    def put_json(
        self, kind: str, blob_id: str, tenant: str, doc: Any, meta: dict[str, Any] | None = None
    ) -> BlobInfo:
        return self.put(kind, blob_id, tenant, orjson.dumps(doc), meta)

    def update_meta(self, kind: str, blob_id: str, tenant: str, meta: dict[str, Any]) -> bool:
        """Replace the clear metadata of a blob (a batch's status); False if it is gone."""
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE blobs SET meta = ? WHERE kind = ? AND id = ? AND tenant = ?",
                (orjson.dumps(meta).decode(), kind, blob_id, tenant),
            )
            return cur.rowcount > 0

    def delete(self, kind: str, blob_id: str, tenant: str) -> bool:
        with self._tx() as conn:
            cur = conn.execute(
                "DELETE FROM blobs WHERE kind = ? AND id = ? AND tenant = ?", (kind, blob_id, tenant)
            )
            return cur.rowcount > 0

    # -- reading ----------------------------------------------------------------------

    def info(self, kind: str, blob_id: str, tenant: str) -> BlobInfo | None:
        """The blob's metadata when it exists for this tenant and is still readable."""
        row = self._row(kind, blob_id, tenant, "key_id")
        if row is None or not self._keys.can_open(tenant, row[2]):
            return None
        return BlobInfo(kind, blob_id, tenant, row[0], orjson.loads(row[1]))

    def get(self, kind: str, blob_id: str, tenant: str) -> bytes | None:
        """The content, or None: no such blob for this tenant, or its key was shredded."""
        row = self._row(kind, blob_id, tenant, "key_id, nonce, ct")
        if row is None:
            return None
        sealed = SealedPayload(key_id=row[2], nonce=row[3], ciphertext=row[4])
        try:
            return self._keys.open_bytes(tenant, _aad(kind, blob_id), sealed)
        except InvalidTag:
            return None

    def get_json(self, kind: str, blob_id: str, tenant: str) -> Any | None:
        raw = self.get(kind, blob_id, tenant)
        return None if raw is None else orjson.loads(raw)

    def _row(self, kind: str, blob_id: str, tenant: str, cols: str) -> tuple[Any, ...] | None:
        with self._lock:
            row: tuple[Any, ...] | None = self._conn.execute(
                f"SELECT created_at, meta, {cols} FROM blobs WHERE kind = ? AND id = ? AND tenant = ?",
                (kind, blob_id, tenant),
            ).fetchone()
        return row

    def list(self, kind: str, tenant: str, limit: int = 100) -> list[BlobInfo]:
        """The tenant's readable blobs of one kind, newest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, created_at, meta, key_id FROM blobs WHERE kind = ? AND tenant = ?"
                " ORDER BY created_at DESC LIMIT ?",
                (kind, tenant, limit),
            ).fetchall()
        return [
            BlobInfo(kind, r[0], tenant, r[1], orjson.loads(r[2]))
            for r in rows
            if self._keys.can_open(tenant, r[3])
        ]

    # -- retention --------------------------------------------------------------------

    def purge_expired(self, config: Config, now: float | None = None) -> int:
        """Delete blobs older than their tenant's retention; returns how many."""
        now = time.time() if now is None else now
        with self._lock:
            tenants = [r[0] for r in self._conn.execute("SELECT DISTINCT tenant FROM blobs")]
        gone = 0
        for tenant in tenants:
            cutoff = now - config.audit.retention_for(tenant) * _DAY_S
            with self._tx() as conn:
                gone += conn.execute(
                    "DELETE FROM blobs WHERE tenant = ? AND created_at < ?", (tenant, cutoff)
                ).rowcount
        return gone

    def drop_tenant(self, tenant: str) -> int:
        """Delete every blob of a tenant (after its key was shredded they are unreadable)."""
        with self._tx() as conn:
            return conn.execute("DELETE FROM blobs WHERE tenant = ?", (tenant,)).rowcount


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"
