"""The control plane: API keys and registered applications, in one SQLite file.

SQLite, not DuckDB, because the CLI must create and revoke keys while one or more
server processes read the same file; SQLite's WAL mode allows that, DuckDB allows one
writer process per file. Keys are stored as a salted HMAC-SHA256 of their secret: the
secret has 256 bits of entropy, so a slow KDF adds latency to every request and no
safety. The full key is shown once, at creation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KEY_PREFIX = "ak-"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    user TEXT NOT NULL,
    department TEXT,
    roles TEXT NOT NULL DEFAULT '[]',
    application TEXT,
    salt BLOB NOT NULL,
    hash BLOB NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL,
    limits TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS applications (
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    purpose TEXT NOT NULL,
    annex_iii TEXT,
    risk_class TEXT NOT NULL,
    areas TEXT NOT NULL DEFAULT '[]',
    created_at REAL NOT NULL,
    art9_basis TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant, name)
);
"""

#: Columns added after the first release, with their definitions: a control plane created
#: before them gets them on open (SQLite adds a column in place, old rows take the default).
_ADDED_COLUMNS = {
    "applications": {"art9_basis": "TEXT NOT NULL DEFAULT '{}'"},
    "api_keys": {"expires_at": "REAL"},
}


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: str
    tenant: str
    user: str
    department: str | None
    roles: tuple[str, ...]
    application: str | None
    created_at: float
    revoked_at: float | None
    limits: dict[str, Any]
    #: Unix time from which the key is refused (None: it does not expire).
    expires_at: float | None = None

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or time.time())

    def public(self) -> dict[str, Any]:
        """The record as shown by `keys list` and the admin API (no secret material)."""
        return {
            "id": self.id,
            "tenant": self.tenant,
            "user": self.user,
            "department": self.department,
            "roles": list(self.roles),
            "application": self.application,
            "created_at": self.created_at,
            "revoked": self.revoked_at is not None,
            "revoked_at": self.revoked_at,
            "limits": self.limits,
            "expires_at": self.expires_at,
        }


def split_key(key: str) -> tuple[str, str] | None:
    """``ak-<id>-<secret>`` into (id, secret); None when the shape is wrong."""
    if not key.startswith(KEY_PREFIX):
        return None
    key_id, sep, secret = key[len(KEY_PREFIX) :].partition("-")
    if not sep or len(key_id) != 16 or not secret:
        return None
    return key_id, secret


def _digest(salt: bytes, secret: str) -> bytes:
    return hmac.new(salt, secret.encode("utf-8"), hashlib.sha256).digest()


class ControlPlane:
    """Keys and applications. Thread-safe; one connection per instance."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)
            self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        for table, columns in _ADDED_COLUMNS.items():
            have = {r["name"] for r in self._db.execute(f"PRAGMA table_info({table})")}
            for name, definition in columns.items():
                if name not in have:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {definition}")

    @classmethod
    def open(cls, path: Path) -> ControlPlane:
        return cls(path)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def data_version(self) -> int:
        """Changes whenever another connection commits: a cheap cache-invalidation probe."""
        with self._lock:
            return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    # -- keys ---------------------------------------------------------------------------

    def create_key(
        self,
        *,
        tenant: str,
        user: str,
        department: str | None = None,
        roles: tuple[str, ...] = (),
        application: str | None = None,
        limits: dict[str, Any] | None = None,
        expires_at: float | None = None,
    ) -> tuple[str, KeyRecord]:
        """Create a key; returns (the full key, shown once, its stored record)."""
        for label, value in (("tenant", tenant), ("user", user)):
            if not value or not value.strip():
                raise ValueError(f"{label} must not be empty")
        if application is not None and self.get_app(tenant, application) is None:
            raise ValueError(f"application {application!r} is not registered for tenant {tenant!r}")
        key_id = secrets.token_hex(8)
        secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        salt = secrets.token_bytes(16)
        now = time.time()
        with self._tx() as db:
            db.execute(
                "INSERT INTO api_keys (id, tenant, user, department, roles, application, salt,"
                " hash, created_at, limits, expires_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    key_id,
                    tenant,
                    user,
                    department,
                    json.dumps(list(roles)),
                    application,
                    salt,
                    _digest(salt, secret),
                    now,
                    json.dumps(limits or {}),
                    expires_at,
                ),
            )
        record = KeyRecord(
            key_id, tenant, user, department, tuple(roles), application, now, None, limits or {},
            expires_at,
        )
        return f"{KEY_PREFIX}{key_id}-{secret}", record

    def verify(self, key: str) -> KeyRecord | None:
        """The record of a valid, unrevoked key; None otherwise (constant-time compare)."""
        parts = split_key(key)
        if parts is None:
            return None
        key_id, secret = parts
        with self._lock:
            row = self._db.execute("SELECT * FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        if row is None or row["revoked_at"] is not None:
            return None
        if not hmac.compare_digest(_digest(row["salt"], secret), row["hash"]):
            return None
        record = _key_record(row)
        return None if record.expired() else record

    def list_keys(self, tenant: str | None = None) -> list[KeyRecord]:
        sql, args = "SELECT * FROM api_keys", tuple[str, ...]()
        if tenant is not None:
            sql, args = sql + " WHERE tenant = ?", (tenant,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY created_at", args).fetchall()
        return [_key_record(r) for r in rows]

    def get_key(self, key_id: str) -> KeyRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        return None if row is None else _key_record(row)

    def revoke_key(self, key_id: str) -> bool:
        """Revoke; False when no such key exists. Revoking twice is harmless."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?",
                (time.time(), key_id),
            )
            return cur.rowcount > 0

    # -- applications ---------------------------------------------------------------------

    def register_app(
        self,
        tenant: str,
        name: str,
        purpose: str,
        annex_iii: str | None,
        risk_class: str,
        areas: list[dict[str, Any]] | None = None,
        art9_basis: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Register or update; ``art9_basis`` None keeps the registered bases, {} clears them."""
        if not name.strip() or not purpose.strip():
            raise ValueError("application name and purpose must not be empty")
        basis = None if art9_basis is None else json.dumps(dict(sorted(art9_basis.items())))
        now = time.time()
        with self._tx() as db:
            db.execute(
                "INSERT INTO applications (tenant, name, purpose, annex_iii, risk_class, areas,"
                " created_at, art9_basis) VALUES (?,?,?,?,?,?,?,coalesce(?, '{}'))"
                " ON CONFLICT (tenant, name) DO UPDATE SET"
                " purpose = excluded.purpose, annex_iii = excluded.annex_iii,"
                " risk_class = excluded.risk_class, areas = excluded.areas,"
                " art9_basis = coalesce(?, applications.art9_basis)",
                (tenant, name, purpose, annex_iii, risk_class, json.dumps(areas or []), now,
                 basis, basis),
            )
        app = self.get_app(tenant, name)
        assert app is not None
        return app

    def get_app(self, tenant: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM applications WHERE tenant = ? AND name = ?", (tenant, name)
            ).fetchone()
        return None if row is None else _app(row)

    def list_apps(self, tenant: str | None = None) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM applications", tuple[str, ...]()
        if tenant is not None:
            sql, args = sql + " WHERE tenant = ?", (tenant,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY tenant, name", args).fetchall()
        return [_app(r) for r in rows]


def _key_record(row: sqlite3.Row) -> KeyRecord:
    return KeyRecord(
        id=row["id"],
        tenant=row["tenant"],
        user=row["user"],
        department=row["department"],
        roles=tuple(json.loads(row["roles"])),
        application=row["application"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        limits=json.loads(row["limits"]),
        expires_at=row["expires_at"],
    )


def _app(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "tenant": row["tenant"],
        "name": row["name"],
        "purpose": row["purpose"],
        "annex_iii": row["annex_iii"],
        "risk_class": row["risk_class"],
        "areas": json.loads(row["areas"]),
        "art9_basis": json.loads(row["art9_basis"]),
        "created_at": row["created_at"],
    }


def control_plane_path(data_dir: Path) -> Path:
    return data_dir / "control.db"
