"""Limits on header size, body size, JSON depth, message count and inline media: each a
4xx in the caller's API format (OpenAI or Anthropic), set in ``[server]``, and a request
just inside every limit still answered."""

from __future__ import annotations

import base64
from typing import Any

import aiohttp
import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from appliance.errors import InvalidRequest, PayloadTooLarge
from appliance.server.request_limits import MEDIA_PARTS, RequestLimits, check_body, may_break
from appliance.testing.harness import merge
from tests.conftest import Running, StartAppliance

LIMITS = {"server": {"max_header_bytes": 2048, "max_body_bytes": 50_000, "max_json_depth": 10,
                     "max_messages": 6, "max_multimodal_bytes": 4000}}
CHAT, MESSAGES, RESPONSES = "/v1/chat/completions", "/v1/messages", "/v1/responses"


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


def _image(chars: int) -> dict[str, Any]:
    data = base64.b64encode(b"\x89PNG" + b"\0" * chars)[:chars].decode()
    return {"type": "image_url", "image_url": {"url": "data:image/png;base64," + data}}


def _chat(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": messages, **extra}


def _anthropic(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "max_tokens": 16, "messages": messages, **extra}


USER = {"role": "user", "content": "hello"}
TURNS = [USER, {"role": "assistant", "content": "hi"}]
ANTHROPIC_IMAGE = {"type": "image", "source": {
    "type": "base64", "media_type": "image/png", "data": "A" * 5000}}

# (route, body, status, code or Anthropic error type)
TOO_MUCH: list[tuple[str, Any, int, str]] = [
    (CHAT, b"x" * 60_000, 413, "request_too_large"),
    (CHAT, _chat([USER], metadata={"deep": _nested(12)}), 400, "json_too_deep"),
    (CHAT, _chat([USER] + TURNS * 3), 400, "too_many_messages"),
    (CHAT, _chat([{"role": "user", "content": [_image(2500), _image(2500)]}]), 413,
     "multimodal_too_large"),
    (CHAT, _chat([{"role": "user", "content": [{"type": "input_audio", "input_audio": {
        "data": "U" * 4500, "format": "wav"}}]}]), 413, "multimodal_too_large"),
    (MESSAGES, b"x" * 60_000, 413, "request_too_large"),
    (MESSAGES, _anthropic([USER], metadata={"deep": _nested(12)}), 400, "invalid_request_error"),
    (MESSAGES, _anthropic([USER] + TURNS * 3), 400, "invalid_request_error"),
    (MESSAGES, _anthropic([{"role": "user", "content": [ANTHROPIC_IMAGE]}]), 413,
     "request_too_large"),
    (RESPONSES, {"model": "gpt-4o", "input": [USER] * 7}, 400, "too_many_messages"),
    (RESPONSES, {"model": "gpt-4o", "input": [{"role": "user", "content": [
        {"type": "input_image", "image_url": "data:image/png;base64," + "A" * 4500}]}]}, 413,
     "multimodal_too_large"),
    ("/admin/keys", {"tenant": "t", "user": "u", "limits": _nested(12)}, 400, "json_too_deep"),
    ("/v1/embeddings", {"model": "gpt-4o", "input": "x", "deep": _nested(11)}, 400,
     "json_too_deep"),
]


@pytest.fixture
async def running(start_appliance: StartAppliance, openai_models: dict[str, Any]) -> Running:
    return await start_appliance(merge(openai_models, LIMITS))


def _kind(route: str, body: dict[str, Any]) -> set[str]:
    if route == MESSAGES:
        assert body["type"] == "error" and set(body["error"]) == {"type", "message"}
        return {body["error"]["type"]}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return {body["error"]["code"], body["error"]["type"]}


@pytest.mark.parametrize(("route", "payload", "status", "kind"), TOO_MUCH)
async def test_over_a_limit_is_a_4xx_in_the_callers_format(
    running: Running, route: str, payload: Any, status: int, kind: str
) -> None:
    data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    async with aiohttp.ClientSession(running.url) as http:
        async with http.post(route, data=data, headers={
            "Authorization": f"Bearer {running.key}", "Content-Type": "application/json"}) as r:
            assert r.status == status, await r.text()
            assert kind in _kind(route, await r.json())


@pytest.mark.parametrize("route", [CHAT, MESSAGES, "/v1/models", "/healthz", "/v1/nowhere"])
async def test_headers_over_the_limit_get_431_in_the_callers_format(
    running: Running, route: str
) -> None:
    headers = {"Authorization": f"Bearer {running.key}", "x-padding": "p" * 2100}
    async with aiohttp.ClientSession(running.url) as http:
        async with http.post(route, json={}, headers=headers) as r:
            assert r.status == 431
            body = await r.json()
            kind = _kind(route, body)
            assert kind & {"request_header_fields_too_large", "invalid_request_error"}
        # Split over many headers, the total counts.
        many = {f"x-pad-{i}": "p" * 100 for i in range(25)}
        async with http.get("/v1/models", headers=many) as r:
            assert r.status == 431


async def test_a_header_far_beyond_the_limit_is_still_refused(running: Running) -> None:
    """Past twice the limit aiohttp's parser refuses it itself (400): a 4xx, never a 5xx."""
    async with aiohttp.ClientSession(running.url) as http:
        async with http.get("/v1/models", headers={"x-padding": "p" * 10_000}) as r:
            assert r.status in (400, 431)


async def test_just_inside_every_limit_is_answered(running: Running) -> None:
    body = _chat([{"role": "user", "content": [{"type": "text", "text": "look"}, _image(3000)]},
                  *TURNS, *TURNS, {"role": "user", "content": "ok?"}],
                 metadata={"deep": _nested(7)})
    headers = {"Authorization": f"Bearer {running.key}", "x-padding": "p" * 1500}
    async with aiohttp.ClientSession(running.url) as http:
        async with http.post(CHAT, json=body, headers=headers) as r:
            assert r.status == 200, await r.text()
        async with http.post(MESSAGES, json=_anthropic([USER, *TURNS[1:], USER]),
                             headers=headers) as r:
            assert r.status == 200, await r.text()


async def test_the_websocket_request_meets_the_same_limits(running: Running) -> None:
    headers = {"Authorization": f"Bearer {running.key}"}
    async with aiohttp.ClientSession(running.url) as http:
        async with http.ws_connect("/v1/realtime/chat", headers=headers) as ws:
            await ws.send_json(_chat([USER] + TURNS * 3))
            messages = [m.json() async for m in ws]
    assert messages[-1]["type"] == "error" and messages[-1]["status"] == 400
    assert messages[-1]["error"]["code"] == "too_many_messages"


async def test_a_multipart_part_with_malformed_headers_is_a_400(running: Running) -> None:
    """Found by Schemathesis: a part name that is not valid header text was a 503."""
    boundary = "b0undary"
    raw = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"".encode()
           + "\x93\u00ec\x00".encode("utf-8") + b"\"\r\n\r\nx\r\n"
           + f"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n"
             f"batch\r\n--{boundary}--\r\n".encode())
    async with aiohttp.ClientSession(running.url) as http:
        async with http.post("/v1/files", data=raw, headers={
            "Authorization": f"Bearer {running.key}",
            "Content-Type": f"multipart/form-data; boundary={boundary}"}) as r:
            assert r.status == 400, await r.text()
            assert (await r.json())["error"]["type"] == "invalid_request_error"


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=8)
    | st.dictionaries(st.sampled_from(["type", "messages", "input", "url", "x"]), inner,
                      max_size=4)
    | st.fixed_dictionaries({"type": st.sampled_from(sorted(MEDIA_PARTS)), "data": inner}),
    max_leaves=60,
)


@settings(max_examples=400, deadline=None)
@example(body={"messages": [0] * 5}, depth=4, messages=4, media=999)  # a comma per item
@example(body=[[[[[0]]]]], depth=4, messages=1, media=999)  # a bracket per level
@example(body={"type": "image", "d": "x" * 30}, depth=4, messages=9, media=33)
@given(body=_JSON, depth=st.integers(4, 12), messages=st.integers(1, 8),
       media=st.integers(0, 2000))
def test_a_body_the_byte_count_lets_through_breaks_no_limit(
    body: Any, depth: int, messages: int, media: int
) -> None:
    """The shortcut that skips parsing (``may_break``) never skips a body a limit
    refuses: whatever ``check_body`` refuses, ``may_break`` sends to it."""
    limits = RequestLimits(max_header_bytes=8192, max_json_depth=depth, max_messages=messages,
                           max_multimodal_bytes=media)
    try:
        check_body(body, limits)
    except (InvalidRequest, PayloadTooLarge):
        assert may_break(orjson.dumps(body), limits)
