"""One access log line per request: who, which model, how it ended; never content."""

from __future__ import annotations

import json
import re
import logging
from typing import Any

import pytest
from openai import AsyncOpenAI, NotFoundError

from appliance.testing.harness import merge
from tests.conftest import StartAppliance

SECRET_PROMPT = "my colleague Jonathan Wexler-Brandt (jonathan@example.com)"


def _access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "appliance.access"]


async def test_a_line_per_request_with_ids_status_and_decision_never_content(
    start_appliance: StartAppliance, openai_models: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="appliance.access")
    app = await start_appliance(openai_models)
    async with AsyncOpenAI(base_url=app.base_url, api_key=app.key, max_retries=0) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=[{"role": "user", "content": SECRET_PROMPT}]
        )
        request_id = raw.headers["x-request-id"]
        stream = await client.chat.completions.create(
            model="gpt-4o", stream=True, messages=[{"role": "user", "content": SECRET_PROMPT}]
        )
        async for _ in stream:
            pass
        # A model name is the caller's text: CR/LF in it must not start a forged line.
        with pytest.raises(NotFoundError):
            await client.chat.completions.create(
                model="gpt\r\nrequest_id=forged status=200",
                messages=[{"role": "user", "content": "hi"}],
            )
    lines = _access_lines(caplog)
    assert len(lines) == 3, lines
    first = lines[0]
    assert f"request_id={request_id}" in first
    for field in ("method=POST", "path=/v1/chat/completions", "status=200",
                  "decision=allow", "model=gpt-4o", "stream=False", "duration_ms="):
        assert field in first, (field, first)
    assert "tenant=acme" in first and re.search(r"key_id=[0-9a-f]{8,} ", first)
    assert "stream=True" in lines[1]
    assert "\n" not in lines[2] and "\r" not in lines[2]
    assert "status=404" in lines[2]
    assert '"gpt\\r\\nrequest_id=forged status=200"' in lines[2]
    for line in lines:
        assert "Jonathan" not in line and "example.com" not in line
        assert app.key not in line
    # Health probes are skipped by default.
    assert not any("/healthz" in line for line in lines)


async def test_json_lines_and_off(
    start_appliance: StartAppliance, openai_models: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="appliance.access")
    app = await start_appliance(merge(openai_models, {"server": {"access_log": "json"}}))
    async with AsyncOpenAI(base_url=app.base_url, api_key="wrong", max_retries=0) as client:
        with pytest.raises(Exception):  # noqa: B017 - the SDK's 401 error
            await client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
            )
    (line,) = _access_lines(caplog)
    entry = json.loads(line)
    assert entry["status"] == 401 and entry["decision"] == "deny"
    assert entry["path"] == "/v1/chat/completions" and "key_id" not in entry


async def test_off_writes_nothing(
    start_appliance: StartAppliance, openai_models: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="appliance.access")
    app = await start_appliance(merge(openai_models, {"server": {"access_log": "off"}}))
    async with AsyncOpenAI(base_url=app.base_url, api_key=app.key, max_retries=0) as client:
        await client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )
    assert _access_lines(caplog) == []
