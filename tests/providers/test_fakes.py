"""The fakes themselves: thread and process modes, failure injection, cached answers."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any

import aiohttp
import pytest

from appliance.testing.fakes import FakeAnthropic, FakeOpenAI


def post(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


CHAT = {"model": "m", "messages": [{"role": "user", "content": "ping"}]}


def test_running_in_a_background_thread_serves_sync_callers() -> None:
    with FakeOpenAI().running() as fake:
        status, body = post(
            fake.base_url + "/chat/completions", CHAT, {"Authorization": "Bearer test-key"}
        )
        assert status == 200 and body["choices"][0]["message"]["content"] == "echo: ping"
        fake.fail_next(500, message="boom")
        status, body = post(
            fake.base_url + "/chat/completions", CHAT, {"Authorization": "Bearer test-key"}
        )
        assert status == 500 and body["error"]["message"] == "boom"
        assert len(fake.requests) == 2
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(fake.base_url + "/models", timeout=2)


def test_process_mode_prints_the_base_url_and_serves() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance.testing.fakes", "anthropic", "--api-key", "k1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        headers = {"x-api-key": "k1", "anthropic-version": "2023-06-01"}
        status, body = post(base_url + "/v1/messages", {**CHAT, "max_tokens": 5}, headers)
        assert status == 200 and body["content"][0]["text"] == "echo: ping"
    finally:
        proc.terminate()
        proc.wait(10)


async def test_cached_answers_still_honour_injected_failures_and_auth() -> None:
    async with FakeOpenAI() as fake, aiohttp.ClientSession() as http:
        url = fake.base_url + "/chat/completions"
        ok = {"Authorization": "Bearer test-key"}
        for _ in range(2):
            async with http.post(url, json=CHAT, headers=ok) as resp:
                assert resp.status == 200
        fake.fail_next(429, times=1)
        async with http.post(url, json=CHAT, headers=ok) as resp:
            assert resp.status == 429
            assert (await resp.json())["error"]["type"] == "rate_limit_exceeded"
        async with http.post(url, json=CHAT, headers={"Authorization": "Bearer other"}) as resp:
            assert resp.status == 401
        async with http.post(fake.base_url + "/nowhere", json=CHAT, headers=ok) as resp:
            assert resp.status == 404
        async with http.post(url, data=b"{not json", headers=ok) as resp:
            assert resp.status == 400
        async with http.post(url, json={"messages": []}, headers=ok) as resp:
            assert resp.status == 400


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({"anthropic-version": "2023-06-01"}, {**CHAT, "max_tokens": 5}, 401),
        ({"x-api-key": "test-key"}, {**CHAT, "max_tokens": 5}, 400),
        ({"x-api-key": "test-key", "anthropic-version": "2023-06-01"}, CHAT, 400),
        (
            {"Authorization": "Bearer test-key", "anthropic-version": "2023-06-01"},
            {**CHAT, "max_tokens": 5},
            200,
        ),
    ],
)
async def test_fake_anthropic_checks_like_the_real_service(
    headers: dict[str, str], body: dict[str, Any], status: int
) -> None:
    async with (
        FakeAnthropic() as fake,
        aiohttp.ClientSession() as http,
        http.post(fake.base_url + "/v1/messages", json=body, headers=headers) as resp,
    ):
        assert resp.status == status
        if status != 200:
            assert (await resp.json())["type"] == "error"
