"""Turn a request's Context (and its verdict facts) into one audit row; never values.

Only identifiers, counts, types, scores and revisions are copied: the stages' typed
findings (:mod:`appliance.core.findings`) hold no raw values, and this module reads
their named fields only.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from appliance.audit.schema import to_micros
from appliance.core.context import Context
from appliance.core.decision import decision_of
from appliance.core.streamed import STREAMED
from appliance.core.findings import (
    AnswerSafetyFindings,
    PiiFindings,
    PolicyFindings,
    RedactionFindings,
    RiskFindings,
    ToolCallFindings,
)


def _json(value: object) -> str | None:
    if value is None:
        return None
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode()


def _reasons(ctx: Context, policy: PolicyFindings | None) -> list[str]:
    out: list[str] = []
    for v in ctx.verdicts:
        for r in v.reasons:
            if r not in out:
                out.append(r)
    for r in policy.reasons if policy else ():
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


def _redaction(found: RedactionFindings | None) -> dict[str, object] | None:
    if found is None or not found.applied:
        return None
    return {
        "actions": dict(found.actions),
        "masked": found.masked,
        "hashed": found.hashed,
        "redacted": found.redacted,
    }


def _tool(ctx: Context) -> dict[str, object] | None:
    """An MCP tool call's server, tool and annotations (in ``extra``; never arguments)."""
    tool = ctx.findings(ToolCallFindings)
    if tool is None:
        return None
    return {"tool": {"server": tool.server, "name": tool.tool, "read_only": tool.read_only,
                     "destructive": tool.destructive, "idempotent": tool.idempotent,
                     "open_world": tool.open_world, "is_error": tool.is_error}}


def _request_extra(ctx: Context, policy: PolicyFindings | None) -> dict[str, object] | None:
    """A request record's ``extra``: an MCP call's tool, a stream that ended part-way, the
    value-free policy input (so a policy change can be replayed on past traffic: the
    console's replay reads it)."""
    extra: dict[str, object] = dict(_tool(ctx) or {})
    progress = ctx.get(STREAMED)
    if progress is not None and progress.partial(ctx.status):
        extra["partial"] = {"chunks": progress.chunks, "usage_estimated": progress.estimated}
    if policy is not None and policy.input:
        extra["policy_input"] = policy.input
    return extra or None


def request_row(ctx: Context) -> dict[str, Any]:
    """The audit row of one finished request (without chain fields or payload)."""
    end = ctx.finished_at if ctx.finished_at is not None else time.time()
    p = ctx.principal
    pii = ctx.findings(PiiFindings)
    risk = ctx.findings(RiskFindings)
    policy = ctx.findings(PolicyFindings)
    answer = ctx.findings(AnswerSafetyFindings)
    counts = {t: n for t, n in pii.counts.items()} if pii and pii.scanned else None
    safety_flags = set(risk.safety_flags if risk else ()) | set(answer.flags if answer else ())
    safety_blocked = set(risk.safety_blocked if risk else ()) | set(
        answer.blocked if answer else ()
    )
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
        "application": (p.application if p else None) or (risk.application if risk else None),
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
        "decision": str(decision_of(ctx)),
        "reasons": _json(_reasons(ctx, policy)),
        "policy_revision": policy.revision or None if policy else None,
        "policy_rules": _json(list(policy.rules)) if policy else None,
        "obligations": _json(_obligations(ctx)),
        "risk_class": risk.risk_class if risk else None,
        "risk_areas": _json(
            [{"id": a.id, "article": a.article, "score": a.score} for a in risk.areas]
        ) if risk else None,
        "risk_drift": risk.drift if risk else None,
        "declared_class": risk.declared_class if risk else None,
        "pii_counts": _json(counts),
        "pii_total": sum(counts.values()) if counts else 0,
        "pii_recognizers": _json(
            {t: list(names) for t, names in pii.recognizers.items()}
        ) if pii and pii.recognizers else None,
        "pii_languages": _json(list(pii.languages)) if pii and pii.scanned else None,
        "redaction": _json(_redaction(ctx.findings(RedactionFindings))),
        "safety_flags": _json(sorted(safety_flags)),
        "safety_blocked": _json(sorted(safety_blocked)),
        "status": ctx.status,
        "error": ctx.error,
        "stages": _json(
            [{"stage": v.stage, "outcome": v.outcome, "ms": round(v.duration_s * 1000.0, 3),
              **({"reasons": list(v.reasons)} if v.reasons else {})}
             for v in ctx.verdicts]
        ),
        "extra": _json(_request_extra(ctx, policy)),
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
