"""A policy change, from the author's edit to the live revision.

author edits -> compile (errors at their line) -> the policy's own tests with rule
coverage -> replay on recorded traffic -> submit -> another person approves -> the files
are written to the policy directory, which every engine watches and reloads (hot
reload) -> the new revision is recorded. Everything here is the policy package's own
machinery (``compile_source``, ``run_tests``, the regorus/regopy evaluators); nothing is
re-implemented.

Replay evaluates the decision inputs of recorded requests (the audit record keeps the
value-free policy input, never a payload) under the live policy and under the proposed
one, and reports the decisions that would flip, with examples.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import os
import re
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from regopy import RegoError

from appliance.config import Config
from appliance.policy.decision import Decision, from_result
from appliance.policy.engine import compile_fast, compile_source, entrypoint_path
from appliance.policy.rego import UNDEFINED, CompiledPolicy, RegoEvalError
from appliance.policy.rvm import RvmPolicy
from appliance.policy.runner import run_tests
from appliance.policy.source import PolicyLoadError, PolicySource, load_source

_LOCATION = re.compile(r"(?P<file>[\w./-]+\.(?:rego|yaml|yml|json)):(?P<line>\d+)")
#: Examples of flipped decisions kept per direction.
EXAMPLES = 10


def policy_files(root: Path) -> dict[str, str]:
    """Every file of the policy set (modules, tests, data) by relative path."""
    files = sorted(root.rglob("*.rego"))
    data = root / "data"
    if data.is_dir():
        files += sorted(p for p in data.iterdir() if p.suffix in (".yaml", ".yml", ".json") and p.is_file())
    return {p.relative_to(root).as_posix(): p.read_text("utf-8") for p in files}


def valid_path(path: str) -> bool:
    """A file a change may set: a Rego module or a data file inside the policy directory."""
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts) or path.startswith("/") or "\\" in path:
        return False
    if path.endswith(".rego"):
        return True
    return len(parts) == 2 and parts[0] == "data" and path.endswith((".yaml", ".yml", ".json"))


def merged(base: Mapping[str, str], changes: Mapping[str, str | None]) -> dict[str, str]:
    out = dict(base)
    for path, text in changes.items():
        if text is None:
            out.pop(path, None)
        else:
            out[path] = text
    return out


def load_files(files: Mapping[str, str]) -> PolicySource:
    """The files as a policy source (written to a private temporary directory)."""
    with tempfile.TemporaryDirectory(prefix="policy-draft-") as tmp:
        root = Path(tmp)
        for path, text in files.items():
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, "utf-8")
        return load_source(root)


def _locate(message: str) -> list[dict[str, Any]]:
    return [{"file": m["file"], "line": int(m["line"])} for m in _LOCATION.finditer(message)]


def check(config: Config, files: Mapping[str, str]) -> dict[str, Any]:
    """Compile the set, then run its tests with coverage; errors carry file and line."""
    entrypoint = entrypoint_path(config.policy)
    try:
        source = load_files(files)
        compile_source(source, entrypoint)
    except PolicyLoadError as e:
        return {"compiled": False, "error": e.message, "at": _locate(e.message), "tests": None}
    result: dict[str, Any] = {"compiled": True, "error": None, "at": [], "revision": source.revision}
    try:
        report = run_tests(source)
    except (RegoEvalError, RegoError) as e:
        result["tests"] = {"error": str(e), "at": _locate(str(e)), "passed": 0, "failed": 1, "results": []}
        return result
    result["tests"] = {
        "error": None,
        "at": [],
        "passed": report.passed,
        "failed": report.failed,
        "coverage_pct": round(report.coverage_pct, 1),
        "uncovered": [r.rule_id for r in report.uncovered],
        "results": [
            {"file": r.case.file, "name": r.case.name, "passed": r.passed, "message": r.message}
            for r in report.results
        ],
    }
    return result


def check_passed(checks: Mapping[str, Any] | None) -> bool:
    tests = (checks or {}).get("tests") or {}
    return bool(checks and checks.get("compiled") and not tests.get("error")
                and tests.get("failed") == 0 and tests.get("passed", 0) > 0)


class _Evaluator:
    """One revision, compiled as the engine compiles it (regorus VM checked against regopy)."""

    def __init__(self, config: Config, source: PolicySource) -> None:
        entrypoint = entrypoint_path(config.policy)
        self.revision = source.revision
        self.reference: CompiledPolicy = compile_source(source, entrypoint)
        self.fast: RvmPolicy | None = None
        if config.policy.evaluator == "regorus":
            self.fast, _ = compile_fast(source, entrypoint, self.reference)

    def decide(self, doc: dict[str, Any]) -> Decision:
        value: Any = UNDEFINED
        if self.fast is not None:
            try:
                value = self.fast.evaluate(doc)
            except (RegoEvalError, TypeError):
                value = UNDEFINED
        if value is UNDEFINED:
            try:
                value = self.reference.evaluate(doc)
            except (RegoEvalError, TypeError):
                value = UNDEFINED
        return from_result(value, self.revision)


def replay(
    config: Config, old: PolicySource, new: PolicySource, inputs: list[dict[str, Any]], missing: int, days: int,
) -> dict[str, Any]:
    """Evaluate recorded inputs under ``old`` and ``new``; count and show what flips."""
    started = time.perf_counter()
    before, after = _Evaluator(config, old), _Evaluator(config, new)
    flips: dict[str, list[dict[str, Any]]] = {"allow_to_deny": [], "deny_to_allow": []}
    counts = {"allow_to_deny": 0, "deny_to_allow": 0, "obligations_changed": 0, "reasons_changed": 0}
    cache: dict[str, tuple[Decision, Decision]] = {}
    for item in inputs:
        text = item["input"]
        pair = cache.get(text)
        if pair is None:
            doc = json.loads(text)
            pair = (before.decide(doc), after.decide(doc))
            cache[text] = pair
        a, b = pair
        if a.allow != b.allow:
            direction = "allow_to_deny" if a.allow else "deny_to_allow"
            counts[direction] += 1
            if len(flips[direction]) < EXAMPLES:
                flips[direction].append({
                    "request_id": item["request_id"], "ts": item["ts"], "tenant": item["tenant"],
                    "application": item["application"], "model": item["model"],
                    "recorded": item["decision"], "old_rules": list(a.rules), "new_rules": list(b.rules),
                    "new_reasons": list(b.reasons)[:3],
                })
        elif a.obligations != b.obligations:
            counts["obligations_changed"] += 1
        elif a.reasons != b.reasons:
            counts["reasons_changed"] += 1
    return {
        "days": days,
        "evaluated": len(inputs),
        "distinct_inputs": len(cache),
        "missing_inputs": missing,
        "old_revision": old.revision,
        "new_revision": new.revision,
        "counts": counts,
        "flipped": counts["allow_to_deny"] + counts["deny_to_allow"],
        "examples": flips,
        "seconds": round(time.perf_counter() - started, 3),
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


def diff(base: Mapping[str, str], changes: Mapping[str, str | None]) -> list[dict[str, Any]]:
    """Unified diff per changed file, as lines tagged add/del/hunk/context."""
    out = []
    for path in sorted(changes):
        old = base.get(path)
        new = changes[path]
        if old == new:
            continue
        lines = list(difflib.unified_diff(
            (old or "").splitlines(), (new or "").splitlines(),
            fromfile=f"a/{path}" if old is not None else "/dev/null",
            tofile=f"b/{path}" if new is not None else "/dev/null", lineterm="", n=3,
        ))
        tagged = []
        for line in lines:
            kind = ("hunk" if line.startswith("@@") else "file" if line.startswith(("---", "+++"))
                    else "add" if line.startswith("+") else "del" if line.startswith("-") else "ctx")
            tagged.append({"kind": kind, "text": line})
        out.append({"path": path, "lines": tagged, "deleted": new is None, "added": old is None})
    return out


def apply(config: Config, changes: Mapping[str, str | None]) -> str:
    """Write the changed files into the live policy directory; returns the new revision.

    Each file is replaced atomically (write beside it, fsync, rename). The engines of
    every server process watch the directory and load the new revision within their
    ``reload_interval_s``; a revision that fails to load there keeps the old one.
    """
    root = config.policy.directory
    for path, text in changes.items():
        if not valid_path(path):
            raise ValueError(f"not a policy file: {path}")
        target = root / path
        if text is None:
            target.unlink(missing_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return load_source(root).revision
