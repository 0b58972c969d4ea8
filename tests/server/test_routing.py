"""Retries with back-off, fallback to the next model, timeouts, upstream errors."""

from __future__ import annotations

from typing import Any

import pytest
from openai import APIStatusError, AsyncOpenAI, BadRequestError

from appliance.testing.fakes import FakeOpenAI
from appliance.testing.harness import PASS_THROUGH, UPSTREAM_KEY_ENV, merge, openai_upstream
from tests.conftest import FAKE_KEY, StartAppliance

MSG: Any = [{"role": "user", "content": "hello there"}]


@pytest.fixture
async def backup(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv(UPSTREAM_KEY_ENV, FAKE_KEY)
    async with FakeOpenAI(api_key=FAKE_KEY) as fake:
        yield fake


@pytest.fixture
async def client(
    start_appliance: StartAppliance, fake_openai: FakeOpenAI, backup: FakeOpenAI
) -> Any:
    config = merge(
        openai_upstream(
            "primary", fake_openai.base_url, {"main": "m1", "solo": "m3"}, timeout_s=1.0
        ),
        openai_upstream("secondary", backup.base_url, {"spare": "m2"}),
        {"models": {"main": {"fallbacks": ["spare"]}}},
        PASS_THROUGH,
    )
    running = await start_appliance(config)
    async with AsyncOpenAI(base_url=running.base_url, api_key=running.key, max_retries=0) as c:
        yield c


async def test_retry_then_success(client: AsyncOpenAI, fake_openai: FakeOpenAI, backup: FakeOpenAI) -> None:
    fake_openai.fail_next(503, times=1)
    r = await client.chat.completions.create(model="main", messages=MSG)
    assert r.choices[0].message.content == "echo: hello there"
    assert len(fake_openai.requests) == 2 and not backup.requests


async def test_fallback_after_retries(client: AsyncOpenAI, fake_openai: FakeOpenAI, backup: FakeOpenAI) -> None:
    fake_openai.fail_next(429, times=2)  # max_retries=1: two attempts, both fail
    r = await client.chat.completions.create(model="main", messages=MSG)
    assert r.choices[0].message.content == "echo: hello there"
    assert backup.requests[-1].json()["model"] == "m2"


async def test_streaming_fallback_before_first_chunk(client: AsyncOpenAI, fake_openai: FakeOpenAI, backup: FakeOpenAI) -> None:
    fake_openai.fail_next(500, times=2)
    stream = await client.chat.completions.create(model="main", messages=MSG, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "echo: hello there"
    assert backup.requests


async def test_all_upstreams_down_is_502(client: AsyncOpenAI, fake_openai: FakeOpenAI, backup: FakeOpenAI) -> None:
    fake_openai.fail_next(503, times=2)
    backup.fail_next(503, times=2)
    with pytest.raises(APIStatusError) as e:
        await client.chat.completions.create(model="main", messages=MSG)
    assert e.value.status_code == 502
    assert e.value.body["code"] == "upstream_error"  # type: ignore[index]


async def test_timeout_falls_back_then_504_without_fallback(
    client: AsyncOpenAI, fake_openai: FakeOpenAI, backup: FakeOpenAI
) -> None:
    fake_openai.delay_s = 3.0  # primary's timeout_s is 1.0
    r = await client.chat.completions.create(model="main", messages=MSG)
    assert r.choices[0].message.content == "echo: hello there"
    assert backup.requests
    with pytest.raises(APIStatusError) as e:
        await client.chat.completions.create(model="solo", messages=MSG)
    assert e.value.status_code == 504
    assert e.value.body["code"] == "upstream_timeout"  # type: ignore[index]


async def test_upstream_400_is_a_client_error(client: AsyncOpenAI, fake_openai: FakeOpenAI) -> None:
    fake_openai.fail_next(400, times=1, message="context length exceeded")
    with pytest.raises(BadRequestError) as e:
        await client.chat.completions.create(model="main", messages=MSG)
    assert "context length exceeded" in e.value.message
