"""build_input: from a Context and the pii_detect / classify verdicts to a valid input."""

from __future__ import annotations

from appliance.core.context import Context, Principal
from appliance.core.findings import AreaFinding, PiiFindings, RiskFindings, Verdict
from appliance.core.tokens import estimate_prompt
from appliance.policy.input import build_input
from appliance.policy.input_schema import validate_input


def _ctx(**kw: object) -> Context:
    ctx = Context(
        request_id="r1",
        route="chat.completions",
        body={
            "model": "gpt-4o-mini",
            "max_tokens": 100,
            "messages": [
                {"role": "system", "content": "x" * 40},
                {"role": "user", "content": [{"type": "text", "text": "y" * 40}, {"type": "image_url", "image_url": {"url": "u"}}]},
            ],
            "tools": [{"type": "function", "function": {"name": "lookup", "description": "d" * 8}}],
        },
        api_key=None,
        started_at=1764079380.0,  # 2025-11-25T14:03:00Z, a Tuesday
        principal=Principal("k1", "acme", "alice", "engineering", ("developer",), None),
        requested_model="gpt-4o-mini",
        model="gpt-4o-mini",
        provider="openai",
        provider_region="eu",
    )
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


def test_input_without_pii_and_risk_stages() -> None:
    doc = build_input(_ctx(), provider_kind="openai")
    assert validate_input(doc) == []
    assert doc["pii"] == {"scanned": False, "counts": {}, "types": [], "languages": [],
                          "special_categories": [], "special_linked": []}
    assert doc["risk"]["assessed"] is False and doc["risk"]["class"] is None
    assert doc["request"]["tools"] == ["lookup"]
    # The one estimate: the limits stage admits the request with the same number.
    assert doc["request"]["token_estimate"] == estimate_prompt(_ctx().body) == 50
    assert doc["request"]["max_tokens"] == 100
    assert doc["time"] == {"now": "2025-11-25T14:03:00Z", "hour": 14, "weekday": "tuesday"}


def test_input_with_stage_findings_and_no_values() -> None:
    ctx = _ctx()
    ctx.verdicts.append(Verdict("pii_detect", findings=PiiFindings(
        scanned=True, counts={"PERSON": 2, "EMAIL_ADDRESS": 0}, languages=("de",)
    )))
    ctx.verdicts.append(Verdict("classify", findings=RiskFindings(
        risk_class="high",
        content_class="high",
        areas=(AreaFinding("annex3_4", "Annex III(4)", 0.9),),
        drift=True,
        declared_class="minimal",
        application="hr-screening",
    )))
    doc = build_input(ctx)
    assert validate_input(doc) == []
    assert doc["pii"]["counts"] == {"PERSON": 2} and doc["pii"]["types"] == ["PERSON"]
    assert doc["risk"]["class"] == "high" and doc["risk"]["areas"] == ["annex3_4"]
    assert doc["risk"]["articles"] == ["Annex III(4)"]
    assert doc["application"] == {"id": "hr-screening", "art9_basis": {}}


def test_input_carries_special_categories_and_the_registered_basis() -> None:
    ctx = _ctx()
    ctx.verdicts.append(Verdict("pii_detect", findings=PiiFindings(
        scanned=True, counts={"PERSON": 1, "HEALTH": 2, "RELIGION": 1}, linked={"HEALTH": 1},
        languages=("en",),
    )))
    ctx.verdicts.append(Verdict("classify", findings=RiskFindings(
        risk_class="minimal", content_class="minimal", application="care-bot",
        art9_basis={"HEALTH": "health_care"},
    )))
    doc = build_input(ctx)
    assert validate_input(doc) == []
    assert doc["pii"]["special_categories"] == ["HEALTH", "RELIGION"]
    assert doc["pii"]["special_linked"] == ["HEALTH"]
    assert doc["application"] == {"id": "care-bot", "art9_basis": {"HEALTH": "health_care"}}
