"""The policy input: one JSON document built from the request context.

Everything a policy may look at is here and nothing else: who calls, what is asked
(metadata, never the text), what the PII and risk stages found (types, counts, tags,
never values), and when. The shape is documented in ``docs/policy-input.md`` and
``docs/policy-input.schema.json`` (generated from :mod:`appliance.policy.input_schema`).
Stages may be switched off: their parts are then present but empty, with
``pii.scanned`` / ``risk.assessed`` false so a policy can tell "none found" from "not looked".
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from appliance.core.context import Context
from appliance.core.findings import PiiFindings, RiskFindings, ToolCallFindings
from appliance.core.tokens import estimate_prompt
from appliance.pii.special.categories import SPECIAL_CATEGORIES

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _tool_names(body: dict[str, Any]) -> list[str]:
    names: list[str] = []
    for tool in body.get("tools") or ():
        fn = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            names.append(fn["name"])
    return names


def _max_tokens(body: dict[str, Any]) -> int | None:
    for key in ("max_completion_tokens", "max_tokens"):
        v = body.get(key)
        if isinstance(v, int) and not isinstance(v, bool):
            return v
    return None


def _tool(ctx: Context) -> dict[str, Any] | None:
    """The MCP tool a ``tools/call`` asks for (None for every other route)."""
    tool = ctx.findings(ToolCallFindings)
    if tool is None:
        return None
    return {
        "server": tool.server,
        "name": tool.tool,
        "annotations": {
            "read_only": tool.read_only,
            "destructive": tool.destructive,
            "idempotent": tool.idempotent,
            "open_world": tool.open_world,
        },
    }


def _prompt_attack(risk: RiskFindings | None) -> dict[str, Any]:
    """The prompt-attack screen's finding; ``scanned`` false where it did not run."""
    found = risk.prompt_attack if risk else None
    if found is None:
        return {"scanned": False, "score": 0.0, "where": None, "technique": None,
                "scores": {}}
    return {"scanned": True, "score": found.score, "where": found.where,
            "technique": found.technique, "scores": dict(found.scores)}


def build_input(ctx: Context, *, provider_kind: str | None = None) -> dict[str, Any]:
    """The policy input for ``ctx`` (see docs/policy-input.md); never holds prompt text."""
    p = ctx.principal
    pii = ctx.findings(PiiFindings)
    risk = ctx.findings(RiskFindings)
    counts = {t: n for t, n in pii.counts.items() if n > 0} if pii else {}
    application = (p.application if p else None) or (risk.application if risk else None)
    now = datetime.fromtimestamp(ctx.started_at, UTC)
    return {
        "principal": {
            "key_id": p.key_id if p else None,
            "tenant": p.tenant if p else None,
            "user": p.user if p else None,
            "department": p.department if p else None,
            "roles": list(p.roles) if p else [],
        },
        "request": {
            "route": ctx.route,
            "model": ctx.model or ctx.requested_model,
            "requested_model": ctx.requested_model or ctx.model,
            "provider": ctx.provider,
            "provider_kind": provider_kind,
            "provider_region": ctx.provider_region or "unknown",
            "token_estimate": estimate_prompt(ctx.body),
            "max_tokens": _max_tokens(ctx.body),
            "stream": bool(ctx.stream),
            "tools": _tool_names(ctx.body),
        },
        "pii": {
            "scanned": pii is not None and pii.scanned,
            "counts": counts,
            "types": sorted(counts),
            "languages": sorted(pii.languages) if pii else [],
            "special_categories": sorted(t for t in counts if t in SPECIAL_CATEGORIES),
            "special_linked": sorted(
                t for t, n in (pii.linked.items() if pii else ()) if t in SPECIAL_CATEGORIES and n > 0
            ),
        },
        "risk": {
            "assessed": risk is not None,
            "class": risk.risk_class if risk else None,
            "areas": list(risk.area_ids) if risk else [],
            "articles": list(risk.articles) if risk else [],
            "declared_class": risk.declared_class if risk else None,
            "drift": risk.drift if risk else False,
            "safety_flags": list(risk.safety_flags) if risk else [],
            "safety_blocked": list(risk.safety_blocked) if risk else [],
        },
        "prompt_attack": _prompt_attack(risk),
        "application": {"id": application, "art9_basis": dict(risk.art9_basis) if risk else {}},
        "tool": _tool(ctx),
        "time": {
            "now": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "hour": now.hour,
            "weekday": _WEEKDAYS[now.weekday()],
        },
    }


def example_input() -> dict[str, Any]:
    """A typical, valid input: the docs' example, the reload smoke test, the benchmark."""
    return {
        "principal": {
            "key_id": "key_1",
            "tenant": "acme",
            "user": "alice",
            "department": "engineering",
            "roles": ["developer"],
        },
        "request": {
            "route": "chat.completions",
            "model": "gpt-4o-mini",
            "requested_model": "gpt-4o-mini",
            "provider": "openai",
            "provider_kind": "openai",
            "provider_region": "eu",
            "token_estimate": 420,
            "max_tokens": 512,
            "stream": False,
            "tools": ["get_weather"],
        },
        "pii": {
            "scanned": True,
            "counts": {"EMAIL_ADDRESS": 1, "PERSON": 2},
            "types": ["EMAIL_ADDRESS", "PERSON"],
            "languages": ["en"],
            "special_categories": [],
            "special_linked": [],
        },
        "risk": {
            "assessed": True,
            "class": "limited",
            "areas": [],
            "articles": [],
            "declared_class": None,
            "drift": False,
            "safety_flags": [],
            "safety_blocked": [],
        },
        "prompt_attack": {
            "scanned": True,
            "score": 0.0,
            "where": None,
            "technique": None,
            "scores": {"request": 0.0, "tool_result": 0.0, "retrieved": 0.0},
        },
        "application": {"id": None, "art9_basis": {}},
        "tool": None,
        "time": {"now": "2026-11-25T14:03:00Z", "hour": 14, "weekday": "wednesday"},
    }
