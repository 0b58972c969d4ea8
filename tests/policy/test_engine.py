"""The embedded engine deciding the shipped policies, and its reload behaviour."""

from __future__ import annotations

import asyncio
import copy
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from appliance.config.policy import PolicyConfig
from appliance.policy.decision import from_result
from appliance.policy.engine import EmbeddedEngine
from appliance.policy.input import example_input
from appliance.policy.input_schema import validate_input
from appliance.policy.rego import UNDEFINED
from tests.policy.conftest import SHIPPED


def _with(**changes: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(example_input())
    for part, values in changes.items():
        doc[part].update(values)
    return doc


@pytest.fixture(scope="module")
def engine() -> EmbeddedEngine:
    e = EmbeddedEngine(PolicyConfig(dir=SHIPPED))
    e.load()
    return e


CASES: list[tuple[str, dict[str, Any], bool, str | None]] = [
    ("example input", _with(), True, None),
    ("intern on external model", _with(principal={"department": "interns"}), False, "access_model"),
    (
        "health data to us",
        _with(pii={"types": ["HEALTH"], "counts": {"HEALTH": 1}}, request={"provider_region": "us"}),
        False,
        "gdpr_art9_art44_special_category_transfer",
    ),
    (
        "health data to eu without art9 basis",
        _with(pii={"types": ["HEALTH"], "counts": {"HEALTH": 1}}),
        False,
        "gdpr_art9_special_categories",
    ),
    (
        "health data to eu with art9 basis",
        {**_with(pii={"types": ["HEALTH"], "counts": {"HEALTH": 1}}),
         "application": {"id": "care-bot", "art9_basis": {"HEALTH": "health_care"}}},
        True,
        None,
    ),
    ("secret in prompt", _with(pii={"types": ["SECRET"], "counts": {"SECRET": 1}}), False, "secrets_blocked"),
    ("prohibited", _with(risk={"class": "prohibited", "areas": ["art5_1_c"]}), False, "ai_act_art5_prohibited"),
    ("high risk unregistered", _with(risk={"class": "high"}), True, "ai_act_art26_registration_needed"),
    ("high risk registered", {**_with(risk={"class": "high"}), "application": {"id": "hr-screening"}}, True, None),
    ("trial tenant big prompt", _with(principal={"tenant": "trial"}, request={"token_estimate": 9000}), False, "tenant_prompt_cap"),
]


@pytest.mark.parametrize(("name", "doc", "allow", "rule"), CASES, ids=[c[0] for c in CASES])
def test_decisions(engine: EmbeddedEngine, name: str, doc: dict[str, Any], allow: bool, rule: str | None) -> None:
    assert validate_input(doc) == []
    d = engine.decide_sync(doc)
    assert d.allow is allow, d.reasons
    assert d.revision == engine.revision
    if rule is not None:
        assert rule in d.rules
        assert bool(d.reasons) is not allow  # a deny says why; an allow with a flag does not
    assert d.obligations["pii_actions"]["*"] == "mask"
    assert d.obligations["restore_pii"] is True


def test_high_risk_obligations(engine: EmbeddedEngine) -> None:
    d = engine.decide_sync({**_with(risk={"class": "high"}), "application": {"id": "hr-screening"}})
    assert d.obligations["deny_streaming"] is True
    assert d.obligations["store_payloads"] is True
    assert d.obligations["disclosure"] is True
    assert "registration_needed" not in d.obligations


def test_unregistered_high_risk_is_served_with_registration_needed(engine: EmbeddedEngine) -> None:
    d = engine.decide_sync(_with(risk={"class": "high", "areas": ["annex3_4"]}))
    assert d.allow and not d.reasons
    assert d.obligations["registration_needed"] is True
    assert d.obligations["deny_streaming"] is True and d.obligations["store_payloads"] is True
    assert "ai_act_art26_registration_needed" in d.rules


def test_the_switch_in_the_policy_data_denies_unregistered_high_risk(tmp_path: Path) -> None:
    """The one documented switch: data/ai_act.yaml ``unregistered_high_risk: deny``."""
    policies = tmp_path / "policies"
    shutil.copytree(SHIPPED, policies)
    data = policies / "data" / "ai_act.yaml"
    text = data.read_text("utf-8")
    assert "  unregistered_high_risk: allow\n" in text
    data.write_text(text.replace("unregistered_high_risk: allow", "unregistered_high_risk: deny"))
    e = EmbeddedEngine(PolicyConfig(dir=policies))
    e.load()
    d = e.decide_sync(_with(risk={"class": "high", "areas": ["annex3_4"]}))
    assert not d.allow
    assert "ai_act_art26_high_risk_unregistered" in d.rules
    assert "ai_act_art26_registration_needed" not in d.rules
    assert any("registered high-risk application" in r for r in d.reasons)


def test_undefined_and_malformed_results_deny() -> None:
    assert from_result(UNDEFINED, "r").allow is False
    assert from_result({"allow": "yes"}, "r").allow is False
    assert from_result([1], "r").allow is False
    ok = from_result({"allow": True, "obligations": {"pii_actions": {"PERSON": "bogus"}}}, "r")
    assert ok.allow and ok.obligations["pii_actions"] == {"*": "mask"}


def test_empty_input_is_denied(engine: EmbeddedEngine) -> None:
    d = engine.decide_sync({})
    assert not d.allow
    assert "input_incomplete" in d.rules


def _touch_later(path: Path, text: str) -> None:
    """Write ``text`` and move the mtime forward so a coarse clock still sees a change."""
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


async def _wait_for(cond: Any, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_data_edit_changes_next_decision_without_restart(policy_config: PolicyConfig) -> None:
    engine = EmbeddedEngine(policy_config)
    await engine.start()
    try:
        doc = _with(principal={"department": "sales"})
        assert (await engine.decide(doc)).allow
        before = engine.revision
        access = policy_config.dir / "data" / "access.yaml"
        _touch_later(
            access,
            access.read_text().replace(
                "  departments:\n", '  departments:\n    sales:\n      models: ["local-*"]\n      providers: ["local"]\n'
            ),
        )
        await _wait_for(lambda: engine.revision != before)
        d = await engine.decide(doc)
        assert not d.allow and "access_model" in d.rules
    finally:
        await engine.aclose()


async def test_syntax_error_keeps_last_good_policies(policy_config: PolicyConfig) -> None:
    engine = EmbeddedEngine(policy_config)
    await engine.start()
    try:
        good = engine.revision
        bad = policy_config.dir / "secrets.rego"
        _touch_later(bad, bad.read_text() + "\nbroken if {\n")
        await _wait_for(lambda: engine.last_error is not None)
        assert engine.revision == good
        assert "secrets.rego" in (engine.last_error or "")
        d = await engine.decide(_with(pii={"types": ["SECRET"], "counts": {"SECRET": 1}}))
        assert not d.allow and "secrets_blocked" in d.rules
        # fixing the file loads the fix
        _touch_later(bad, bad.read_text().replace("\nbroken if {\n", "\n"))
        await _wait_for(lambda: engine.last_error is None and engine.revision != good)
    finally:
        await engine.aclose()


def test_entrypoint_that_no_longer_decides_is_rejected(policy_config: PolicyConfig) -> None:
    """rego-cpp compiles a reference to an unknown rule silently; the smoke evaluation of
    the example input still catches an entrypoint that stops giving a decision."""
    engine = EmbeddedEngine(policy_config)
    engine.load()
    good = engine.revision
    main = policy_config.dir / "main.rego"
    _touch_later(main, main.read_text().replace('"allow": allow,', '"allow": no_such_rule,'))
    assert engine.reload_if_changed() is False
    assert engine.revision == good
    assert engine.last_error and "example input" in engine.last_error
    assert engine.decide_sync(example_input()).allow


async def test_offloaded_decisions_match_inline(policy_config: PolicyConfig) -> None:
    engine = EmbeddedEngine(policy_config.model_copy(update={"offload": True}))
    await engine.start()
    try:
        docs = [doc for _, doc, _, _ in CASES]
        got = await asyncio.gather(*(engine.decide(d) for d in docs))
        assert [g.allow for g in got] == [allow for _, _, allow, _ in CASES]
    finally:
        await engine.aclose()


def test_status_names_revision_and_rejected_edit(policy_config: PolicyConfig) -> None:
    engine = EmbeddedEngine(policy_config)
    engine.load()
    assert engine.status()["revision"] == engine.revision and engine.status()["last_error"] is None
    _touch_later(policy_config.dir / "broken.rego", "package appliance.main\n\nx if {\n")
    engine.reload_if_changed()
    assert "broken.rego:3" in str(engine.status()["last_error"])
