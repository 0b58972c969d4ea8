"""Reports over a log written by real requests through the running appliance."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from openai import AsyncOpenAI, PermissionDeniedError

from appliance.reports.export import export
from appliance.reports.request import Period, ReportRequest
from appliance.testing.fakes import FakeOpenAI
from appliance.testing.harness import openai_upstream
from tests.conftest import StartAppliance


async def test_usage_pii_and_policy_reports_count_the_requests_served(
    start_appliance: StartAppliance, fake_openai: FakeOpenAI, test_models: Any, tmp_path: Path
) -> None:
    running = await start_appliance(
        openai_upstream("openai", fake_openai.base_url, {"gpt-4o": "gpt-4o"}, region="us"),
        {"providers": {"local": {"models_dir": str(test_models.models_dir)}}},
        {
            "risk": {"embeddings": False}
        },  # rules only: the embedding model is not what is tested here
        key_kw={"tenant": "acme", "user": "alice", "department": "engineering"},
    )
    async with AsyncOpenAI(base_url=running.base_url, api_key=running.key, max_retries=0) as c:
        for text in (
            "Hello there",
            "Please email john.smith@example.com about the invoice",
            "Summarise this",
        ):
            await c.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": text}]
            )
        with pytest.raises(PermissionDeniedError):
            await c.chat.completions.create(
                model="gpt-4o",
                messages=[
                    {
                        "role": "user",
                        "content": "my key is sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd",
                    }
                ],
            )
    # Stopping the server seals its segment. (A reader in the server's own process cannot
    # attach a segment that process still writes: DuckDB refuses a second handle.)
    await running.server.close()
    today = dt.datetime.now(dt.UTC).date()
    period = Period(today - dt.timedelta(days=1), today)  # robust around midnight

    def run(kind: str) -> dict[str, object]:
        out = tmp_path / f"{kind}.json"
        export(running.config, ReportRequest(kind, period), "json", out)
        doc: dict[str, object] = json.loads(out.read_bytes())
        return doc

    usage, pii, policy = await asyncio.to_thread(
        lambda: [run(k) for k in ("usage", "pii", "policy")]
    )
    s = usage["summary"]
    assert isinstance(s, dict)
    assert s["requests"] == 4
    assert s["allowed"] == 3 and s["denied"] == 1
    assert s["total_tokens"] > 0
    by_entity = {r["entity_type"]: r for r in pii["sections"]["by_entity"]["rows"]}  # type: ignore[index]
    assert by_entity["EMAIL_ADDRESS"]["findings"] >= 1
    assert policy["summary"]["denied"] == 1  # type: ignore[index]
    assert policy["detail"]["row_count"] == 1  # type: ignore[index]
