"""Administrative acts (payload access, purge, shred, key rotation) go into the chain too.

Command-line processes cannot write a server's segment, so they append to this host's
admin segment (``admin-<host>.duckdb``): open it (waiting while another command holds
it), append, sign a checkpoint, close. The act is durable before the command proceeds.
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping
from typing import Any

from appliance.audit.rows import admin_row
from appliance.audit.segments import AuditPaths, SegmentFile, admin_segment_id, db_key, signer
from appliance.config import Config


def actor() -> str:
    """Who runs the command (the OS account; commands have no API principal)."""
    try:
        return "os:" + getpass.getuser()
    except (KeyError, OSError):
        return "os:unknown"


def append_admin(
    config: Config, kind: str, details: Mapping[str, Any], *, tenant: str | None = None, wait_s: float = 30.0
) -> tuple[str, int]:
    """Append one admin record durably; returns (segment id, seq)."""
    paths = AuditPaths.from_config(config)
    key = db_key(config)
    sign = signer(config, paths)
    paths.checkpoints.mkdir(parents=True, exist_ok=True)
    seg = SegmentFile.create_or_open(paths, key, admin_segment_id(), wait_s=wait_s)
    try:
        row = admin_row(kind, actor(), details, tenant=tenant)
        seg.append([row])
        seg.checkpoint(sign, paths.checkpoint_dirs())
        return seg.segment_id, int(row["seq"])
    finally:
        seg.close()
