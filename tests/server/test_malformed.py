"""A table of malformed requests: each gets a precise 4xx, none a 500, and the server
stays healthy afterwards."""

from __future__ import annotations

import random
from typing import Any

import aiohttp
import orjson
import pytest

from appliance.testing.harness import merge
from tests.conftest import Running, StartAppliance

MSG = [{"role": "user", "content": "hi"}]
AUTH = object()  # placeholder: replaced by the valid key

# (route, body bytes or JSON value, headers, expected status, expected error type/code)
CASES: list[tuple[str, Any, Any, int, str]] = [
    ("/v1/chat/completions", b"{", AUTH, 400, "invalid_request_error"),
    ("/v1/chat/completions", b"", AUTH, 400, "invalid_request_error"),
    ("/v1/chat/completions", b"\xff\xfe\x00", AUTH, 400, "invalid_request_error"),
    ("/v1/chat/completions", b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "\xc3\x28"}]}', AUTH, 400, "invalid_request_error"),
    ("/v1/chat/completions", [1, 2], AUTH, 400, "invalid_request_error"),
    ("/v1/chat/completions", "just a string", AUTH, 400, "invalid_request_error"),
    ("/v1/chat/completions", {"messages": MSG}, AUTH, 400, "invalid_request_error"),
    ("/v1/chat/completions", {"model": 5, "messages": MSG}, AUTH, 400, "invalid_type"),
    ("/v1/chat/completions", {"model": "gpt-4o"}, AUTH, 400, "invalid_request_error"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": "hi"}, AUTH, 400, "invalid_type"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": []}, AUTH, 400, "invalid_request_error"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": [None]}, AUTH, 400, "invalid_type"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": [{"role": "wizard", "content": "x"}]}, AUTH, 400, "invalid_request_error"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": [{"role": "user"}]}, AUTH, 400, "invalid_request_error"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": [{"role": "user", "content": 42}]}, AUTH, 400, "invalid_type"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": [{"role": "user", "content": [{"type": "video"}]}]}, AUTH, 400, "invalid_request_error"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": [{"role": "tool", "content": "x"}]}, AUTH, 400, "invalid_request_error"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": MSG, "temperature": "hot"}, AUTH, 400, "invalid_type"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": MSG, "temperature": 7}, AUTH, 400, "invalid_value"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": MSG, "max_tokens": -1}, AUTH, 400, "invalid_value"),
    ("/v1/chat/completions", b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1e400}', AUTH, 400, "invalid_request_error"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": MSG, "n": True}, AUTH, 400, "invalid_type"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": MSG, "stream": "yes"}, AUTH, 400, "invalid_type"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": MSG, "stop": ["a", "b", "c", "d", "e"]}, AUTH, 400, "invalid_request_error"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": MSG, "tools": [{"type": "function"}]}, AUTH, 400, "invalid_type"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": MSG, "tools": "all"}, AUTH, 400, "invalid_type"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": MSG, "tool_choice": "sometimes"}, AUTH, 400, "invalid_request_error"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": MSG, "response_format": {"type": "yaml"}}, AUTH, 400, "invalid_request_error"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": MSG, "stream_options": {"include_usage": 1}}, AUTH, 400, "invalid_type"),
    ("/v1/chat/completions", {"model": "no-such-model", "messages": MSG}, AUTH, 404, "model_not_found"),
    ("/v1/chat/completions", {"model": "text-embedding-3-small", "messages": MSG}, AUTH, 400, "unsupported_operation"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": MSG}, None, 401, "invalid_api_key"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": MSG}, {"Authorization": "Bearer ak-0123456789abcdef-forged"}, 401, "invalid_api_key"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": MSG}, {"Authorization": "Basic Zm9vOmJhcg=="}, 401, "invalid_api_key"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": [{"role": "user", "content": "x" * 300_000}]}, AUTH, 413, "request_too_large"),
    ("/v1/completions", {"model": "gpt-4o"}, AUTH, 400, "invalid_request_error"),
    ("/v1/completions", {"model": "gpt-4o", "prompt": [1, "a"]}, AUTH, 400, "invalid_type"),
    ("/v1/embeddings", {"model": "text-embedding-3-small"}, AUTH, 400, "invalid_request_error"),
    ("/v1/embeddings", {"model": "text-embedding-3-small", "input": [{}]}, AUTH, 400, "invalid_type"),
    ("/v1/embeddings", {"model": "text-embedding-3-small", "input": "x", "encoding_format": "hex"}, AUTH, 400, "invalid_request_error"),
    ("/v1/embeddings", {"model": "gpt-4o", "input": "x"}, AUTH, 400, "unsupported_operation"),
    ("/v1/messages", b"{oops", AUTH, 400, "invalid_request_error"),
    ("/v1/messages", {"model": "gpt-4o", "messages": MSG}, AUTH, 400, "invalid_request_error"),
    ("/v1/messages", {"model": "gpt-4o", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}, AUTH, 400, "invalid_request_error"),
    ("/v1/messages", {"model": "nope", "max_tokens": 5, "messages": MSG}, AUTH, 404, "not_found_error"),
    ("/v1/messages", {"model": "gpt-4o", "max_tokens": 5, "messages": MSG}, None, 401, "authentication_error"),
    ("/v1/nothing-here", {}, AUTH, 404, "not_found"),
]


@pytest.fixture
async def running(start_appliance: StartAppliance, openai_models: dict[str, Any]) -> Running:
    return await start_appliance(merge(openai_models, {"server": {"max_body_bytes": 200_000}}))


def _error_kind(route: str, body: dict[str, Any]) -> set[str]:
    err = body["error"]
    if route.startswith("/v1/messages"):
        assert body["type"] == "error"
        return {err["type"]}
    assert set(err) == {"message", "type", "param", "code"}
    return {err["type"], err["code"]}


@pytest.mark.parametrize(("route", "payload", "headers", "status", "kind"), CASES)
async def test_malformed_request(
    running: Running, route: str, payload: Any, headers: Any, status: int, kind: str
) -> None:
    data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    hdrs = {"Authorization": f"Bearer {running.key}"} if headers is AUTH else (headers or {})
    async with aiohttp.ClientSession() as http:
        async with http.post(running.url + route, data=data, headers=hdrs) as r:
            assert r.status == status, await r.text()
            assert r.headers["x-request-id"]
            body = await r.json()
            assert kind in _error_kind(route, body)
            assert "Traceback" not in body["error"]["message"]
        async with http.get(running.url + "/healthz") as r:
            assert r.status == 200


async def test_random_bodies_never_500(running: Running) -> None:
    rng = random.Random(7)
    seeds = [orjson.dumps(c[1]) if not isinstance(c[1], bytes) else c[1] for c in CASES[:20]]
    async with aiohttp.ClientSession() as http:
        for _ in range(150):
            raw = bytearray(rng.choice(seeds))
            for _ in range(rng.randint(1, 4)):
                if raw:
                    raw[rng.randrange(len(raw))] = rng.randrange(256)
            for route in ("/v1/chat/completions", "/v1/messages", "/v1/embeddings"):
                async with http.post(
                    running.url + route, data=bytes(raw),
                    headers={"Authorization": f"Bearer {running.key}"},
                ) as r:
                    assert r.status < 500, (route, bytes(raw), await r.text())
        async with http.get(running.url + "/healthz") as r:
            assert r.status == 200


async def test_wrong_method(running: Running) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(running.url + "/v1/chat/completions") as r:
            assert r.status == 405
            assert (await r.json())["error"]["message"]
