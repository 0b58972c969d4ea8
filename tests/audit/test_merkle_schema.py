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
