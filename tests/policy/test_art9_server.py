"""Through the real app and the openai SDK, every stage on: special-category data to an
external provider is refused (403, with the reason) unless the calling application is
registered with an Art. 9(2) basis; a local model may serve it; the audit log records
the categories either way."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from appliance.audit.reader import open_reader
from appliance.risk.apps import register_application
from appliance.keys.store import ControlPlane, control_plane_path
from appliance.testing.fakes import FakeOpenAI
from appliance.testing.harness import openai_upstream
from tests.conftest import StartAppliance
from tests.policy.conftest import SHIPPED

PROMPT = "Summarise the sick notes of Mr. Hamid Karimi, who has been in therapy for depression."


async def test_special_categories_decide_where_a_request_may_go(
    start_appliance: StartAppliance, fake_openai: FakeOpenAI, test_models: Any
) -> None:
    running = await start_appliance(
        openai_upstream("openai", fake_openai.base_url, {"gpt-4o": "gpt-4o"}, region="eu"),
        {"providers": {"local": {"models_dir": str(test_models.models_dir)}}},
        {"risk": {"embeddings": False}, "policy": {"dir": str(SHIPPED)}},
        key_kw={"tenant": "acme", "user": "alice", "department": "engineering"},
    )
    control = ControlPlane.open(control_plane_path(running.data_dir))
    try:
        register_application(control, tenant="acme", name="care-bot",
                             purpose="Help nursing staff write care documentation",
                             annex_iii=None, art9_basis={"HEALTH": "health_care"})
    finally:
        control.close()
    care_key = running.new_key(tenant="acme", user="nurse", application="care-bot")
    messages: Any = [{"role": "user", "content": PROMPT}]

    async with openai.AsyncOpenAI(base_url=running.base_url, api_key=running.key,
                                  max_retries=0) as client:
        before = len(fake_openai.requests)
        with pytest.raises(openai.PermissionDeniedError) as denied:
            await client.chat.completions.create(model="gpt-4o", messages=messages)
        assert denied.value.status_code == 403
        assert "GDPR Art. 9(1): HEALTH" in str(denied.value.body)
        assert "Karimi" not in str(denied.value.body) and "depression" not in str(denied.value.body)
        assert len(fake_openai.requests) == before  # never forwarded
        denied_id = denied.value.response.headers["x-request-id"]

        local = await client.chat.completions.with_raw_response.create(
            model="local-chat", messages=messages, max_tokens=8)
        assert local.http_response.status_code == 200
        local_id = local.headers["x-request-id"]

    async with openai.AsyncOpenAI(base_url=running.base_url, api_key=care_key,
                                  max_retries=0) as client:
        allowed = await client.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=messages)
        assert allowed.http_response.status_code == 200
        allowed_id = allowed.headers["x-request-id"]
    sent = str(fake_openai.requests[-1].json()["messages"][-1]["content"])
    assert "depression" in sent and "Karimi" not in sent  # the fact stays, the name is masked

    await running.server.close()  # seals the audit segment
    with open_reader(running.config) as reader:
        rows = {r[0]: r[1:] for r in reader.sql(
            "SELECT request_id, decision, status, json_extract(pii_counts, '$.HEALTH')::INT,"
            " policy_rules FROM records WHERE kind = 'request'")}
    decision, status, health, rules = rows[denied_id]
    assert (decision, status) == ("deny", 403) and health >= 1
    assert "gdpr_art9_special_categories" in rules
    for rid in (local_id, allowed_id):
        decision, status, health, rules = rows[rid]
        assert (decision, status) == ("allow", 200) and health >= 1
        assert "gdpr_art9_special_categories" not in rules
