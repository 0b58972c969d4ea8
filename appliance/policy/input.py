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

from appliance.pii.special.categories import SPECIAL_CATEGORIES
from appliance.pipeline.context import Context

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _text_chars(value: Any) -> int:
    """Characters of prompt text in a content value (str, list of parts, list of str)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        total = 0
        for part in value:
            if isinstance(part, str):
                total += len(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                total += len(part["text"])
        return total
    return 0


def estimate_tokens(body: dict[str, Any]) -> int:
    """Rough prompt size in tokens (characters / 4): cheap, tokenizer-free, model-agnostic."""
    chars = 0
    for msg in body.get("messages") or ():
        if not isinstance(msg, dict):
            continue
        chars += _text_chars(msg.get("content"))
        for call in msg.get("tool_calls") or ():
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                chars += len(fn["arguments"])
    chars += _text_chars(body.get("prompt"))
    chars += _text_chars(body.get("input"))
    for tool in body.get("tools") or ():
        fn = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("description"), str):
            chars += len(fn["description"])
    return (chars + 3) // 4


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


def _latest_facts(ctx: Context, stage: str) -> dict[str, Any] | None:
    for v in reversed(ctx.verdicts):
        if v.stage == stage:
            return dict(v.facts)
    return None


def _str_list(value: Any) -> list[str]:
    return [str(x) for x in value] if isinstance(value, (list, tuple, set, frozenset)) else []


def _art9_basis(risk: dict[str, Any] | None) -> dict[str, str]:
    """The calling application's registered Art. 9(2) bases (category or "*" -> basis)."""
    basis = (risk or {}).get("art9_basis")
    return {str(k): str(v) for k, v in basis.items()} if isinstance(basis, dict) else {}


def build_input(ctx: Context, *, provider_kind: str | None = None) -> dict[str, Any]:
    """The policy input for ``ctx`` (see docs/policy-input.md); never holds prompt text."""
    p = ctx.principal
    pii = _latest_facts(ctx, "pii_detect")
    risk = _latest_facts(ctx, "classify")
    counts_raw = (pii or {}).get("counts") or {}
    counts = {str(k): int(n) for k, n in counts_raw.items() if int(n) > 0}
    linked = (pii or {}).get("linked") or {}
    areas = [a for a in (risk or {}).get("areas") or () if isinstance(a, dict)]
    application = (p.application if p else None) or (risk or {}).get("application")
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
            "token_estimate": estimate_tokens(ctx.body),
            "max_tokens": _max_tokens(ctx.body),
            "stream": bool(ctx.stream),
            "tools": _tool_names(ctx.body),
        },
        "pii": {
            "scanned": pii is not None,
            "counts": counts,
            "types": sorted(counts),
            "languages": _str_list((pii or {}).get("languages")),
            "special_categories": sorted(t for t in counts if t in SPECIAL_CATEGORIES),
            "special_linked": sorted(
                str(t) for t, n in linked.items() if t in SPECIAL_CATEGORIES and int(n) > 0
            ),
        },
        "risk": {
            "assessed": risk is not None,
            "class": (risk or {}).get("risk_class"),
            "areas": [str(a.get("id")) for a in areas if a.get("id") is not None],
            "articles": sorted({str(a["article"]) for a in areas if a.get("article")}),
            "declared_class": (risk or {}).get("declared_class"),
            "drift": bool((risk or {}).get("drift", False)),
            "safety_flags": _str_list((risk or {}).get("safety_flags")),
            "safety_blocked": _str_list((risk or {}).get("safety_blocked")),
        },
        "application": {"id": application, "art9_basis": _art9_basis(risk)},
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
        "application": {"id": None, "art9_basis": {}},
        "time": {"now": "2026-11-25T14:03:00Z", "hour": 14, "weekday": "wednesday"},
    }
