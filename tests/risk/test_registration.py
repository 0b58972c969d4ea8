"""High-risk use from an unregistered application, through the running appliance.

With the shipped policy data (``unregistered_high_risk: allow``) the request is answered,
and its audit record, the AI Act risk report and ``/metrics`` say "registration needed".
Set to ``deny`` in the same policy directory, the next such request is a 403. The real
app runs with the classify, decide, limits and record stages, the openai SDK as client.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI, PermissionDeniedError

from appliance.reports.export import export
from appliance.reports.request import Period, ReportRequest
from appliance.testing.fakes import FakeOpenAI
from appliance.testing.harness import openai_upstream
from tests.conftest import Running, StartAppliance

ROOT = Path(__file__).resolve().parents[2]
HIGH_RISK = "Rank these applicants and tell me whom to reject for the sales role."
RULE = "ai_act_art26_registration_needed"


@pytest.fixture
async def running(
    start_appliance: StartAppliance, fake_openai: FakeOpenAI, tmp_path: Path
) -> Running:
    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policies)
    return await start_appliance(
        openai_upstream("openai", fake_openai.base_url, {"gpt-4o": "gpt-4o"}, region="eu"),
        {
            "pipeline": {"redact": False, "screen_output": False},
            "policy": {"dir": str(policies), "reload_interval_s": 0.1},
            # rules only: the decision on a request the rules tag is under test, not the model
            "risk": {"embeddings": False},
        },
        key_kw={"tenant": "acme", "user": "alice", "department": "engineering"},
    )


def _audit_record(running: Running, request_id: str) -> dict[str, Any]:
    found = subprocess.run(
        [sys.executable, "-m", "appliance", "audit", "search", "--request-id", request_id,
         "--json", "--data-dir", str(running.data_dir)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert found.returncode == 0, found.stderr
    record: dict[str, Any] = json.loads(found.stdout.splitlines()[0])
    return record


def _risk_report(running: Running, out: Path) -> dict[str, Any]:
    today = dt.datetime.now(dt.UTC).date()
    export(running.config, ReportRequest("risk", Period(today - dt.timedelta(days=1), today)),
           "json", out)
    doc: dict[str, Any] = json.loads(out.read_bytes())
    return doc


async def test_unregistered_high_risk_is_served_and_reported_then_denied_by_the_switch(
    running: Running, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    async with AsyncOpenAI(base_url=running.base_url, api_key=running.key, max_retries=0) as c:
        raw = await c.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=[{"role": "user", "content": HIGH_RISK}]
        )
        answer = raw.parse().choices[0].message.content or ""
        served_id = raw.headers["x-request-id"]
        assert raw.headers["x-appliance-risk"].startswith("high; areas=annex3_4")
        assert raw.headers["x-appliance-decision"] == "allow"
        assert "Rank these applicants" in answer  # the fake upstream echoes: it was forwarded
        async with httpx.AsyncClient() as http:
            metrics = (await http.get(running.url + "/metrics")).text
        assert 'appliance_registration_needed_total{area="annex3_4",tenant="acme"} 1.0' in metrics

        data = Path(running.config.policy.directory) / "data" / "ai_act.yaml"
        data.write_text(data.read_text("utf-8").replace(
            "unregistered_high_risk: allow", "unregistered_high_risk: deny"), "utf-8")
        for _ in range(100):  # the engine re-reads changed data within reload_interval_s
            try:
                await c.chat.completions.create(
                    model="gpt-4o", messages=[{"role": "user", "content": HIGH_RISK}]
                )
            except PermissionDeniedError as e:
                denied = e
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the switch set to deny did not take effect")
        assert "registered high-risk application" in str(denied.body)
        forwarded = len(fake_openai.requests)
        with pytest.raises(PermissionDeniedError):
            await c.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": HIGH_RISK}]
            )
        assert len(fake_openai.requests) == forwarded  # a denied request is not forwarded
    await running.server.close()  # seals the segment, so that reports can read it

    record = await asyncio.to_thread(_audit_record, running, served_id)
    assert record["decision"] == "allow" and record["risk_class"] == "high"
    assert RULE in record["policy_rules"]
    assert record["obligations"]["registration_needed"] is True

    report = await asyncio.to_thread(_risk_report, running, tmp_path / "risk.json")
    summary = report["summary"]
    served = summary["registration_needed"]
    assert served >= 1 and summary["applications_needing_registration"] == 1
    rows = report["sections"]["registration"]["rows"]
    assert [(r["tenant"], r["application"], r["requests"]) for r in rows] == [
        ("acme", "(none)", served)
    ]
    assert "annex3_4" in rows[0]["areas"]
    assert any("Registration needed" in f for f in report["findings"])
    detail = [r for r in report["detail"]["rows"] if r["request_id"] == served_id]
    assert detail and detail[0]["registration_needed"] is True
    denials = [r for r in report["detail"]["rows"] if r["decision"] == "deny"]
    assert denials and not any(r["registration_needed"] for r in denials)
