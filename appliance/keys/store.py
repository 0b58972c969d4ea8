"""The control plane: API keys and registered applications, one repository over two
engines (:mod:`appliance.keys.backend`): SQLite in the data directory on one box,
PostgreSQL shared by the replicas of a fleet. The SQL is written once, for both.

SQLite, not DuckDB, on one box because the CLI must create and revoke keys while one or
more server processes read the same file; SQLite's WAL mode allows that, DuckDB allows
one writer process per file. Keys are stored as a salted HMAC-SHA256 of their secret: the
secret has 256 bits of entropy, so a slow KDF adds latency to every request and no
safety. The full key is shown once, at creation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from appliance.config import Config
    from appliance.keys.backend import StateBackend

KEY_PREFIX = "ak-"


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
    """Keys and applications: the one repository over SQLite (one box) and PostgreSQL
    (a fleet). Thread-safe; each backend holds one connection per process."""

    def __init__(self, backend: StateBackend) -> None:
        self.backend = backend

    @classmethod
    def open(cls, path: Path) -> ControlPlane:
        """The embedded SQLite control plane at ``path``, its schema brought up to date."""
        from appliance.keys.backend import SqliteBackend
        from appliance.keys.migrations import upgrade

        backend = SqliteBackend(path)
        try:
            upgrade(backend)
        except BaseException:
            backend.close()
            raise
        return cls(backend)

    def close(self) -> None:
        self.backend.close()

    def data_version(self) -> int:
        """Changes whenever any process changed keys or applications (cache invalidation)."""
        return self.backend.version()

    @property
    def pushes_changes(self) -> bool:
        """True when changes are pushed (no probe needed: :meth:`data_version` is free)."""
        return self.backend.pushes_changes

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
        with self.backend.transaction() as tx:
            tx.execute(
                'INSERT INTO api_keys (id, tenant, "user", department, roles, application, salt,'
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
        rows = self.backend.query("SELECT * FROM api_keys WHERE id = ?", (key_id,))
        if not rows or rows[0]["revoked_at"] is not None:
            return None
        row = rows[0]
        if not hmac.compare_digest(_digest(bytes(row["salt"]), secret), bytes(row["hash"])):
            return None
        record = _key_record(row)
        return None if record.expired() else record

    def list_keys(self, tenant: str | None = None) -> list[KeyRecord]:
        sql, args = "SELECT * FROM api_keys", tuple[str, ...]()
        if tenant is not None:
            sql, args = sql + " WHERE tenant = ?", (tenant,)
        return [_key_record(r) for r in self.backend.query(sql + " ORDER BY created_at", args)]

    def get_key(self, key_id: str) -> KeyRecord | None:
        rows = self.backend.query("SELECT * FROM api_keys WHERE id = ?", (key_id,))
        return _key_record(rows[0]) if rows else None

    def revoke_key(self, key_id: str) -> bool:
        """Revoke; False when no such key exists. Revoking twice is harmless."""
        with self.backend.transaction() as tx:
            changed: int = tx.execute(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?",
                (time.time(), key_id),
            )
        return changed > 0

    def set_limits(self, key_id: str, limits: Mapping[str, Any]) -> bool:
        """Replace a key's limits (rpm, tpm, budgets); False when no such key exists."""
        with self.backend.transaction() as tx:
            changed: int = tx.execute(
                "UPDATE api_keys SET limits = ? WHERE id = ?", (json.dumps(dict(limits)), key_id)
            )
        return changed > 0

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
        with self.backend.transaction() as tx:
            tx.execute(
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
        rows = self.backend.query(
            "SELECT * FROM applications WHERE tenant = ? AND name = ?", (tenant, name)
        )
        return _app(rows[0]) if rows else None

    def list_apps(self, tenant: str | None = None) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM applications", tuple[str, ...]()
        if tenant is not None:
            sql, args = sql + " WHERE tenant = ?", (tenant,)
        return [_app(r) for r in self.backend.query(sql + " ORDER BY tenant, name", args)]


def _key_record(row: Mapping[str, Any]) -> KeyRecord:
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


def _app(row: Mapping[str, Any]) -> dict[str, Any]:
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


def open_control_plane(config: Config, *, listen: bool = False) -> ControlPlane:
    """The control plane the config names: SQLite under the data directory, or PostgreSQL.

    PostgreSQL is migrated only by ``appliance db upgrade``: a schema this release does
    not know raises :class:`~appliance.keys.migrations.SchemaMismatch`. ``listen``
    (servers) subscribes to the change feed; a CLI command only writes or reads once.
    """
    if config.state.backend != "postgres":
        return ControlPlane.open(control_plane_path(config.storage.data_dir))
    from appliance.config import secret
    from appliance.keys.migrations import check
    from appliance.keys.postgres import PostgresBackend

    dsn = secret(config.state.dsn_env)
    if not dsn:
        from appliance.errors import ConfigError

        raise ConfigError(f"[state] backend = \"postgres\": ${config.state.dsn_env} holds no DSN")
    backend = PostgresBackend(dsn, timeout_s=config.state.timeout_s, listen=listen)
    try:
        check(backend)
    except BaseException:
        backend.close()
        raise
    return ControlPlane(backend)
