"""``appliance doctor [--config FILE] [--data-dir DIR] [--json]``: one line per check.

Exit code 0 when nothing fails (warnings allowed), 1 when a check fails, so install
scripts and readiness hooks can gate on it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from appliance.config import Config, load_config
from appliance.doctor.fleet import check_archive, check_counters, check_state
from appliance.doctor.mcp import check_mcp
from appliance.doctor.network import check_port, check_providers, check_tls
from appliance.doctor.outcome import Check, Outcome, Setup, fail, ok
from appliance.doctor.runtime import check_models, check_onnxruntime, check_pii
from appliance.doctor.storage import check_audit, check_data_dir, check_policy
from appliance.errors import ConfigError

#: Every check in the order it runs (cheap and fundamental first). ``config`` comes
#: before all of them: without a valid config no other check can run.
CHECKS: Mapping[str, Check] = {
    "data_dir": check_data_dir,
    "policy": check_policy,
    "audit": check_audit,
    "state": check_state,
    "counters": check_counters,
    "archive": check_archive,
    "models": check_models,
    "onnxruntime": check_onnxruntime,
    "pii": check_pii,
    "providers": check_providers,
    "mcp": check_mcp,
    "tls": check_tls,
    "port": check_port,
}


def _secret_values(config: Config) -> list[str]:
    """Values of the environment variables the config names (``*_env``, ``env``): no line
    may show one, even when a library puts it into an error message."""
    names: list[str] = []

    def walk(node: Any, key: str = "") -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                walk(v, str(k))
        elif isinstance(node, list | tuple):
            for v in node:
                walk(v, key)
        elif isinstance(node, str) and (key == "env" or key.endswith("_env")):
            names.append(node)

    walk(config.model_dump())
    return [v for v in (os.environ.get(n, "") for n in names) if len(v) >= 4]


def _scrub(text: str, secrets: list[str]) -> str:
    for value in secrets:
        text = text.replace(value, "***")
    return text


def _run(check: Check, setup: Setup, secrets: list[str]) -> Outcome:
    try:
        outcome = check(setup)
    except Exception as e:  # noqa: BLE001 - one broken check must not hide the others
        outcome = fail(f"the check could not run: {type(e).__name__}: {str(e)[:200]}",
                       "run the failing step by hand (appliance policy/audit/models ...) for details")
    return Outcome(outcome.status, _scrub(outcome.message, secrets), _scrub(outcome.fix, secrets))


def run_checks(
    config_path: Path | None, data_dir: Path | None, *, only: list[str] | None = None,
    audit_records: int = 1000,
) -> Iterator[tuple[str, Outcome]]:
    """Load the config, then run the checks (all, or ``only``) one by one."""
    try:
        config = load_config(config_path, data_dir=data_dir)
    except ConfigError as e:
        yield "config", fail(" ".join(str(e).split()), "correct the file; every problem is named with its TOML path")
        return
    source = str(config_path) if config_path else "built-in defaults"
    workers = config.server.workers
    yield "config", ok(f"{source} is valid: {_count(len(config.providers), 'provider')}, "
                       f"{_count(len(config.models), 'model')}, {_count(workers, 'worker')}, "
                       f"data dir {config.storage.data_dir}")
    setup = Setup(config=config, config_path=config_path, audit_records=audit_records)
    secrets = _secret_values(config)
    for name, check in CHECKS.items():
        if only and name not in only:
            continue
        yield name, _run(check, setup, secrets)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def cmd_doctor(args: argparse.Namespace) -> int:
    failed = False
    rows = []
    for name, outcome in run_checks(args.config, args.data_dir, only=args.check,
                                    audit_records=args.audit_records):
        failed = failed or outcome.status == "fail"
        if args.json:
            rows.append({"check": name, "status": outcome.status, "message": outcome.message, "fix": outcome.fix})
            continue
        fix = f"  fix: {outcome.fix}" if outcome.fix and outcome.status != "ok" else ""
        print(f"{outcome.status:<5} {name:<12} {outcome.message}{fix}", flush=True)
    if args.json:
        print(json.dumps({"ok": not failed, "checks": rows}, indent=2))
    elif failed:
        print("doctor: at least one check failed", file=sys.stderr)
    return 1 if failed else 0


def _positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("doctor", help="check config, data dir, policies, audit log, models, PII, TLS, port")
    p.add_argument("--config", type=Path, default=None, help="TOML config file")
    p.add_argument("--data-dir", type=Path, default=None, help="data directory")
    p.add_argument("--json", action="store_true", help="print the results as one JSON document")
    p.add_argument("--check", action="append", choices=sorted(CHECKS), default=None,
                   help="run only this check (repeat for several; config is always checked)")
    p.add_argument("--audit-records", type=_positive, default=1000,
                   help="newest records per audit segment whose hash chain is checked (default 1000)")
    p.set_defaults(func=cmd_doctor)
