"""Whatever raises where, a request that reached the pipeline is settled and recorded, and
its record says how it ended: a failure injected into each response stage, whole and
streamed, and into the provider mid-stream, through the real openai SDK."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import openai
import pytest

from appliance.server.services import SERVICES
from appliance.testing.fakes import FakeOpenAI
from appliance.testing.harness import merge, openai_upstream
from appliance.testing.models import TestModels
from tests.conftest import Running, StartAppliance

CHAT = [{"role": "user", "content": "Write one line about the quarterly plan, please."}]
RESPONSE_STAGES = ("pii_output", "safety_output", "disclosure")


class Broken(RuntimeError):
    """What a stage with a bug raises (its message must reach no caller and no log)."""


@pytest.fixture
def every_stage(fake_openai: FakeOpenAI, test_models: TestModels) -> dict[str, Any]:
    return merge(
        openai_upstream("openai", fake_openai.base_url, {"gpt-4o": "gpt-4o"}, region="eu"),
        {"providers": {"local": {"models_dir": str(test_models.models_dir)}}},
    )


def _break(running: Running, name: str, stream: bool) -> Callable[[], None]:
    """Make one stage of the running pipeline raise: a whole screen at once, a stream
    after it has passed its first chunk on (the headers and some text already sent).
    Returns what undoes it."""
    pipeline = running.server.app[SERVICES].pipeline
    (stage,) = [s for s in pipeline.response_stages if s.name == name]

    async def screen(ctx: Any, response: dict[str, Any]) -> dict[str, Any]:
        raise Broken("secret detail of the bug")

    async def screen_stream(ctx: Any, chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
        async for chunk in chunks:
            yield chunk
            raise Broken("secret detail of the bug")

    if stream:
        stage.screen_stream = screen_stream  # type: ignore[method-assign]
    else:
        stage.screen = screen  # type: ignore[method-assign]
    return lambda: vars(stage).pop("screen_stream" if stream else "screen")


async def _record(running: Running, request_id: str) -> dict[str, Any]:
    """The request's audit record, found as an auditor finds it: ``appliance audit search``."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "appliance", "audit", "search", "--data-dir",
        str(running.data_dir), "--request-id", request_id, "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    rows = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    assert len(rows) == 1, f"no single audit record for {request_id}: {err.decode()}"
    return dict(rows[0])


async def test_each_failing_response_stage_leaves_a_record_that_says_so(
    start_appliance: StartAppliance, every_stage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One server; each response stage broken in turn, for a whole and a streamed answer."""
    running = await start_appliance(every_stage)
    async with openai.AsyncOpenAI(base_url=running.base_url, api_key=running.key, max_retries=0) as client:
        for name in RESPONSE_STAGES:
            for stream in (False, True):
                repair = _break(running, name, stream)
                try:
                    request_id = await _failing_request(client, stream)
                finally:
                    repair()
                row = await _record(running, request_id)
                case = f"{name}, {'streamed' if stream else 'whole'}"
                assert (row["decision"], row["status"], row["error"]) == (
                    "error", 503, "stage_failed"), case
                failed = [s for s in row["stages"] if s["stage"] == name]
                assert failed and failed[-1]["outcome"] == "error", case
                assert "stage_failed:Broken" in row["reasons"], case
        # Repaired, the same server answers again.
        ok = await client.chat.completions.create(model="gpt-4o", messages=CHAT)  # type: ignore[arg-type]
        assert ok.choices[0].message.content
    assert "secret detail" not in caplog.text


async def _failing_request(client: openai.AsyncOpenAI, stream: bool) -> str:
    """Send one request that a broken stage fails; its request id."""
    if stream:
        raw = await client.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=CHAT, stream=True  # type: ignore[arg-type]
        )
        with pytest.raises(openai.APIError) as failed:
            async for _ in raw.parse():
                pass
        assert "withheld" in failed.value.message
        return raw.headers["x-request-id"]
    with pytest.raises(openai.InternalServerError) as whole:
        await client.chat.completions.create(model="gpt-4o", messages=CHAT)  # type: ignore[arg-type]
    assert whole.value.status_code == 503
    return whole.value.response.headers["x-request-id"]


async def test_a_provider_failing_mid_stream_leaves_a_record(
    start_appliance: StartAppliance, every_stage: dict[str, Any]
) -> None:
    running = await start_appliance(every_stage)
    router = running.server.app[SERVICES].pipeline.router
    real_stream = router.stream

    async def breaking(ctx: Any, op: Any) -> AsyncIterator[dict[str, Any]]:
        async for chunk in real_stream(ctx, op):
            yield chunk
            raise Broken("an adapter bug")

    router.stream = breaking  # type: ignore[method-assign]
    async with openai.AsyncOpenAI(base_url=running.base_url, api_key=running.key, max_retries=0) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=CHAT, stream=True  # type: ignore[arg-type]
        )
        with pytest.raises(openai.APIError):
            async for _ in raw.parse():
                pass
    row = await _record(running, raw.headers["x-request-id"])
    assert (row["decision"], row["status"], row["error"]) == ("error", 502, "upstream_error")
    assert not any(s["outcome"] == "error" for s in row["stages"])  # no stage is blamed
