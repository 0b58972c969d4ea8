"""Every compliance stage on, driven by the real SDKs: what a user of the defaults gets."""

from __future__ import annotations

from typing import Any

import pytest
from openai import AsyncOpenAI, PermissionDeniedError

from appliance.testing.fakes import FakeOpenAI
from appliance.testing.harness import openai_upstream
from tests.conftest import Running, StartAppliance


@pytest.fixture
async def running(start_appliance: StartAppliance, fake_openai: FakeOpenAI) -> Running:
    return await start_appliance(
        openai_upstream("openai", fake_openai.base_url, {"gpt-4o": "gpt-4o"}, region="eu"),
        key_kw={"tenant": "acme", "user": "alice", "department": "engineering"},
    )


async def test_chat_with_pii_masked_upstream_and_restored(running: Running, fake_openai: FakeOpenAI) -> None:
    async with AsyncOpenAI(base_url=running.base_url, api_key=running.key, max_retries=0) as c:
        raw = await c.chat.completions.with_raw_response.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "Please email john.smith@example.com about the invoice"}],
        )
    r = raw.parse()
    sent = fake_openai.requests[-1].json()["messages"][0]["content"]
    assert "john.smith@example.com" not in sent
    assert "<EMAIL_ADDRESS_1>" in sent
    assert r.choices[0].message.content == "echo: Please email john.smith@example.com about the invoice"
    assert raw.headers["x-appliance-decision"] == "allow"
    assert raw.headers["x-appliance-risk"]


async def test_streaming_with_every_stage(running: Running) -> None:
    async with AsyncOpenAI(base_url=running.base_url, api_key=running.key, max_retries=0) as c:
        stream = await c.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "Call Maria Schneider at +49 30 1234567 today"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        text = "".join([ch.choices[0].delta.content or "" async for ch in stream if ch.choices])
    assert text == "echo: Call Maria Schneider at +49 30 1234567 today"


async def test_secret_is_blocked(running: Running, fake_openai: FakeOpenAI) -> None:
    async with AsyncOpenAI(base_url=running.base_url, api_key=running.key, max_retries=0) as c:
        with pytest.raises(PermissionDeniedError) as e:
            await c.chat.completions.create(
                model="gpt-4o",
                messages=[{"role": "user", "content": "my key is sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd"}],
            )
    assert "sk-proj-" not in str(e.value.body)
    assert not fake_openai.requests
