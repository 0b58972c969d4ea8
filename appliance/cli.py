"""The command line: ``appliance serve · keys · apps · pii · policy · risk · models · audit ·
report · usage``.

Every command that reads or writes stored state takes ``--config FILE`` and
``--data-dir DIR``, exactly as ``serve`` does. Command groups owned by other parts of the
appliance live next to their code (``appliance/<area>/commands.py``) and are added here
by name.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

from appliance.config import Config, load_config
from appliance.errors import ConfigError

#: Command groups that live beside their code: command name -> module with
#: ``register(subparsers)``. Only the module of the command being run is imported
#: (some pull in Presidio or ONNX Runtime), all of them for ``--help``.
COMMAND_GROUPS: dict[str, str] = {
    "apps": "appliance.risk.commands",
    "risk": "appliance.risk.commands",
    "pii": "appliance.pii.commands",
    "policy": "appliance.policy.commands",
    "models": "appliance.models.commands",
    "audit": "appliance.audit.commands",
    "report": "appliance.reports.commands",
    "usage": "appliance.metering.commands",
    "doctor": "appliance.doctor.commands",
}


def add_state_args(parser: argparse.ArgumentParser) -> None:
    """The options every stateful command shares with ``serve``."""
    parser.add_argument("--config", type=Path, default=None, help="TOML config file")
    parser.add_argument("--data-dir", type=Path, default=None, help="data directory")


def config_of(args: argparse.Namespace) -> Config:
    return load_config(args.config, data_dir=args.data_dir)


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


# -- serve ------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
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
    from appliance.keys.store import ControlPlane, control_plane_path

    return ControlPlane.open(control_plane_path(config_of(args).storage.data_dir))


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


_CORE_COMMANDS = frozenset({"serve", "keys"})


def _register_core(sub: Any) -> None:
    serve = sub.add_parser("serve", help="start the appliance")
    add_state_args(serve)
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--workers", type=int, default=None, help="server processes")
    serve.add_argument("--log-level", default="INFO")
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
    """The parser; with ``command`` given, only that command's group is imported."""
    parser = argparse.ArgumentParser(
        prog="appliance", description="On-premises compliance proxy for LLMs."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _register_core(sub)
    if command in COMMAND_GROUPS:
        wanted = [COMMAND_GROUPS[command]]
    elif command in _CORE_COMMANDS:
        wanted = []
    else:  # --help, or a mistyped command: show every group
        wanted = list(COMMAND_GROUPS.values())
    for module in dict.fromkeys(wanted):
        importlib.import_module(module).register(sub)
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
