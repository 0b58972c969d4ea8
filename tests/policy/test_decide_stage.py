"""DecideStage: typed findings, obligations on the context, deny with reasons; OPA fail-closed."""

from __future__ import annotations

from pathlib import Path

from appliance.config import load_config
from appliance.core.context import Context, Principal
from appliance.core.findings import Findings, PiiFindings, PolicyFindings, Verdict
from appliance.pipeline.decide import DecideStage
from tests.policy.conftest import SHIPPED


def _ctx(*found: Findings) -> Context:
    ctx = Context(
        request_id="r1",
        route="chat.completions",
        body={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]},
        api_key=None,
        principal=Principal("k1", "acme", "alice", "engineering", ("developer",)),
        requested_model="gpt-4o-mini",
        model="gpt-4o-mini",
        provider="local",
        provider_region="us",
    )
    for f in found:
        ctx.verdicts.append(Verdict("earlier", findings=f))
    return ctx


def _policy(v: Verdict) -> PolicyFindings:
    assert isinstance(v.findings, PolicyFindings)
    return v.findings


async def test_allow_sets_obligations_and_findings() -> None:
    stage = DecideStage(load_config(overrides={"policy": {"dir": str(SHIPPED)}}))
    await stage.start()
    try:
        ctx = _ctx()
        v = await stage.run(ctx)
        assert v.stage == "decide" and v.outcome == "continue"
        assert _policy(v).allow is True
        assert ctx.obligations["pii_actions"] == {"*": "mask"}
        assert ctx.obligations["restore_pii"] is True
        assert _policy(v).obligations == ctx.obligations
        assert _policy(v).revision == stage.engine.revision
    finally:
        await stage.aclose()


async def test_deny_carries_reasons_and_rules() -> None:
    stage = DecideStage(load_config(overrides={"policy": {"dir": str(SHIPPED)}}))
    await stage.start()
    try:
        ctx = _ctx(PiiFindings(scanned=True, counts={"HEALTH": 1}, languages=("en",)))
        v = await stage.run(ctx)
        assert v.outcome == "deny"
        assert any("GDPR Art. 44" in r for r in v.reasons)
        assert "gdpr_art9_art44_special_category_transfer" in _policy(v).rules
    finally:
        await stage.aclose()


async def test_opa_engine_unreachable_denies(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = load_config(overrides={"policy": {"engine": "opa", "opa_url": f"http://127.0.0.1:{port}", "opa_timeout_s": 0.5}})
    stage = DecideStage(cfg)
    await stage.start()
    try:
        v = await stage.run(_ctx())
        assert v.outcome == "deny"
        assert "fail closed" in v.reasons[0]
    finally:
        await stage.aclose()
