"""The limits stage in the real server, called with the real openai SDK."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from aiohttp import web
from openai import AsyncOpenAI, DefaultAsyncHttpxClient, RateLimitError

from appliance.testing.fakes import FakeOpenAI
from appliance.testing.harness import merge
from tests.conftest import StartAppliance
from tests.metering.conftest import LIMITS_ONLY

#: One token costs exactly $0.001 (input and output alike): costs are easy to check.
PRICES = """
currency: USD
per_tokens: 1000
providers:
  openai:
    gpt-4o: {input: 1.0, output: 1.0}
"""
PLANS = """
plans:
  tiny:
    limits: {rpm: 3}
    discount: 0.5
    included_tokens_month: 10
"""

CHAT: Any = [{"role": "user", "content": "hello there world"}]


@pytest.fixture
def data_files(tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "prices.yaml").write_text(PRICES)
    (tmp_path / "plans.yaml").write_text(PLANS)
    return {"prices_file": str(tmp_path / "prices.yaml"), "plans_file": str(tmp_path / "plans.yaml")}


def config(openai_models: dict[str, Any], data_files: dict[str, Any], **limits: Any) -> dict[str, Any]:
    return merge(openai_models, LIMITS_ONLY, {"limits": {**data_files, **limits}})


def client(base_url: str, key: str) -> AsyncOpenAI:
    # At most 100 connections (the SDK's default is 1000): 500 simultaneous connects
    # would overflow the test server's listen backlog, which tests the kernel, not us.
    http = DefaultAsyncHttpxClient(limits=httpx2.Limits(max_connections=100))
    return AsyncOpenAI(base_url=base_url, api_key=key, max_retries=0, http_client=http)


async def test_500_concurrent_requests_exactly_100_pass(
    start_appliance: StartAppliance, openai_models: dict[str, Any], data_files: dict[str, Any]
) -> None:
    running = await start_appliance(
        config(openai_models, data_files), key_kw={"limits": {"rpm": 100}}
    )

    async with client(running.base_url, running.key) as c:

        async def one() -> int:
            try:
                await c.chat.completions.create(model="gpt-4o", messages=CHAT)
                return 200
            except RateLimitError as e:
                assert "100 requests per minute" in e.message
                assert "this API key" in e.message
                return 429

        statuses = await asyncio.gather(*(one() for _ in range(500)))
    assert statuses.count(200) == 100
    assert statuses.count(429) == 400


async def test_rate_limit_headers_like_openai(
    start_appliance: StartAppliance, openai_models: dict[str, Any], data_files: dict[str, Any]
) -> None:
    running = await start_appliance(
        config(openai_models, data_files), key_kw={"limits": {"rpm": 5, "tpm": 10000}}
    )
    async with client(running.base_url, running.key) as c:
        for i in range(5):
            raw = await c.chat.completions.with_raw_response.create(model="gpt-4o", messages=CHAT)
            h = raw.headers
            assert h["x-ratelimit-limit-requests"] == "5"
            assert h["x-ratelimit-remaining-requests"] == str(4 - i)
            assert h["x-ratelimit-reset-requests"].endswith("s")
            assert h["x-ratelimit-limit-tokens"] == "10000"
            assert 0 < int(h["x-ratelimit-remaining-tokens"]) < 10000
        with pytest.raises(RateLimitError) as refused:
            await c.chat.completions.create(model="gpt-4o", messages=CHAT)
    r = refused.value.response
    assert r.headers["x-ratelimit-remaining-requests"] == "0"
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert refused.value.code == "rate_limit_exceeded"


async def test_request_larger_than_the_token_limit_is_refused(
    start_appliance: StartAppliance, openai_models: dict[str, Any], data_files: dict[str, Any],
    fake_openai: FakeOpenAI,
) -> None:
    running = await start_appliance(config(openai_models, data_files), key_kw={"limits": {"tpm": 50}})
    async with client(running.base_url, running.key) as c:
        with pytest.raises(RateLimitError) as refused:
            await c.chat.completions.create(model="gpt-4o", messages=CHAT, max_tokens=100)
        assert "Request too large" in refused.value.message
        assert "50 tokens per minute" in refused.value.message
        assert not fake_openai.requests  # never forwarded
        await c.chat.completions.create(model="gpt-4o", messages=CHAT, max_tokens=10)


async def test_daily_budget_is_a_hard_limit(
    start_appliance: StartAppliance, openai_models: dict[str, Any], data_files: dict[str, Any]
) -> None:
    running = await start_appliance(
        config(openai_models, data_files), key_kw={"limits": {"budget_usd_day": 0.05}}
    )
    costs: list[float] = []
    async with client(running.base_url, running.key) as c:
        with pytest.raises(RateLimitError) as refused:
            for _ in range(100):
                r = await c.chat.completions.create(model="gpt-4o", messages=CHAT)
                assert r.usage is not None
                costs.append(r.usage.total_tokens * 0.001)
    spent = sum(costs)
    assert spent <= 0.05 + 1e-9
    assert spent > 0.05 - 2 * max(costs)  # it let requests through until the money was gone
    assert "daily budget of $0.05 for this API key" in refused.value.message
    assert refused.value.code == "budget_exceeded"


async def test_tenant_plan_limits_and_discount(
    start_appliance: StartAppliance, openai_models: dict[str, Any], data_files: dict[str, Any]
) -> None:
    running = await start_appliance(
        config(openai_models, data_files, tenants={"acme": {"plan": "tiny"}})
    )
    stage = _limits_stage(running)
    async with client(running.base_url, running.key) as c:
        tokens = 0
        for _ in range(3):
            r = await c.chat.completions.create(model="gpt-4o", messages=CHAT)
            assert r.usage is not None
            tokens += r.usage.total_tokens
        with pytest.raises(RateLimitError) as refused:
            await c.chat.completions.create(model="gpt-4o", messages=CHAT)
    assert "tenant 'acme' allows 3 requests per minute" in refused.value.message
    rows = await stage.meter.store.usage(0, 10**7)
    assert sum(r.requests for r in rows) == 4 and sum(r.errors for r in rows) == 1
    # Half price on the "tiny" plan.
    assert sum(r.cost_nano for r in rows) == pytest.approx(tokens * 0.001 * 0.5 * 1e9)


class Webhook:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.got = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.events.append(await request.json())
        self.got.set()
        return web.Response(status=204)


@pytest.fixture
async def webhook(aiohttp_server: Any) -> AsyncIterator[tuple[Webhook, str]]:
    hook = Webhook()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    server = await aiohttp_server(app)
    yield hook, f"http://127.0.0.1:{server.port}/hook"


async def test_soft_limit_notifies_once_per_period(
    start_appliance: StartAppliance, openai_models: dict[str, Any], data_files: dict[str, Any],
    webhook: tuple[Webhook, str],
) -> None:
    hook, url = webhook
    running = await start_appliance(
        config(openai_models, data_files, webhook_url=url,
               departments={"acme/finance": {"soft_budget_usd_month": 0.02}}),
        key_kw={"department": "finance"},
    )
    async with client(running.base_url, running.key) as c:
        for _ in range(20):
            await c.chat.completions.create(model="gpt-4o", messages=CHAT)
    await asyncio.wait_for(hook.got.wait(), 10)
    await asyncio.sleep(0.2)
    assert len(hook.events) == 1
    event = hook.events[0]
    assert event["event"] == "budget.soft_limit"
    assert (event["scope"], event["subject"], event["period"]) == ("department", "acme/finance", "month")
    assert event["spent_usd"] >= 0.02 and event["threshold_usd"] == 0.02


async def test_streams_are_metered(
    start_appliance: StartAppliance, openai_models: dict[str, Any], data_files: dict[str, Any]
) -> None:
    running = await start_appliance(config(openai_models, data_files))
    async with client(running.base_url, running.key) as c:
        stream = await c.chat.completions.create(model="gpt-4o", messages=CHAT, stream=True)
        text = "".join([ch.choices[0].delta.content or "" async for ch in stream if ch.choices])
    assert text
    rows = await _limits_stage(running).meter.store.usage(0, 10**7)
    assert len(rows) == 1 and rows[0].completion_tokens > 0 and rows[0].prompt_tokens > 0
    assert rows[0].cost_nano == (rows[0].prompt_tokens + rows[0].completion_tokens) * 1_000_000


async def test_an_answer_failing_after_its_usage_was_booked_counts_as_an_error(
    start_appliance: StartAppliance, openai_models: dict[str, Any], data_files: dict[str, Any]
) -> None:
    """Usage is booked while the answer is screened; a screen that then breaks (503) must
    still leave one request, one error and the tokens the provider charged for."""
    from openai import InternalServerError

    from appliance.server.services import SERVICES

    class BrokenScreen:
        name = "broken_screen"

        async def screen(self, ctx: Any, response: dict[str, Any]) -> dict[str, Any]:
            await asyncio.sleep(0.05)  # the booking started before this screen finishes
            raise RuntimeError("screen broke")

    running = await start_appliance(config(openai_models, data_files))
    pipeline = running.server.app[SERVICES].pipeline
    object.__setattr__(pipeline, "response_stages", (*pipeline.response_stages, BrokenScreen()))
    async with client(running.base_url, running.key) as c:
        with pytest.raises(InternalServerError) as failed:
            await c.chat.completions.create(model="gpt-4o", messages=CHAT)
    assert failed.value.status_code == 503
    [row] = await _limits_stage(running).meter.store.usage(0, 10**7)
    assert (row.requests, row.errors) == (1, 1)
    assert row.prompt_tokens > 0 and row.completion_tokens > 0


async def test_metrics_endpoint(
    aiohttp_server: Any, tmp_path: Path, openai_models: dict[str, Any], data_files: dict[str, Any]
) -> None:
    from appliance.config import load_config
    from appliance.server.app import create_app
    from appliance.testing.harness import create_key

    data_dir = tmp_path / "data"
    cfg = load_config(None, data_dir=data_dir, overrides=config(openai_models, data_files))
    data_dir.mkdir()
    key = create_key(data_dir, limits={"rpm": 1})
    server = await aiohttp_server(create_app(cfg))
    async with client(f"http://127.0.0.1:{server.port}/v1", key) as c:
        await c.chat.completions.create(model="gpt-4o", messages=CHAT)
        with pytest.raises(RateLimitError):
            await c.chat.completions.create(model="gpt-4o", messages=CHAT)
    import aiohttp

    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{server.port}/metrics") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        body = await r.text()
    for line in (
        'appliance_requests_total{decision="allow",model="gpt-4o",route="chat.completions",status="200"} 1.0',
        'appliance_requests_total{decision="rate_limited",model="gpt-4o",route="chat.completions",status="429"} 1.0',
        'appliance_rate_limited_total{limit="rpm",scope="key"} 1.0',
        'appliance_stage_duration_seconds_count{stage="limits"} 2.0',  # the refusal too
        'appliance_request_duration_seconds_count{route="chat.completions"} 2.0',
    ):
        assert line in body
    assert 'appliance_cost_usd_total{model="gpt-4o",tenant="acme"}' in body
    assert 'appliance_tokens_total{model="gpt-4o",tenant="acme",type="completion"}' in body
    key_id = key.split("-")[1]
    for secret in (key, key_id, "alice", "hello there"):
        assert secret not in body


async def test_usage_command_reports_what_was_metered(
    start_appliance: StartAppliance, openai_models: dict[str, Any], data_files: dict[str, Any],
    tmp_path: Path,
) -> None:
    cfg = config(openai_models, data_files, tenants={"acme": {"plan": "tiny"}})
    running = await start_appliance(cfg)
    async with client(running.base_url, running.key) as c:
        total = 0
        for _ in range(2):
            r = await c.chat.completions.create(model="gpt-4o", messages=CHAT)
            assert r.usage is not None
            total += r.usage.total_tokens
    from appliance.testing.harness import to_toml

    cfg_file = tmp_path / "cfg.toml"
    cfg_file.write_text(to_toml(merge(cfg, {"storage": {"data_dir": str(running.data_dir)}})))
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "appliance", "usage", "--config", str(cfg_file),
         "--group-by", "tenant,model,user", "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    [group] = rep["groups"]
    assert (group["tenant"], group["model"], group["user"]) == ("acme", "gpt-4o", "alice")
    assert group["requests"] == 2 and group["total_tokens"] == total
    assert group["cost_usd"] == pytest.approx(total * 0.001 * 0.5)
    assert rep["forecast"]["forecast_month_usd"] >= rep["forecast"]["month_to_date_usd"] > 0
    [plan] = rep["plans"]
    assert plan["plan"] == "tiny" and plan["overage_tokens"] == max(0, total - 10)


def _limits_stage(running: Any) -> Any:
    from appliance.server.services import SERVICES

    services = running.server.app[SERVICES]
    [stage] = [s for s in services.pipeline.request_stages if s.name == "limits"]
    return stage


async def test_volume_tiers_follow_the_tenants_month_volume(
    start_appliance: StartAppliance, openai_models: dict[str, Any], tmp_path: Path
) -> None:
    prices = tmp_path / "tiered.yaml"
    prices.write_text(
        "per_tokens: 1000\nproviders:\n  openai:\n    gpt-4o:\n      tiers:\n"
        "        - {up_to_tokens: 20, input: 1.0, output: 1.0}\n"
        "        - {input: 0.5, output: 0.5}\n"
    )
    running = await start_appliance(merge(openai_models, LIMITS_ONLY, {"limits": {"prices_file": str(prices)}}))
    sizes: list[int] = []
    async with client(running.base_url, running.key) as c:
        for _ in range(6):
            r = await c.chat.completions.create(model="gpt-4o", messages=CHAT)
            assert r.usage is not None
            sizes.append(r.usage.total_tokens)
    expected, volume = 0.0, 0
    for n in sizes:
        in_first = max(0, min(n, 20 - volume))
        expected += (in_first * 1.0 + (n - in_first) * 0.5) / 1000
        volume += n
    assert volume > 20  # the run crossed into the second tier
    rows = await _limits_stage(running).meter.store.usage(0, 10**7)
    assert sum(r.cost_nano for r in rows) == pytest.approx(expected * 1e9, abs=10)
