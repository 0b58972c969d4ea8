"""``appliance db upgrade | status``: the control plane's schema migrations.

A fleet's PostgreSQL is migrated by this command only (a starting replica never
migrates: ``serve`` refuses a schema it does not know). Migrations only add, and the
upgrade takes an advisory lock, so it is safe while other replicas serve. On one box
(SQLite) the schema is brought up to date whenever the file is opened; the command
works there too.
"""

from __future__ import annotations

import argparse
import sys

from appliance.cli import add_state_args, config_of


def _backend(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from appliance.config import secret
    from appliance.keys.backend import SqliteBackend
    from appliance.keys.store import control_plane_path

    config = config_of(args)
    if config.state.backend == "postgres":
        from appliance.keys.postgres import PostgresBackend

        dsn = secret(config.state.dsn_env)
        if not dsn:
            raise SystemExit(f"error: ${config.state.dsn_env} holds no DSN")
        return PostgresBackend(dsn, timeout_s=config.state.timeout_s, listen=False)
    return SqliteBackend(control_plane_path(config.storage.data_dir))


def cmd_upgrade(args: argparse.Namespace) -> int:
    from appliance.errors import EngineUnavailable
    from appliance.keys.migrations import LATEST, SchemaMismatch, upgrade

    try:
        backend = _backend(args)
    except EngineUnavailable as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 1
    try:
        applied = upgrade(backend)
    except SchemaMismatch as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        backend.close()
    for m in applied:
        print(f"applied {m.version}: {m.name}")
    print(f"schema at version {LATEST} ({backend.dialect.name})")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from appliance.errors import EngineUnavailable
    from appliance.keys.migrations import MIGRATIONS, applied_versions

    try:
        backend = _backend(args)
    except EngineUnavailable as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 1
    try:
        have = applied_versions(backend)
    finally:
        backend.close()
    for m in MIGRATIONS:
        print(f"{'applied' if m.version in have else 'MISSING'}  {m.version}: {m.name}")
    return 0 if all(m.version in have for m in MIGRATIONS) else 1


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    db = sub.add_parser("db", help="control-plane schema: upgrade, status")
    dsub = db.add_subparsers(dest="db_cmd", required=True)
    p = dsub.add_parser("upgrade", help="apply missing migrations (safe while replicas run)")
    add_state_args(p)
    p.set_defaults(func=cmd_upgrade)
    p = dsub.add_parser("status", help="which migrations are applied")
    add_state_args(p)
    p.set_defaults(func=cmd_status)
