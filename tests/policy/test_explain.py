"""`policy explain`: rules that decided a request, with their articles."""

from __future__ import annotations

from appliance.policy.explain import explain_record
from appliance.policy.source import load_source
from tests.policy.conftest import SHIPPED


def test_explain_audit_row() -> None:
    source = load_source(SHIPPED)
    row = {
        "decision": "deny",
        "reasons": ["prohibited AI practice (AI Act Art. 5; areas: art5_1_c)"],
        "policy_rules": ["ai_act_art5_prohibited"],
        "policy_revision": source.revision,
        "obligations": {"disclosure": True},
    }
    text = explain_record(row, source)
    assert "decision: deny" in text
    assert "ai_act_art5_prohibited: Prohibited AI practices are always denied [AI Act Art. 5(1)]" in text
    assert "may have changed" not in text


def test_explain_verdict_facts_from_other_revision() -> None:
    source = load_source(SHIPPED)
    facts = {"allow": True, "reasons": [], "rules": ["tenant_output_cap"], "revision": "0ld", "obligations": {}}
    text = explain_record(facts, source)
    assert "decision: allow" in text and "may have changed" in text and "tenant_output_cap" in text
