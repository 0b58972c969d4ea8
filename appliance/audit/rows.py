"""Turn a request's Context (and its verdict facts) into one audit row; never values.

Only identifiers, counts, types, scores and revisions are copied: the facts contract
(contracts.md) already forbids raw values in verdicts, and this module reads named
fields only, so a stage that put something unexpected in its facts does not leak it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from appliance.audit.schema import to_micros
from appliance.pipeline.context import Context, Verdict


def _json(value: object) -> str | None:
    if value is None:
        return None
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode()


def _latest(ctx: Context, stage: str) -> Verdict | None:
    for v in reversed(ctx.verdicts):
        if v.stage == stage:
            return v
    return None


def _facts(ctx: Context, stage: str) -> Mapping[str, object]:
    v = _latest(ctx, stage)
    return v.facts if v is not None else {}


def _int_map(value: object) -> dict[str, int] | None:
    if not isinstance(value, Mapping):
        return None
    return {str(k): int(n) for k, n in value.items() if isinstance(n, (int, float))}


def _str_list(value: object) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple, set, frozenset)):
        return [str(x) for x in value]
    return None


def _areas(value: object) -> list[dict[str, object]] | None:
    if not isinstance(value, (list, tuple)):
        return None
    out: list[dict[str, object]] = []
    for a in value:
        if isinstance(a, Mapping):
            score = a.get("score")
            out.append(
                {
                    "id": str(a.get("id")),
                    "article": None if a.get("article") is None else str(a.get("article")),
                    "score": float(score) if isinstance(score, (int, float)) else None,
                }
            )
    return out


def decision_of(ctx: Context) -> str:
    """allow | deny | error: deny when any stage denied or the status says so."""
    if any(v.outcome == "deny" for v in ctx.verdicts) or ctx.status in (401, 403, 429):
        return "deny"
    allow = _facts(ctx, "decide").get("allow")
    if allow is False:
        return "deny"
    if ctx.status >= 400:
        return "error"
    return "allow"


def _reasons(ctx: Context) -> list[str]:
    out: list[str] = []
    for v in ctx.verdicts:
        for r in v.reasons:
            if r not in out:
                out.append(r)
    for r in _str_list(_facts(ctx, "decide").get("reasons")) or []:
        if r not in out:
            out.append(r)
    return out


def _obligations(ctx: Context) -> dict[str, Any]:
    """Obligations with scalar values only (they are policy outputs, not request content)."""
    out: dict[str, Any] = {}
    for k, v in ctx.obligations.items():
        if isinstance(v, (bool, int, float, str)) or v is None:
            out[str(k)] = v
        elif isinstance(v, Mapping):
            out[str(k)] = {str(a): b for a, b in v.items() if isinstance(b, (bool, int, float, str))}
    return out


def request_row(ctx: Context) -> dict[str, Any]:
    """The audit row of one finished request (without chain fields or payload)."""
    end = ctx.finished_at if ctx.finished_at is not None else time.time()
    p = ctx.principal
    pii = _facts(ctx, "pii_detect")
    risk = _facts(ctx, "classify")
    decide = _facts(ctx, "decide")
    redact = _facts(ctx, "redact")
    counts = _int_map(pii.get("counts"))
    redaction: dict[str, object] | None = None
    if redact:
        redaction = {
            "actions": {str(k): str(v) for k, v in dict(redact.get("actions") or {}).items()},  # type: ignore[call-overload]
            **{k: int(redact.get(k) or 0) for k in ("masked", "hashed", "redacted")},  # type: ignore[call-overload]
        }
    safety_flags = set(_str_list(risk.get("safety_flags")) or [])
    safety_blocked = set(_str_list(risk.get("safety_blocked")) or [])
    for stage in ("safety_output",):
        f = _facts(ctx, stage)
        safety_flags.update(_str_list(f.get("safety_flags")) or [])
        safety_blocked.update(_str_list(f.get("safety_blocked")) or [])
    declared = risk.get("declared_class")
    return {
        "kind": "request",
        "request_id": ctx.request_id,
        "ts_start": to_micros(ctx.started_at),
        "ts_end": to_micros(end),
        "latency_ms": round((end - ctx.started_at) * 1000.0, 3),
        "tenant": p.tenant if p else None,
        "user_id": p.user if p else None,
        "key_id": p.key_id if p else None,
        "department": p.department if p else None,
        "roles": _json(list(p.roles)) if p else None,
        "application": (p.application if p else None) or (str(risk["application"]) if risk.get("application") else None),
        "route": ctx.route,
        "stream": ctx.stream,
        "requested_model": ctx.requested_model or None,
        "model": ctx.model or None,
        "provider": ctx.provider or None,
        "region": ctx.provider_region or None,
        "prompt_tokens": ctx.usage.prompt_tokens,
        "completion_tokens": ctx.usage.completion_tokens,
        "total_tokens": ctx.usage.total_tokens,
        "cost_usd": float(ctx.cost_usd),
        "decision": decision_of(ctx),
        "reasons": _json(_reasons(ctx)),
        "policy_revision": None if decide.get("revision") is None else str(decide.get("revision")),
        "policy_rules": _json(_str_list(decide.get("rules"))),
        "obligations": _json(_obligations(ctx)),
        "risk_class": None if risk.get("risk_class") is None else str(risk.get("risk_class")),
        "risk_areas": _json(_areas(risk.get("areas"))),
        "risk_drift": bool(risk["drift"]) if "drift" in risk else None,
        "declared_class": None if declared is None else str(declared),
        "pii_counts": _json(counts),
        "pii_total": sum(counts.values()) if counts else 0,
        "pii_recognizers": _json(
            {str(k): _str_list(v) for k, v in dict(pii.get("recognizers") or {}).items()}  # type: ignore[call-overload]
            if pii.get("recognizers")
            else None
        ),
        "pii_languages": _json(_str_list(pii.get("languages"))),
        "redaction": _json(redaction),
        "safety_flags": _json(sorted(safety_flags)),
        "safety_blocked": _json(sorted(safety_blocked)),
        "status": ctx.status,
        "error": ctx.error,
        "stages": _json(
            [{"stage": v.stage, "outcome": v.outcome, "ms": round(v.duration_s * 1000.0, 3)} for v in ctx.verdicts]
        ),
        "extra": None,
    }


def admin_row(kind: str, actor: str, details: Mapping[str, Any], *, tenant: str | None = None) -> dict[str, Any]:
    """An audit row for an administrative act (payload access, purge, shred, key rotation)."""
    now = to_micros(time.time())
    return {
        "kind": kind,
        "request_id": None,
        "ts_start": now,
        "ts_end": now,
        "latency_ms": 0.0,
        "tenant": tenant,
        "user_id": actor,
        "decision": "allow",
        "status": 0,
        "extra": _json(dict(details)),
    }
