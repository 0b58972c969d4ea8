"""RFC 6962 hashing and the published schema file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from appliance.audit.merkle import EMPTY_ROOT, MerkleFrontier, leaf_hash, node_hash, root_of
from appliance.audit.schema import render_schema_sql

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 33, 100])
def test_frontier_matches_rfc6962_recursive_root(n: int) -> None:
    leaves = [leaf_hash(str(i).encode()) for i in range(n)]
    f = MerkleFrontier()
    for h in leaves:
        f.append(h)
    assert f.root() == root_of(leaves)


def test_rfc6962_domain_separation() -> None:
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    assert root_of([a, b, leaf_hash(b"c")]) == node_hash(node_hash(a, b), leaf_hash(b"c"))
    assert MerkleFrontier().root() == EMPTY_ROOT


def test_schema_sql_file_is_current() -> None:
    assert (REPO / "audit" / "schema.sql").read_text("utf-8") == render_schema_sql()


def test_canonical_fast_path() -> None:
    """The writer's fast canonical form equals the one verification recomputes from the DB."""
    import datetime as dt

    from appliance.audit.rows import admin_row, request_row
    from appliance.audit.schema import canonical_bytes, canonical_bytes_fast
    from tests.audit.conftest import make_ctx

    rows = [request_row(make_ctx(1)), request_row(make_ctx(2, decision=False)), admin_row("purge", "t", {"a": 1})]
    rows[0].update(payload_key_id="dk-1", payload_nonce=b"\x01" * 12, payload_ct=b"\x02" * 40)
    for i, row in enumerate(rows):
        row.update(seq=i, prev_hash=b"\x07" * 32)
        assert canonical_bytes_fast("seg-x", row) == canonical_bytes("seg-x", row)
        as_read = dict(row, ts_start=dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=row["ts_start"]))
        assert canonical_bytes("seg-x", as_read) == canonical_bytes_fast("seg-x", row)
