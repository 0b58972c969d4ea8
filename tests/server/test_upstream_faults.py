"""Upstream faults, each injected into a real fake provider on loopback and met through the
real appliance and the real SDKs: a connection reset mid-stream, malformed and truncated
SSE, stalls (connect, first byte, mid-stream), 429/5xx storms (Retry-After, jittered
back-off, the circuit breaker, fallbacks) and a caller that goes away mid-stream.
Each case says how the caller is answered and what the audit record says."""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import openai
import pytest

from appliance.errors import UpstreamError
from appliance.pipeline.router import retry_delay
from appliance.testing.fakes import FakeAnthropic, FakeOpenAI, stalled_listener
from appliance.testing.harness import UPSTREAM_KEY_ENV, openai_upstream
from tests.conftest import FAKE_KEY, Running, StartAppliance

#: Only the record (and the limits stage that bills) on: the faults are under test here.
RECORDED = {
    "pipeline": {
        "redact": False, "classify": False, "decide": False, "limits": True,
        "screen_output": False, "record": True,
    }
}
#: A prompt whose echo comes back in a dozen chunks.
LONG = [{"role": "user", "content": " ".join(f"word{i}" for i in range(40))}]
MSG: Any = [{"role": "user", "content": "hello there"}]


async def records(running: Running) -> dict[str, dict[str, Any]]:
    """Every request record, by request id, read as an auditor reads them (the CLI)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "appliance", "audit", "search", "--data-dir",
        str(running.data_dir), "--kind", "request", "--limit", "1000", "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    rows = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    return {row["request_id"]: row for row in rows}


def _extra(row: dict[str, Any]) -> dict[str, Any]:
    extra = row.get("extra")
    return dict(json.loads(extra) if isinstance(extra, str) else extra or {})


@pytest.fixture
async def backup(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeOpenAI]:
    monkeypatch.setenv(UPSTREAM_KEY_ENV, FAKE_KEY)
    async with FakeOpenAI(api_key=FAKE_KEY) as fake:
        yield fake


async def _stream_failure(client: openai.AsyncOpenAI, model: str = "main") -> tuple[str, str, str]:
    """Stream a chat that fails part-way: (request id, text received, error message)."""
    raw = await client.chat.completions.with_raw_response.create(
        model=model, messages=LONG, stream=True  # type: ignore[arg-type]
    )
    text: list[str] = []
    with pytest.raises(openai.APIError) as failed:
        async with asyncio.timeout(10):  # a hang fails the test
            async for chunk in raw.parse():
                if chunk.choices:
                    text.append(chunk.choices[0].delta.content or "")
    return raw.headers["x-request-id"], "".join(text), failed.value.message


# ------------------------------------------------------------------ broken streams


@pytest.mark.parametrize("fault", ["reset", "truncated", "malformed"])
async def test_a_stream_broken_part_way_ends_with_an_error_event_and_a_partial_record(
    start_appliance: StartAppliance, fake_openai: FakeOpenAI, fault: str
) -> None:
    running = await start_appliance(
        openai_upstream("primary", fake_openai.base_url, {"main": "m1"}, max_retries=0),
        RECORDED,
    )
    if fault == "reset":
        fake_openai.break_stream_after = 4
    elif fault == "truncated":
        fake_openai.truncate_stream_after = 4
    else:
        fake_openai.malform_stream_after = 4
    async with openai.AsyncOpenAI(base_url=running.base_url, api_key=running.key, max_retries=0) as c:
        request_id, text, message = await _stream_failure(c)
        assert text and text != "echo: " + LONG[0]["content"]  # some, not all
        assert "upstream" in message or "broke off" in message
        # The same server answers the next request whole.
        fake_openai.reset()
        ok = await c.chat.completions.create(model="main", messages=MSG)
        assert ok.choices[0].message.content == "echo: hello there"
    row = (await records(running))[request_id]
    assert (row["decision"], row["status"], row["error"]) == ("error", 502, "upstream_error")
    partial = _extra(row)["partial"]
    assert partial["chunks"] >= 3 and partial["usage_estimated"] is True
    assert row["completion_tokens"] > 0 and row["prompt_tokens"] > 0  # billed for its part


async def test_a_truncated_anthropic_stream_is_an_error_not_a_short_answer(
    start_appliance: StartAppliance, fake_anthropic: FakeAnthropic
) -> None:
    """The Anthropic wire format ends with message_stop; a stream closed before it is cut."""
    running = await start_appliance(
        {
            "providers": {"claude": {
                "kind": "anthropic", "base_url": fake_anthropic.base_url,
                "api_key_env": "APPLIANCE_TEST_ANTHROPIC_KEY", "max_retries": 0,
            }},
            "models": {"sonnet": {"provider": "claude", "upstream_model": "claude-sonnet-4"}},
        },
        RECORDED,
    )
    fake_anthropic.truncate_stream_after = 5
    async with anthropic.AsyncAnthropic(base_url=running.url, api_key=running.key, max_retries=0) as c:
        with pytest.raises(anthropic.APIError):
            async with asyncio.timeout(10):
                async with c.messages.stream(
                    model="sonnet", max_tokens=200, messages=LONG  # type: ignore[arg-type]
                ) as stream:
                    async for _ in stream:
                        pass


# ------------------------------------------------------------------------- stalls


async def test_a_stalled_upstream_is_given_up_on_at_each_bound(
    start_appliance: StartAppliance, fake_openai: FakeOpenAI
) -> None:
    """timeout_s is long; the first-byte, idle and connect bounds each cut in at 0.5 s."""
    with stalled_listener() as dead:
        running = await start_appliance(
            openai_upstream(
                "primary", fake_openai.base_url, {"main": "m1"}, max_retries=0,
                timeout_s=30.0, first_byte_timeout_s=0.5, idle_timeout_s=0.5,
            ),
            openai_upstream(
                "unreachable", dead, {"far": "m9"}, max_retries=0, timeout_s=30.0,
                connect_timeout_s=0.5,
            ),
            RECORDED,
        )
        async with openai.AsyncOpenAI(
            base_url=running.base_url, api_key=running.key, max_retries=0, timeout=20
        ) as c:
            # No headers: the first-byte bound, for a whole answer.
            fake_openai.delay_s = 5.0
            t0 = time.monotonic()
            with pytest.raises(openai.APIStatusError) as e:
                await c.chat.completions.create(model="main", messages=MSG)
            assert e.value.status_code == 504 and time.monotonic() - t0 < 3.0
            fake_openai.reset()

            # Headers sent, then silence before the first event: the first-byte bound.
            fake_openai.stall_first_frame_s = 5.0
            t0 = time.monotonic()
            _, text, message = await _stream_failure(c)
            assert not text and "silent" in message
            assert time.monotonic() - t0 < 3.0
            fake_openai.reset()

            # Mid-stream silence: the idle bound.
            fake_openai.stall_after_frames = 4
            t0 = time.monotonic()
            request_id, text, message = await _stream_failure(c)
            assert text and "silent" in message
            assert time.monotonic() - t0 < 3.0
            fake_openai.reset()

            # A connection that never opens: the connect bound.
            t0 = time.monotonic()
            with pytest.raises(openai.APIStatusError) as e:
                await c.chat.completions.create(model="far", messages=MSG)
            assert e.value.status_code == 504 and time.monotonic() - t0 < 3.0
    row = (await records(running))[request_id]
    assert (row["status"], row["error"]) == (504, "upstream_timeout")
    assert _extra(row)["partial"]["chunks"] >= 1


# ------------------------------------------------------------------- 429/5xx storms


@pytest.fixture
async def pair(
    start_appliance: StartAppliance, fake_openai: FakeOpenAI, backup: FakeOpenAI
) -> AsyncIterator[tuple[Running, openai.AsyncOpenAI]]:
    """main (primary, falls back to spare on the backup) and solo (primary, no fallback);
    the primary's circuit opens after 3 failures in a row, for 1 s."""
    running = await start_appliance(
        openai_upstream(
            "primary", fake_openai.base_url, {"main": "m1", "solo": "m3"}, max_retries=1,
            retry_backoff_s=0.01, retry_max_backoff_s=2.0, breaker_failures=3,
            breaker_open_s=1.0,
        ),
        openai_upstream("secondary", backup.base_url, {"spare": "m2"}),
        {"models": {"main": {"fallbacks": ["spare"]}}},
        RECORDED,
    )
    async with openai.AsyncOpenAI(base_url=running.base_url, api_key=running.key, max_retries=0) as c:
        yield running, c


async def test_retry_after_is_honoured(
    pair: tuple[Running, openai.AsyncOpenAI], fake_openai: FakeOpenAI, backup: FakeOpenAI
) -> None:
    _, client = pair
    fake_openai.fail_next(429, times=1, retry_after_s=0.8)
    t0 = time.monotonic()
    r = await client.chat.completions.create(model="main", messages=MSG)
    assert r.choices[0].message.content == "echo: hello there"
    assert time.monotonic() - t0 >= 0.75  # not the 10 ms back-off
    assert len(fake_openai.requests) == 2 and not backup.requests


async def test_a_retry_after_past_the_cap_goes_to_the_fallback_at_once(
    pair: tuple[Running, openai.AsyncOpenAI], fake_openai: FakeOpenAI, backup: FakeOpenAI
) -> None:
    _, client = pair
    fake_openai.fail_next(429, times=1, retry_after_s=60)
    t0 = time.monotonic()
    r = await client.chat.completions.create(model="main", messages=MSG)
    assert r.choices[0].message.content == "echo: hello there"
    assert time.monotonic() - t0 < 1.5
    assert len(fake_openai.requests) == 1 and backup.requests[-1].json()["model"] == "m2"


async def test_a_5xx_storm_opens_the_circuit_then_a_trial_closes_it(
    pair: tuple[Running, openai.AsyncOpenAI], fake_openai: FakeOpenAI, backup: FakeOpenAI
) -> None:
    running, client = pair
    fake_openai.fail_next(503, times=1000)  # the storm
    for _ in range(4):  # 2 attempts each; the circuit opens on the 3rd failure
        r = await client.chat.completions.create(model="main", messages=MSG)
        assert r.choices[0].message.content == "echo: hello there"  # the fallback answers
    assert len(fake_openai.requests) == 3  # then nothing more reached the failing upstream
    # A model without a fallback is refused at once, with a 503 that says when to retry.
    with pytest.raises(openai.APIStatusError) as e:
        await client.chat.completions.create(model="solo", messages=MSG)
    assert e.value.status_code == 503 and e.value.body["code"] == "upstream_unavailable"  # type: ignore[index]
    assert 0 < int(e.value.response.headers["retry-after"]) <= 1
    assert len(fake_openai.requests) == 3
    # The storm ends; after breaker_open_s one trial call goes through and closes it.
    fake_openai.reset()
    await asyncio.sleep(1.05)
    r = await client.chat.completions.create(model="solo", messages=MSG)
    assert r.choices[0].message.content == "echo: hello there"
    r = await client.chat.completions.create(model="main", messages=MSG)
    assert len(fake_openai.requests) == 2  # closed: main goes to the primary again
    rows = await records(running)
    refused = [row for row in rows.values() if row["error"] == "upstream_unavailable"]
    assert len(refused) == 1 and refused[0]["status"] == 503


def test_back_off_is_jittered_capped_and_never_shorter_than_retry_after() -> None:
    class Cfg:
        retry_backoff_s = 0.5
        retry_max_backoff_s = 4.0

    rng = random.Random(7)
    plain = UpstreamError("x", retryable=True)
    delays = [retry_delay(Cfg, 1, plain, rng) for _ in range(200)]
    assert all(d is not None and 0 <= d <= 1.0 for d in delays)
    assert len({round(d or 0, 3) for d in delays}) > 100  # spread, not one instant
    capped = [retry_delay(Cfg, 10, plain, rng) or 0 for _ in range(200)]
    assert max(capped) <= 4.0 and max(capped) > 3.0
    asked = UpstreamError("x", retryable=True, retry_after_s=2.5)
    assert all((retry_delay(Cfg, 0, asked, rng) or 0) >= 2.5 for _ in range(50))
    assert retry_delay(Cfg, 0, UpstreamError("x", retry_after_s=9.0), rng) is None


# ------------------------------------------------------ the caller goes away mid-stream


async def test_a_caller_leaving_mid_stream_cancels_upstream_and_is_billed_for_its_part(
    start_appliance: StartAppliance, fake_openai: FakeOpenAI
) -> None:
    running = await start_appliance(
        openai_upstream("primary", fake_openai.base_url, {"main": "gpt-4o"}, max_retries=0),
        RECORDED,
    )
    fake_openai.chunk_delay_s = 0.2  # a slow answer, a dozen chunks
    async with openai.AsyncOpenAI(base_url=running.base_url, api_key=running.key, max_retries=0) as c:
        raw = await c.chat.completions.with_raw_response.create(
            model="main", messages=LONG, stream=True  # type: ignore[arg-type]
        )
        stream = raw.parse()
        seen = 0
        async for chunk in stream:
            seen += bool(chunk.choices and chunk.choices[0].delta.content)
            if seen == 2:
                break
        await stream.close()  # the caller hangs up
    request_id = raw.headers["x-request-id"]
    async with asyncio.timeout(5):  # the upstream request is cancelled, promptly
        while fake_openai.streams_cut == 0:
            await asyncio.sleep(0.05)
    assert fake_openai.streams_done == 0
    async with asyncio.timeout(10):
        while request_id not in (rows := await records(running)):
            await asyncio.sleep(0.2)
    row = rows[request_id]
    assert (row["status"], row["error"]) == (499, "client_disconnected")
    assert _extra(row)["partial"]["usage_estimated"] is True
    assert row["completion_tokens"] > 0 and row["cost_usd"] > 0  # billed for what was generated
