"""``appliance policy test | check | eval | serve | explain | schema``."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from appliance.config import Config, load_config
from appliance.policy.engine import compile_fast, compile_source, entrypoint_path
from appliance.policy.source import PolicyLoadError, PolicySource, load_source

_INPUT_REF = re.compile(r"\binput((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def _state_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=None, help="TOML config file")
    p.add_argument("--data-dir", type=Path, default=None, help="data directory")


def _config(args: argparse.Namespace) -> Config:
    return load_config(getattr(args, "config", None), data_dir=getattr(args, "data_dir", None))


def _policy_dir(args: argparse.Namespace, config: Config) -> Path:
    given = getattr(args, "dir", None)
    return Path(given) if given is not None else config.policy.directory


def _load(args: argparse.Namespace) -> tuple[Config, PolicySource]:
    config = _config(args)
    return config, load_source(_policy_dir(args, config))


# -- test -------------------------------------------------------------------------------


def cmd_test(args: argparse.Namespace) -> int:
    from appliance.policy.rego import RegoEvalError
    from appliance.policy.runner import format_report, run_tests

    try:
        _, source = _load(args)
        report = run_tests(source)
    except (PolicyLoadError, RegoEvalError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(format_report(report))
    if report.failed or not report.results:
        return 1
    if args.min_coverage is not None and report.coverage_pct < args.min_coverage:
        print(f"coverage below --min-coverage {args.min_coverage:g}%", file=sys.stderr)
        return 1
    return 0


# -- check ------------------------------------------------------------------------------


def _schema_paths() -> set[str]:
    """Every dotted path the input schema defines (``request.model``, ``pii.counts``...)."""
    from appliance.policy.input_schema import json_schema

    schema = json_schema()
    defs = schema.get("$defs", {})
    out: set[str] = set()

    def walk(node: dict[str, Any], prefix: str) -> None:
        if "$ref" in node:
            node = defs[node["$ref"].rsplit("/", 1)[-1]]
        for name, sub in (node.get("properties") or {}).items():
            path = f"{prefix}.{name}" if prefix else name
            out.add(path)
            walk(sub, path)
        for alt in node.get("anyOf") or ():
            walk(alt, prefix)

    walk(schema, "")
    return out


def unknown_input_refs(source: PolicySource) -> list[str]:
    """``input.x.y`` references in the policies that the input schema does not define."""
    known = _schema_paths()
    problems = []
    for file, text in {**source.modules, **source.tests}.items():
        for lineno, line in enumerate(text.splitlines(), 1):
            code = line.split("#", 1)[0]
            for m in _INPUT_REF.finditer(code):
                path = m.group(1)[1:]
                if path not in known and not _under_map(path):
                    problems.append(f"{file}:{lineno}: input.{path} is not in the input schema")
    return problems


def _under_map(path: str) -> bool:
    """``pii.counts.PERSON``: keys of a map are data, not schema."""
    return path.startswith("pii.counts.")


def cmd_check(args: argparse.Namespace) -> int:
    from appliance.policy.input_schema import validate_input

    failed = False
    try:
        config, source = _load(args)
        compiled = compile_source(source, entrypoint_path(config.policy))
        print(f"ok: {len(source.modules)} modules, {len(source.tests)} test files, revision {source.revision}")
    except PolicyLoadError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 1
    if config.policy.evaluator == "regorus":
        _, note = compile_fast(source, entrypoint_path(config.policy), compiled)
        print(f"note: {note}" if note else "ok: the regorus VM decides like regopy on the example and test inputs")
    for problem in unknown_input_refs(source):
        failed = True
        print(f"error: {problem}", file=sys.stderr)
    if args.input is not None:
        doc = json.loads(Path(args.input).read_text("utf-8"))
        problems = validate_input(doc)
        for p in problems:
            print(f"error: {args.input}: {p}", file=sys.stderr)
        failed = failed or bool(problems)
        if not problems:
            print(f"ok: {args.input} matches the input schema")
    return 1 if failed else 0


# -- eval -------------------------------------------------------------------------------


def cmd_eval(args: argparse.Namespace) -> int:
    from appliance.policy.decision import from_result
    from appliance.policy.explain import explain_record
    from appliance.policy.input_schema import validate_input
    from appliance.policy.rego import RegoEvalError

    try:
        config, source = _load(args)
        compiled = compile_source(source, entrypoint_path(config.policy))
    except PolicyLoadError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 1
    doc = json.loads(sys.stdin.read() if str(args.input) == "-" else Path(args.input).read_text("utf-8"))
    for p in validate_input(doc):
        print(f"warning: input: {p}", file=sys.stderr)
    try:
        decision = from_result(compiled.evaluate(doc), source.revision)
    except RegoEvalError as e:
        print(f"error: evaluation failed: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(decision.facts(), indent=2, sort_keys=True))
    else:
        print(explain_record(decision.facts(), source))
    return 0 if decision.allow else 3


# -- explain ----------------------------------------------------------------------------


def cmd_explain(args: argparse.Namespace) -> int:
    from appliance.policy.explain import explain_record, find_record

    config = _config(args)
    try:
        source: PolicySource | None = load_source(_policy_dir(args, config))
    except PolicyLoadError:
        source = None
    record = find_record(config, args.request_id)
    if record is None:
        print(f"error: no audit record for request {args.request_id}", file=sys.stderr)
        return 1
    print(explain_record(record, source))
    return 0


# -- serve ------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from appliance.policy.server import create_app

    config = _config(args)
    root = None if args.no_dir else _policy_dir(args, config)
    app = create_app(config.policy, root)
    print(f"policy decision point on http://{args.host}:{args.port} (OPA REST API)", flush=True)
    web.run_app(app, host=args.host, port=args.port, print=None)
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from appliance.policy.input_schema import json_schema_text

    sys.stdout.write(json_schema_text())
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    policy = sub.add_parser("policy", help="Rego policies: test, check, eval, serve, explain")
    cmds = policy.add_subparsers(dest="policy_command", required=True)
    from appliance.cli import policy_bundle

    policy_bundle.register(cmds)

    p = cmds.add_parser("test", help="run the *_test.rego unit tests and report rule coverage")
    p.add_argument("dir", nargs="?", type=Path, default=None, help="policy directory")
    p.add_argument("--min-coverage", type=float, default=None, help="fail below this percentage")
    _state_args(p)
    p.set_defaults(func=cmd_test)

    p = cmds.add_parser("check", help="compile the policies, check input references and schema")
    p.add_argument("--dir", type=Path, default=None, help="policy directory")
    p.add_argument("--input", type=Path, default=None, help="also validate this input document")
    _state_args(p)
    p.set_defaults(func=cmd_check)

    p = cmds.add_parser("eval", help="decide one input document (JSON file, '-' for stdin)")
    p.add_argument("--input", required=True, help="input JSON file")
    p.add_argument("--dir", type=Path, default=None, help="policy directory")
    p.add_argument("--json", action="store_true", help="print the decision facts as JSON")
    _state_args(p)
    p.set_defaults(func=cmd_eval)

    p = cmds.add_parser("explain", help="which rules decided a past request (from the audit log)")
    p.add_argument("request_id")
    p.add_argument("--dir", type=Path, default=None, help="policy directory")
    _state_args(p)
    p.set_defaults(func=cmd_explain)

    p = cmds.add_parser("serve", help="serve the policies over OPA's REST API")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8181)
    p.add_argument("--dir", type=Path, default=None, help="policy directory")
    p.add_argument("--no-dir", action="store_true", help="serve only policies uploaded over the API")
    _state_args(p)
    p.set_defaults(func=cmd_serve)

    p = cmds.add_parser("schema", help="print the JSON schema of the policy input")
    p.set_defaults(func=cmd_schema)
