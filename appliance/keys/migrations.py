"""Versioned schema migrations of the control plane, one list for both engines.

Each migration is SQL both engines run (types as ``{blob}``/``{real}``) or a step that
looks before it acts; a few are for one engine only (PostgreSQL's change trigger). The
applied versions are rows of ``schema_migrations``. Migrations only add (tables,
columns with defaults, triggers), so replicas still running the previous release keep
working while ``appliance db upgrade`` applies them; PostgreSQL runs the whole upgrade
in one transaction under an advisory lock, so two upgrades never interleave.

SQLite (one box) applies what is missing when it opens the file, as it always did;
PostgreSQL waits for ``appliance db upgrade``, and ``serve`` refuses a schema it does not
know (older: upgrade it; newer: this replica is older than the database).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from appliance.keys.backend import Dialect, StateBackend, Tx

#: Any constant: the advisory lock every ``db upgrade`` of this database takes.
_UPGRADE_LOCK = 7_304_211_117


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...] = ()
    #: A step that inspects the schema first (SQLite has no ADD COLUMN IF NOT EXISTS).
    step: Callable[[Tx, Dialect], None] | None = None
    #: Engines the migration applies to (empty: both).
    only: frozenset[str] = field(default_factory=frozenset)


def _add_column(table: str, column: str, definition: str) -> Callable[[Tx, Dialect], None]:
    """A step that adds ``column`` to ``table`` unless it is there (SQLite has no IF NOT
    EXISTS for columns)."""

    def step(tx: Tx, dialect: Dialect) -> None:
        if dialect.name == "sqlite":
            have = {r["name"] for r in tx.query(f"PRAGMA table_info({table})")}
            if column not in have:
                tx.execute(f"ALTER TABLE {table} ADD COLUMN {column} {dialect.render(definition)}")
        else:
            tx.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} "
                       f"{dialect.render(definition)}")

    return step


_NOTIFY_FUNCTION = """
CREATE OR REPLACE FUNCTION appliance_control_changed() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('appliance_control', TG_TABLE_NAME);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "api keys and applications", (
        """CREATE TABLE IF NOT EXISTS api_keys (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            "user" TEXT NOT NULL,
            department TEXT,
            roles TEXT NOT NULL DEFAULT '[]',
            application TEXT,
            salt {blob} NOT NULL,
            hash {blob} NOT NULL,
            created_at {real} NOT NULL,
            revoked_at {real},
            limits TEXT NOT NULL DEFAULT '{}'
        )""",
        """CREATE TABLE IF NOT EXISTS applications (
            tenant TEXT NOT NULL,
            name TEXT NOT NULL,
            purpose TEXT NOT NULL,
            annex_iii TEXT,
            risk_class TEXT NOT NULL,
            areas TEXT NOT NULL DEFAULT '[]',
            created_at {real} NOT NULL,
            PRIMARY KEY (tenant, name)
        )""",
    )),
    Migration(2, "GDPR Art. 9(2) bases of applications",
              step=_add_column("applications", "art9_basis", "TEXT NOT NULL DEFAULT '{}'")),
    Migration(3, "push every change to the replicas (LISTEN/NOTIFY)", (
        _NOTIFY_FUNCTION,
        "DROP TRIGGER IF EXISTS api_keys_changed ON api_keys",
        "CREATE TRIGGER api_keys_changed AFTER INSERT OR UPDATE OR DELETE ON api_keys"
        " FOR EACH STATEMENT EXECUTE FUNCTION appliance_control_changed()",
        "DROP TRIGGER IF EXISTS applications_changed ON applications",
        "CREATE TRIGGER applications_changed AFTER INSERT OR UPDATE OR DELETE ON applications"
        " FOR EACH STATEMENT EXECUTE FUNCTION appliance_control_changed()",
    ), only=frozenset({"postgres"})),
    Migration(4, "console: users, sessions, sign-in states, policy changes, incidents, revisions", (
        # The compliance console's tables (its repository: appliance/console/store.py).
        # Session ids and sign-in states are stored as SHA-256 digests, passwords as argon2.
        """CREATE TABLE IF NOT EXISTS console_users (
            username TEXT PRIMARY KEY,
            display_name TEXT NOT NULL DEFAULT '',
            roles TEXT NOT NULL DEFAULT '[]',
            tenant TEXT,
            password_hash TEXT,
            source TEXT NOT NULL DEFAULT 'local',
            disabled BIGINT NOT NULL DEFAULT 0,
            failed_logins BIGINT NOT NULL DEFAULT 0,
            locked_until {real},
            language TEXT,
            created_at {real} NOT NULL,
            last_login_at {real}
        )""",
        """CREATE TABLE IF NOT EXISTS console_sessions (
            id_hash TEXT PRIMARY KEY,
            username TEXT NOT NULL,
            roles TEXT NOT NULL,
            tenant TEXT,
            source TEXT NOT NULL,
            csrf TEXT NOT NULL,
            created_at {real} NOT NULL,
            last_seen {real} NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS console_logins (
            state_hash TEXT PRIMARY KEY,
            nonce TEXT NOT NULL,
            verifier TEXT NOT NULL,
            next_path TEXT NOT NULL,
            created_at {real} NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS console_changes (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            title TEXT NOT NULL,
            author TEXT NOT NULL,
            status TEXT NOT NULL,
            base_revision TEXT NOT NULL,
            files TEXT NOT NULL,
            created_at {real} NOT NULL,
            submitted_at {real},
            decided_at {real},
            decided_by TEXT,
            note TEXT,
            checks TEXT,
            replay TEXT,
            applied_revision TEXT,
            rollback_to TEXT
        )""",
        """CREATE TABLE IF NOT EXISTS console_incidents (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            severity TEXT NOT NULL,
            aware_at {real} NOT NULL,
            description TEXT NOT NULL,
            request_ids TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_at {real} NOT NULL,
            status TEXT NOT NULL DEFAULT 'draft'
        )""",
        """CREATE TABLE IF NOT EXISTS console_revisions (
            revision TEXT PRIMARY KEY,
            files TEXT NOT NULL,
            applied_at {real} NOT NULL,
            change_id TEXT,
            applied_by TEXT
        )""",
    )),
    Migration(5, "keys that expire", step=_add_column("api_keys", "expires_at", "{real}")),
)

LATEST = MIGRATIONS[-1].version


class SchemaMismatch(Exception):
    """The database's schema is not the one this release knows."""


def _ensure_table(tx: Tx, dialect: Dialect) -> None:
    tx.execute(dialect.render(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at {real} NOT NULL)"
    ))


def applied_versions(backend: StateBackend) -> set[int]:
    """The versions applied (reads only: checking a schema never changes it)."""
    if backend.dialect.name == "sqlite":
        exists = backend.query(
            "SELECT 1 AS found FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
    else:
        exists = backend.query(
            "SELECT 1 AS found WHERE to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return set()
    return {int(r["version"]) for r in backend.query("SELECT version FROM schema_migrations")}


def upgrade(backend: StateBackend) -> list[Migration]:
    """Apply every missing migration in one transaction; returns those applied."""
    dialect = backend.dialect
    done: list[Migration] = []
    with backend.transaction() as tx:
        if dialect.name == "postgres":
            tx.query("SELECT pg_advisory_xact_lock(?)", (_UPGRADE_LOCK,))
        _ensure_table(tx, dialect)
        have = {int(r["version"]) for r in tx.query("SELECT version FROM schema_migrations")}
        _refuse_newer(have)
        for m in MIGRATIONS:
            if m.version in have:
                continue
            if not m.only or dialect.name in m.only:
                for sql in m.statements:
                    tx.execute(dialect.render(sql))
                if m.step is not None:
                    m.step(tx, dialect)
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (m.version, m.name, time.time()),
            )
            done.append(m)
    return done


def _refuse_newer(have: set[int]) -> None:
    unknown = sorted(v for v in have if v > LATEST)
    if unknown:
        raise SchemaMismatch(
            f"the control-plane database has schema version {unknown[-1]}, newer than this "
            f"release knows ({LATEST}): run a newer appliance against it"
        )


def check(backend: StateBackend) -> None:
    """Raise :class:`SchemaMismatch` unless the schema is exactly the one this release knows."""
    have = applied_versions(backend)
    _refuse_newer(have)
    missing = [m.version for m in MIGRATIONS if m.version not in have]
    if missing:
        raise SchemaMismatch(
            f"the control-plane database lacks schema version(s) {', '.join(map(str, missing))}: "
            "run `appliance db upgrade` (safe while other replicas run)"
        )
