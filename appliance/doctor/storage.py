"""Checks of what the appliance keeps on disk: the data dir, the policy set, the audit log."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.config.audit import KeySourceConfig
from appliance.doctor.outcome import Outcome, Setup, fail, ok, warn

if TYPE_CHECKING:
    from appliance.audit.reader import AuditReader

#: Less free space than this under the data dir is worth a warning (the audit log grows).
_LOW_DISK_BYTES = 1 << 30


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _try_write(directory: Path) -> str | None:
    """Create, fsync and remove a file in ``directory``; the error's type when that fails.

    A real write, not ``os.access``: root passes every permission test, and read-only
    mounts or full disks only show when a write is attempted.
    """
    try:
        fd, name = tempfile.mkstemp(prefix=".doctor-", dir=directory)
        try:
            os.write(fd, b"appliance doctor write test\n")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(name)
    except OSError as e:
        return f"{type(e).__name__} ({e.strerror or 'write failed'})"
    return None


def check_data_dir(setup: Setup) -> Outcome:
    data = setup.config.storage.data_dir
    fix = f"make {data} a directory the service user can write (or set [storage] data_dir / --data-dir)"
    if data.exists() and not data.is_dir():
        return fail(f"{data} exists but is not a directory", fix)
    target = data if data.is_dir() else _nearest_existing(data)
    if not target.is_dir():
        return fail(f"{data} cannot be created: {target} is not a directory", fix)
    problem = _try_write(target)
    if problem is not None:
        where = data if target == data else f"{target} (to create {data})"
        return fail(f"cannot write in {where}: {problem}", fix)
    free = shutil.disk_usage(target).free
    state = "writable" if target == data else f"will be created (under writable {target})"
    if free < _LOW_DISK_BYTES:
        return warn(f"{data} {state}, but only {free / 2**20:.0f} MiB free",
                    "free disk space: the audit log and models grow there")
    return ok(f"{data} {state}, {free / 2**30:.1f} GiB free")


def check_policy(setup: Setup) -> Outcome:
    from appliance.policy.engine import compile_source, entrypoint_path
    from appliance.policy.rego import RegoEvalError
    from appliance.policy.runner import run_tests
    from appliance.policy.source import PolicyLoadError, load_source

    policy = setup.config.policy
    directory = policy.directory
    fix = f"appliance policy test{_state_flags(setup)} shows the details; fix the files in {directory}"
    try:
        source = load_source(directory)
        compile_source(source, entrypoint_path(policy))
        report = run_tests(source)
    except PolicyLoadError as e:
        return fail(f"{directory} does not compile: {_one_line(e.message)}", fix)
    except RegoEvalError as e:
        return fail(f"{directory}: the policy tests cannot run: {_one_line(str(e))}", fix)
    what = f"{len(source.modules)} modules compile, {report.passed}/{len(report.results)} tests pass"
    if report.failed:
        failing = ", ".join(r.case.name for r in report.results if not r.passed)
        return fail(f"{directory}: {report.failed} of {len(report.results)} policy tests fail: {failing}", fix)
    if not report.results:
        return warn(f"{directory}: {what}; no *_test.rego tests", "add tests beside the policies")
    if policy.engine == "opa" and not _opa_answers(policy.opa_url):
        return fail(f"{what}, but the OPA server at {policy.opa_url} does not answer /health: "
                    "every request would be denied (fail closed)",
                    "start the OPA server (or `appliance policy serve`), or set [policy] engine = \"embedded\"")
    if not setup.config.pipeline.decide:
        return warn(f"{what}, but [pipeline] decide = false: no request is checked by policy",
                    "set [pipeline] decide = true")
    return ok(f"{directory}: {what} (revision {source.revision}, engine {policy.engine})")


def _opa_answers(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=2) as r:  # noqa: S310 - configured URL
            return bool(r.status == 200)
    except (OSError, ValueError):
        return False


# -- audit ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Key:
    value: str | None
    #: Where it comes from, or why there is none (names only, never the value).
    source: str
    #: Missing, but the server will generate it at first start.
    generated_later: bool = False


def _find_key(source: KeySourceConfig, data_dir: Path, purpose: str) -> _Key:
    """The key as the server would find it, without generating a missing key file."""
    from appliance.audit.keys import KeyUnavailable, load_secret

    try:
        value = load_secret(source.model_copy(update={"generate_if_missing": False}), data_dir, purpose)
    except KeyUnavailable:
        if source.file is not None and source.generate_if_missing:
            return _Key(None, f"${source.env} unset, key file {source.file} will be generated at first start",
                        generated_later=True)
        return _Key(None, f"no {purpose} key: ${source.env or '(no env)'} is unset and no key file or kms_hook yields one")
    if source.env and os.environ.get(source.env):
        return _Key(value, f"${source.env}")
    if source.kms_hook:
        return _Key(value, "the kms_hook")
    return _Key(value, f"key file {source.file}")


def _missing_key(key: _Key, existing: str | None, fix: str) -> Outcome | None:
    """The outcome for a key that is not there (None when it is); ``existing`` names what
    on disk already depends on it: a key generated now would not open that."""
    if key.value is not None:
        return None
    if existing is not None:
        return fail(f"{existing} exist but {key.source}: they cannot be opened", fix)
    if key.generated_later:
        return warn(f"no audit log yet; {key.source}", "for production keep the keys outside the data dir: " + fix)
    return fail(key.source, fix)


def _tail_problem(reader: AuditReader, segment_id: str, alias: str, n: int) -> str | None:
    """Check the hash chain of the newest ``n`` records of one segment; None when intact."""
    from appliance.audit.merkle import leaf_hash
    from appliance.audit.schema import canonical_bytes, genesis_hash

    cur = reader.conn.cursor()
    (last,) = cur.execute(f"SELECT max(seq) FROM {alias}.records").fetchall()[0]
    if last is None:
        return None
    first = max(0, int(last) - n + 1)
    # One record before the window anchors its first link.
    expected = max(0, first - 1)
    rows = cur.execute(
        f"SELECT * FROM {alias}.records WHERE seq >= ? ORDER BY seq", [expected]
    ).fetch_arrow_table().to_pylist()
    prev = genesis_hash(segment_id) if first == 0 else None
    for row in rows:
        seq = row["seq"]
        if seq != expected:
            return f"{segment_id}: record seq {expected} missing or out of place"
        stored = bytes(row["leaf_hash"] or b"")
        if prev is not None and bytes(row["prev_hash"] or b"") != prev:
            return f"{segment_id}: record seq {seq} does not link to the one before"
        in_window = seq >= first  # the anchor before the window only lends its hash
        if in_window and not row.get("purged") and leaf_hash(canonical_bytes(segment_id, row)) != stored:
            return f"{segment_id}: record seq {seq} does not match its hash (altered)"
        prev = stored
        expected += 1
    return None


def check_audit(setup: Setup) -> Outcome:
    import duckdb

    from appliance.audit.reader import attach_all
    from appliance.audit.segments import AuditPaths

    config = setup.config
    if not (config.audit.enabled and config.pipeline.record):
        return warn("the audit log is off ([audit] enabled / [pipeline] record): requests leave no record",
                    "switch it on: it is the system of record (AI Act Art. 12, 19)")
    paths = AuditPaths.from_config(config)
    data = config.storage.data_dir
    db_key = _find_key(config.audit.db_key, data, "audit database")
    master = _find_key(config.audit.master_key, data, "audit master")
    segment_files = paths.segment_files()
    fix = (f"set ${config.audit.db_key.env} and ${config.audit.master_key.env} in the service "
           "environment (or configure key files / a kms_hook under [audit])")
    segments = f"{len(segment_files)} segments" if segment_files else None
    wrapped = "wrapped tenant data keys (keystore.json)" if paths.keystore.exists() else None
    missing = _missing_key(db_key, segments, fix) or _missing_key(master, wrapped, fix)
    if missing is not None:
        return missing
    if not segment_files:
        return ok(f"no audit log yet (database key from {db_key.source}, master key from {master.source})")
    assert db_key.value is not None
    try:
        # fresh=False: never ask running writers to rotate; their open segments are skipped.
        with attach_all(config, fresh=False, key=db_key.value) as reader:
            unreadable = sorted(n for n, why in reader.skipped.items() if why.startswith("unreadable"))
            if unreadable:
                return fail(f"{len(unreadable)} of {len(segment_files)} segments do not open with the "
                            f"configured key (from {db_key.source}): {unreadable[0]}",
                            "configure the database key these segments were written with")
            checked = 0
            for segment_id, alias in sorted(reader.segments.items()):
                problem = _tail_problem(reader, segment_id, alias, setup.audit_records)
                if problem is not None:
                    return fail(f"hash chain broken: {problem}",
                                f"appliance audit verify{_state_flags(setup)} names every broken record")
                checked += 1
    except duckdb.Error as e:
        return fail(f"the audit log cannot be read ({type(e).__name__})",
                    f"appliance audit verify{_state_flags(setup)}")
    busy = len(segment_files) - checked
    note = f"; {busy} segments being written were not checked" if busy else ""
    return ok(f"{checked} segments open with the key from {db_key.source}; chain intact over the last "
              f"{setup.audit_records} records of each{note}")


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


def _state_flags(setup: Setup) -> str:
    flags = f" --config {setup.config_path}" if setup.config_path else ""
    return flags + f" --data-dir {setup.config.storage.data_dir}"
