"""The audit record: its columns, its DuckDB schema, and its canonical bytes.

Every column except ``leaf_hash`` and ``purged`` is covered by the record hash: the
hash is recomputed from the stored columns, so changing any stored value is detected.
``audit/schema.sql`` in the repository is rendered from this module (a test keeps the
two equal) so auditors can read the schema without reading Python.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any, Literal

import orjson
import pyarrow as pa

SCHEMA_VERSION = 1

Kind = Literal["ts", "str", "int", "float", "bool", "json", "blob"]


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: Kind
    doc: str


_SQL: dict[Kind, str] = {
    "ts": "TIMESTAMP",  # UTC (TIMESTAMPTZ needs pytz in Python clients)
    "str": "VARCHAR",
    "int": "BIGINT",
    "float": "DOUBLE",
    "bool": "BOOLEAN",
    "json": "JSON",
    "blob": "BLOB",
}
_ARROW: dict[Kind, pa.DataType] = {
    "ts": pa.timestamp("us"),
    "str": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "json": pa.string(),
    "blob": pa.binary(),
}

COLUMNS: tuple[Column, ...] = (
    Column("seq", "int", "position in the segment, 0-based; the Merkle leaf index"),
    Column("kind", "str", "request | access | purge | shred | rotate_key | recover | console"),
    Column("request_id", "str", "x-request-id returned to the client"),
    Column("ts_start", "ts", "request received"),
    Column("ts_end", "ts", "response finished (or failed)"),
    Column("latency_ms", "float", "ts_end - ts_start in milliseconds"),
    Column("tenant", "str", "tenant of the principal"),
    Column("user_id", "str", "user of the principal"),
    Column("key_id", "str", "id of the API key used (never the key)"),
    Column("department", "str", "department of the principal"),
    Column("roles", "json", "roles of the principal"),
    Column("application", "str", "application the key belongs to"),
    Column("route", "str", "chat.completions | completions | embeddings | messages | moderations | responses | mcp.tools/call"),
    Column("stream", "bool", "streaming response"),
    Column("requested_model", "str", "model the caller asked for"),
    Column("model", "str", "model finally used"),
    Column("provider", "str", "provider of the model used"),
    Column("region", "str", "region of the provider"),
    Column("prompt_tokens", "int", "input tokens"),
    Column("completion_tokens", "int", "output tokens"),
    Column("total_tokens", "int", "input + output tokens"),
    Column("cost_usd", "float", "cost of the request in USD"),
    Column("decision", "str", "allow | deny | rate_limited | error (appliance.core.decision)"),
    Column("reasons", "json", "reasons of the decision (policy and denying stages)"),
    Column("policy_revision", "str", "revision of the policy bundle that decided"),
    Column("policy_rules", "json", "ids of the policy rules that fired"),
    Column("obligations", "json", "obligations the policy imposed"),
    Column("risk_class", "str", "prohibited | high | limited | minimal"),
    Column("risk_areas", "json", "AI Act areas matched: [{id, article, score}]"),
    Column("risk_drift", "bool", "content does not match the declared purpose"),
    Column("declared_class", "str", "risk class declared for the application"),
    Column("pii_counts", "json", "PII findings by entity type (counts only, never values)"),
    Column("pii_total", "int", "total PII findings"),
    Column("pii_recognizers", "json", "recognizers that fired, by entity type"),
    Column("pii_languages", "json", "languages analysed"),
    Column("redaction", "json", "redaction actions and counts"),
    Column("safety_flags", "json", "safety categories flagged"),
    Column("safety_blocked", "json", "safety categories that blocked"),
    Column("status", "int", "HTTP status returned"),
    Column("error", "str", "error code/message returned (never content)"),
    Column("stages", "json", "per stage: outcome, duration and its reasons"),
    Column("extra", "json", "details of admin records (access, purge, shred, rotation); request records: an MCP call's tool and annotations, the policy input (value-free)"),
    Column("payload_key_id", "str", "data key that encrypts the payload (NULL: none stored)"),
    Column("payload_nonce", "blob", "AES-GCM nonce of the payload"),
    Column("payload_ct", "blob", "AES-GCM ciphertext of {request, response}"),
    Column("prev_hash", "blob", "leaf hash of the previous record (genesis hash for seq 0)"),
    Column("leaf_hash", "blob", "SHA256(0x00 || canonical bytes); not part of the canonical bytes"),
    Column("purged", "bool", "content removed by retention purge; hash kept; not hashed"),
)
COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
UNHASHED = frozenset({"leaf_hash", "purged"})
#: Columns a purge keeps: enough to prove the purge was due and the chain intact.
KEPT_BY_PURGE = frozenset({"seq", "kind", "ts_start", "ts_end", "tenant", "prev_hash", "leaf_hash", "purged"})
ARROW_SCHEMA = pa.schema([pa.field(c.name, _ARROW[c.kind]) for c in COLUMNS])
_KINDS = {c.name: c.kind for c in COLUMNS}


def genesis_hash(segment_id: str) -> bytes:
    return hashlib.sha256(b"appliance-audit-genesis|" + segment_id.encode()).digest()


def _canon_value(kind: Kind, value: Any) -> Any:
    if value is None:
        return None
    if kind == "ts":
        if isinstance(value, dt.datetime):
            epoch = dt.datetime(1970, 1, 1, tzinfo=value.tzinfo and dt.UTC)
            delta = value - epoch
            return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        return int(value)
    if kind == "blob":
        return bytes(value).hex()
    if kind == "float":
        return float(value)
    return value


def canonical_bytes(segment_id: str, row: dict[str, Any]) -> bytes:
    """Canonical, hash-covered bytes of one record (includes segment id and prev hash)."""
    doc: dict[str, Any] = {"segment_id": segment_id}
    for name in COLUMN_NAMES:
        if name in UNHASHED:
            continue
        kind = _KINDS[name]
        value = row.get(name)
        if name == "payload_ct" and value is not None:
            doc["payload_ct_sha256"] = hashlib.sha256(bytes(value)).hexdigest()
            continue
        doc[name] = _canon_value(kind, value)
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


_HASHED = tuple(n for n in COLUMN_NAMES if n not in UNHASHED and n != "payload_ct")
_FLOATS = tuple(c.name for c in COLUMNS if c.kind == "float")
_BLOBS = tuple(c.name for c in COLUMNS if c.kind == "blob" and c.name not in UNHASHED and c.name != "payload_ct")


def canonical_bytes_fast(segment_id: str, row: dict[str, Any]) -> bytes:
    """:func:`canonical_bytes` for rows built by the writer (times as integer micros).

    Same bytes, less work per record; ``test_canonical_fast_path`` keeps them equal.
    """
    doc = {name: row.get(name) for name in _HASHED}
    doc["segment_id"] = segment_id
    for name in _FLOATS:
        v = doc[name]
        if v is not None:
            doc[name] = float(v)
    for name in _BLOBS:
        v = doc[name]
        if v is not None:
            doc[name] = bytes(v).hex()
    ct = row.get("payload_ct")
    if ct is not None:
        doc["payload_ct_sha256"] = hashlib.sha256(ct).hexdigest()
    else:
        doc["payload_ct"] = None
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def to_micros(epoch_s: float) -> int:
    return round(epoch_s * 1_000_000)


def render_schema_sql() -> str:
    """DDL of one segment file (tables ``segment_info``, ``records``, ``checkpoints``)."""
    width = max(len(c.name) for c in COLUMNS)
    cols = ",\n".join(f"    {c.name.ljust(width)} {_SQL[c.kind]}" for c in COLUMNS)
    docs = "\n".join(f"--   {c.name.ljust(width)} {c.doc}" for c in COLUMNS)
    return f"""-- Schema of one audit segment file (schema version {SCHEMA_VERSION}).
-- Generated from appliance/audit/schema.py; a test keeps this file equal to it.
-- Each server process writes its own segment; readers attach all segments and see the
-- union as the view "records" (see docs/audit.md).
--
-- records columns:
{docs}

CREATE TABLE IF NOT EXISTS segment_info (
    segment_id     VARCHAR,
    schema_version INTEGER,
    host           VARCHAR,
    pid            BIGINT,
    created_at     TIMESTAMP,
    genesis_hash   BLOB
);

CREATE TABLE IF NOT EXISTS records (
{cols}
);

-- Signed checkpoints: Ed25519 over the canonical JSON of
-- {{v, segment_id, tree_size, root_hash, time_us, sealed, key_id}}.
CREATE TABLE IF NOT EXISTS checkpoints (
    tree_size  BIGINT,
    root_hash  VARCHAR,
    time_us    BIGINT,
    sealed     BOOLEAN,
    key_id     VARCHAR,
    signature  VARCHAR
);
"""
