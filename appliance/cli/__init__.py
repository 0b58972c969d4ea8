"""The command line: ``appliance serve · keys · apps · pii · policy · risk · models · audit ·
report · usage · users``.

Every command that reads or writes stored state takes ``--config FILE`` and
``--data-dir DIR``, exactly as ``serve`` does. Each command group is a module of this
package (``appliance/cli/<group>.py``, with ``register(subparsers)``), added here by
name: the CLI is the top layer, which may import every other package and is imported by
none. A group's module is imported only when that group runs (or its own ``--help``
is asked for): some pull in Presidio, ONNX Runtime or DuckDB, seconds of imports that
``appliance --help`` must not pay (it lists the groups from :data:`COMMAND_GROUPS`).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.errors import ConfigError

if TYPE_CHECKING:  # the config pulls in pydantic: not for ``--help``
    from appliance.config import Config


@dataclass(frozen=True)
class Group:
    """A command group that lives beside its code: the module with
    ``register(subparsers)``, and its one-line help as that module registers it."""

    module: str
    help: str


#: Command name -> its group. ``appliance --help`` lists these without importing them;
#: tests/cli/test_help.py checks each ``help`` against the group's own registration.
COMMAND_GROUPS: dict[str, Group] = {
    "apps": Group("appliance.cli.risk", "the application registry (declared purposes)"),
    "risk": Group("appliance.cli.risk", "EU AI Act risk tagging and safety screening"),
    "pii": Group("appliance.cli.pii", "personal data detection and redaction"),
    "policy": Group("appliance.cli.policy",
                    "Rego policies: test, check, eval, serve, explain"),
    "models": Group("appliance.cli.models",
                    "local ONNX models: list, prepare, export, quantize, build"),
    "audit": Group("appliance.cli.audit",
                   "the audit log: verify, search, shred, purge, keys"),
    "report": Group("appliance.cli.report", "compliance reports for auditors"),
    "usage": Group("appliance.cli.usage",
                   "usage and cost over a period, grouped, with a forecast"),
    "users": Group("appliance.cli.users", "console users: create, list, disable"),
    "db": Group("appliance.cli.db", "control-plane schema: upgrade, status"),
    "doctor": Group("appliance.cli.doctor",
                    "check config, data dir, policies, audit log, models, PII, TLS, port"),
}


def add_state_args(parser: argparse.ArgumentParser) -> None:
    """The options every stateful command shares with ``serve``."""
    parser.add_argument("--config", type=Path, default=None, help="TOML config file")
    parser.add_argument("--data-dir", type=Path, default=None, help="data directory")


def config_of(args: argparse.Namespace) -> Config:
    from appliance.config import load_config

    return load_config(args.config, data_dir=args.data_dir)


def setup_logging(level: str = "INFO") -> None:
    from appliance.core.logline import setup_logging as one_line_logging

    one_line_logging(getattr(logging, level.upper(), logging.INFO))


# -- serve ------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from appliance.config import load_config
    from appliance.server.run import serve

    overrides: dict[str, Any] = {}
    server: dict[str, Any] = {}
    if args.host is not None:
        server["host"] = args.host
    if args.port is not None:
        server["port"] = args.port
    if args.workers is not None:
        server["workers"] = args.workers
    if server:
        overrides["server"] = server
    config = load_config(args.config, data_dir=args.data_dir, overrides=overrides)
    return serve(config)


# -- keys -------------------------------------------------------------------------------


def _control(args: argparse.Namespace) -> Any:
    from appliance.keys.store import open_control_plane

    return open_control_plane(config_of(args))


def cmd_keys_create(args: argparse.Namespace) -> int:
    limits = {
        k: v
        for k, v in (
            ("rpm", args.rpm),
            ("tpm", args.tpm),
            ("budget_usd_month", args.budget_usd_month),
            ("budget_usd_day", args.budget_usd_day),
        )
        if v is not None
    }
    control = _control(args)
    try:
        key, record = control.create_key(
            tenant=args.tenant,
            user=args.user,
            department=args.department,
            roles=tuple(args.role or ()),
            application=args.application,
            limits=limits,
            expires_at=None if args.expires_in_days is None
            else time.time() + args.expires_in_days * 86400,
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        control.close()
    if args.json:
        print(json.dumps({"key": key, "id": record.id}))
    else:
        print(f"id:  {record.id}")
        print(f"key: {key}")
        print("Store the key now: it is shown only once.", file=sys.stderr)
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    control = _control(args)
    try:
        keys = control.list_keys(args.tenant)
    finally:
        control.close()
    if args.json:
        for k in keys:
            print(json.dumps(k.public()))
        return 0
    print(f"{'ID':<18}{'TENANT':<16}{'USER':<20}{'DEPARTMENT':<16}{'ROLES':<20}STATUS")
    for k in keys:
        status = "revoked" if k.revoked_at else "active"
        print(
            f"{k.id:<18}{k.tenant:<16}{k.user:<20}{k.department or '-':<16}"
            f"{','.join(k.roles) or '-':<20}{status}"
        )
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    control = _control(args)
    try:
        ok = control.revoke_key(args.id)
    finally:
        control.close()
    if not ok:
        print(f"error: no key with id {args.id!r}", file=sys.stderr)
        return 1
    print(f"revoked {args.id}")
    return 0


def _register_core(sub: Any) -> None:
    serve = sub.add_parser("serve", help="start the appliance")
    add_state_args(serve)
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--workers", type=int, default=None, help="server processes")
    serve.add_argument("--log-level", default=os.environ.get("APPLIANCE_LOG_LEVEL", "INFO"),
                       help="DEBUG, INFO, WARNING or ERROR (default: $APPLIANCE_LOG_LEVEL or INFO)")
    serve.set_defaults(func=cmd_serve)

    keys = sub.add_parser("keys", help="create, list and revoke API keys")
    ksub = keys.add_subparsers(dest="keys_cmd", required=True)
    create = ksub.add_parser("create", help="create a key (printed once)")
    add_state_args(create)
    create.add_argument("--tenant", required=True)
    create.add_argument("--user", required=True)
    create.add_argument("--department")
    create.add_argument("--role", action="append", help="repeat for several roles")
    create.add_argument("--application", help="registered application the key belongs to")
    create.add_argument("--rpm", type=int, help="requests per minute")
    create.add_argument("--tpm", type=int, help="tokens per minute")
    create.add_argument("--budget-usd-month", type=float)
    create.add_argument("--budget-usd-day", type=float)
    create.add_argument("--expires-in-days", type=float,
                        help="the key is refused after this many days")
    create.add_argument("--json", action="store_true", help='print {"key": ..., "id": ...}')
    create.set_defaults(func=cmd_keys_create)
    lst = ksub.add_parser("list", help="list keys (never their secrets)")
    add_state_args(lst)
    lst.add_argument("--tenant")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_keys_list)
    revoke = ksub.add_parser("revoke", help="revoke a key by id")
    add_state_args(revoke)
    revoke.add_argument("id")
    revoke.set_defaults(func=cmd_keys_revoke)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``command`` one of the groups, that group's module is imported
    and registers itself; every other group is listed by name and help alone."""
    parser = argparse.ArgumentParser(
        prog="appliance", description="On-premises compliance proxy for LLMs."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _register_core(sub)
    group = COMMAND_GROUPS.get(command or "")
    if group is not None:
        importlib.import_module(group.module).register(sub)
    registered = set(sub.choices)
    for name, listed in COMMAND_GROUPS.items():
        if name not in registered:
            # Listed for --help and for "invalid choice" errors; never run (a group runs
            # only when it was the command, and then its module registered it above).
            sub.add_parser(name, help=listed.help, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    setup_logging(getattr(args, "log_level", "WARNING"))
    try:
        return int(args.func(args))
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
