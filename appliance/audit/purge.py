"""Retention: remove records past their tenant's retention, and say so in the chain.

Only sealed segments are touched (a running writer's segment is never opened). The plan
is recorded first, as a signed ``purge`` record in the admin segment listing every
(segment, seq range) to purge and every segment to drop; then the content is removed:

- a segment whose records are all expired is deleted as a whole; its checkpoints stay,
  so verification knows it existed and that a signed purge dropped it;
- otherwise the expired records keep only ``seq``, ``kind``, times, ``tenant`` and their
  hashes (``purged = true``): the Merkle tree and the chain still verify, and verification
  checks that every purged record is covered by a signed purge record.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from appliance.audit.admin_log import append_admin
from appliance.audit.checkpoints import load_external
from appliance.audit.schema import COLUMN_NAMES, KEPT_BY_PURGE
from appliance.audit.segments import (
    AuditPaths,
    SegmentLocked,
    attach,
    connect,
    db_key,
    segment_start,
)
from appliance.config import Config

_DAY_US = 86_400 * 1_000_000


@dataclass
class PurgePlan:
    segments: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    records: int = 0
    skipped: dict[str, str] = field(default_factory=dict)

    def details(self, config: Config, now_us: int) -> dict[str, Any]:
        return {
            "at_us": now_us,
            "retention_days": config.audit.retention_days,
            "tenant_retention_days": dict(config.audit.tenant_retention_days),
            "records": self.records,
            "segments": {k: [list(r) for r in v] for k, v in self.segments.items()},
            "dropped": self.dropped,
        }


def _ranges(seqs: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s in sorted(seqs):
        if out and out[-1][1] == s - 1:
            out[-1] = (out[-1][0], s)
        else:
            out.append((s, s))
    return out


def _open(path: Path, key: str, tmp: Path, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    conn = connect(tmp)
    try:
        attach(conn, path, "seg", key, read_only=read_only)
    except BaseException:
        conn.close()
        raise
    return conn


def plan_purge(config: Config, now_us: int) -> PurgePlan:
    paths = AuditPaths.from_config(config)
    key = db_key(config)
    sealed = {
        (cp.segment_id, cp.tree_size) for cp in load_external(paths.checkpoints) if cp.sealed
    }
    plan = PurgePlan()
    for path in paths.segment_files():
        seg_id = path.stem
        if segment_start(seg_id) is None:
            continue  # admin segment: kept
        try:
            conn = _open(path, key, paths.tmp, read_only=True)
        except SegmentLocked:
            plan.skipped[seg_id] = "being written or read"
            continue
        try:
            rows = conn.execute(
                "SELECT seq, tenant, epoch_us(ts_end), coalesce(purged, false) FROM seg.records ORDER BY seq"
            ).fetchall()
        finally:
            conn.close()
        if (seg_id, len(rows)) not in sealed:
            plan.skipped[seg_id] = "not sealed"
            continue
        expired: list[int] = []
        all_gone = bool(rows)
        for seq, tenant, ts_end_us, purged in rows:
            days = config.audit.retention_for(tenant)
            due = ts_end_us is not None and ts_end_us < now_us - days * _DAY_US
            if due and not purged:
                expired.append(int(seq))
            all_gone = all_gone and (due or bool(purged))
        if all_gone:
            plan.dropped.append(seg_id)
            plan.records += len(expired)
        elif expired:
            plan.segments[seg_id] = _ranges(expired)
            plan.records += len(expired)
    return plan


def apply_purge(config: Config, plan: PurgePlan) -> None:
    paths = AuditPaths.from_config(config)
    key = db_key(config)
    cleared = ", ".join(f"{c} = NULL" for c in COLUMN_NAMES if c not in KEPT_BY_PURGE)
    for seg_id in plan.dropped:
        for suffix in (".duckdb", ".duckdb.wal", ".duckdb.lock"):
            (paths.segments / f"{seg_id}{suffix}").unlink(missing_ok=True)
    for seg_id, spans in plan.segments.items():
        conn = _open(paths.segments / f"{seg_id}.duckdb", key, paths.tmp, read_only=False)
        try:
            conn.execute("BEGIN TRANSACTION")
            for lo, hi in spans:
                conn.execute(
                    f"UPDATE seg.records SET {cleared}, purged = true WHERE seq BETWEEN ? AND ?", [lo, hi]
                )
            conn.execute("COMMIT")
            conn.execute("CHECKPOINT seg")
        finally:
            conn.close()


def purge(config: Config, *, now: float | None = None, dry_run: bool = False) -> PurgePlan:
    """Purge expired records; the signed purge record is durable before anything is removed."""
    now_us = round((now if now is not None else time.time()) * 1e6)
    plan = plan_purge(config, now_us)
    if dry_run or not (plan.segments or plan.dropped):
        return plan
    append_admin(config, "purge", plan.details(config, now_us))
    apply_purge(config, plan)
    return plan
