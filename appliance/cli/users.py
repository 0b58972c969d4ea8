"""``appliance users create | list | disable | enable``: the console's local accounts.

The password is read from standard input (one line; on a terminal it is asked for twice
without echo), never from the command line where the shell history and ``ps`` would
show it. It is stored as an argon2id hash. Every change is written to the audit log.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path

from appliance.config.console import ROLES


def _state_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=None, help="TOML config file")
    p.add_argument("--data-dir", type=Path, default=None, help="data directory")


def _open(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from appliance.config import load_config
    from appliance.console.store import ConsoleStore
    from appliance.keys.store import open_control_plane

    from appliance.errors import ConfigError, EngineUnavailable
    from appliance.keys.migrations import SchemaMismatch

    config = load_config(args.config, data_dir=args.data_dir)
    try:
        control = open_control_plane(config)  # SQLite on one box, PostgreSQL in a fleet
    except (SchemaMismatch, EngineUnavailable) as e:
        raise ConfigError(str(e)) from None  # a clear line and exit status 2, no traceback
    return config, control, ConsoleStore(control.backend)


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            raise ValueError("the two passwords differ")
        return first
    line = sys.stdin.readline()
    return line.rstrip("\r\n")


def cmd_create(args: argparse.Namespace) -> int:
    from appliance.audit.admin_log import append_admin
    from appliance.console.passwords import hash_password

    config, control, store = _open(args)
    try:
        password = _read_password()
        user = store.create_user(
            args.username,
            roles=args.role,
            password_hash=hash_password(password),
            tenant=args.tenant,
            display_name=args.display_name or "",
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        control.close()
    append_admin(config, "console", {"action": "user_create", "after": user.public()}, tenant=user.tenant)
    print(f"created console user {user.username} with role(s) {', '.join(user.roles)}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    _, control, store = _open(args)
    try:
        users = store.list_users()
    finally:
        control.close()
    if args.json:
        for u in users:
            print(json.dumps(u.public()))
        return 0
    print(f"{'USER':<24}{'ROLES':<36}{'TENANT':<14}{'SOURCE':<8}STATUS")
    for u in users:
        pub = u.public()
        status = "disabled" if u.disabled else "locked" if pub["locked"] else "active"
        print(f"{u.username:<24}{','.join(u.roles):<36}{u.tenant or '-':<14}{u.source:<8}{status}")
    return 0


def _set_disabled(args: argparse.Namespace, disabled: bool) -> int:
    from appliance.audit.admin_log import append_admin

    config, control, store = _open(args)
    try:
        before = store.get_user(args.username)
        ok = store.set_disabled(args.username, disabled)
    finally:
        control.close()
    if not ok or before is None:
        print(f"error: no console user {args.username!r}", file=sys.stderr)
        return 1
    append_admin(config, "console", {"action": "user_disable" if disabled else "user_enable",
                                     "user": args.username, "before": {"disabled": before.disabled},
                                     "after": {"disabled": disabled}})
    print(f"{'disabled' if disabled else 'enabled'} {args.username}"
          + ("; their sessions ended" if disabled else ""))
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    users = sub.add_parser("users", help="console users: create, list, disable")
    cmds = users.add_subparsers(dest="users_command", required=True)
    p = cmds.add_parser("create", help="create a local console account (password on stdin)")
    _state_args(p)
    p.add_argument("--username", required=True)
    p.add_argument("--role", action="append", required=True, choices=ROLES, help="repeat for several")
    p.add_argument("--tenant", default=None, help="the tenant a tenant_viewer may see")
    p.add_argument("--display-name", default=None)
    p.set_defaults(func=cmd_create)
    p = cmds.add_parser("list", help="list console users (never their password hashes)")
    _state_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)
    p = cmds.add_parser("disable", help="disable an account and end its sessions")
    _state_args(p)
    p.add_argument("--username", required=True)
    p.set_defaults(func=lambda a: _set_disabled(a, True))
    p = cmds.add_parser("enable", help="enable a disabled account again")
    _state_args(p)
    p.add_argument("--username", required=True)
    p.set_defaults(func=lambda a: _set_disabled(a, False))
