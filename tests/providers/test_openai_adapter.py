"""The OpenAI adapter against the fake OpenAI server: pass-through, streams, errors."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from appliance.config import OpenAIProviderConfig
from appliance.errors import UpstreamError, UpstreamTimeout
from appliance.providers import openai as openai_provider
from appliance.providers.openai import OpenAICompatibleProvider
from appliance.testing.fakes import FakeOpenAI

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Look something up",
            "parameters": {
                "type": "object",
                "properties": {"q": {"type": "string"}},
                "required": ["q"],
            },
        },
    }
]


def make(
    fake: FakeOpenAI, http: aiohttp.ClientSession, key_env: str, **kw: Any
) -> OpenAICompatibleProvider:
    config = OpenAIProviderConfig(kind="openai", base_url=fake.base_url, api_key_env=key_env, **kw)
    return openai_provider.create("openai-test", config, http)


def chat_body(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-test", "messages": [{"role": "user", "content": text}], **extra}


async def collect(stream: Any) -> list[dict[str, Any]]:
    return [chunk async for chunk in stream]


async def test_chat_passes_request_through_and_returns_completion(
    http: aiohttp.ClientSession, provider_key: str
) -> None:
    async with FakeOpenAI() as fake:
        provider = make(fake, http, provider_key, organization="org-1")
        body = chat_body(
            "hello world", temperature=0.2, seed=7, user="u1", response_format={"type": "text"}
        )
        out = await provider.chat(body)
        assert out["object"] == "chat.completion"
        assert out["choices"][0]["message"]["content"] == "echo: hello world"
        assert out["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
        sent = fake.requests[-1]
        assert sent.json() == body
        assert sent.headers["Authorization"] == "Bearer test-key"
        assert sent.headers["OpenAI-Organization"] == "org-1"


async def test_n_choices_and_json_response_format(
    http: aiohttp.ClientSession, provider_key: str
) -> None:
    async with FakeOpenAI() as fake:
        out = await make(fake, http, provider_key).chat(
            chat_body("hi", n=3, response_format={"type": "json_object"})
        )
        assert [c["index"] for c in out["choices"]] == [0, 1, 2]
        assert out["choices"][0]["message"]["content"] == '{"echo":"hi"}'


async def test_multimodal_parts_pass_through(
    http: aiohttp.ClientSession, provider_key: str
) -> None:
    parts = [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]
    async with FakeOpenAI() as fake:
        out = await make(fake, http, provider_key).chat(
            {"model": "m", "messages": [{"role": "user", "content": parts}]}
        )
        assert out["choices"][0]["message"]["content"] == "echo: what is this (+1 image)"
        assert fake.requests[-1].json()["messages"][0]["content"] == parts


async def test_stream_yields_chunks_and_usage_last(
    http: aiohttp.ClientSession, provider_key: str
) -> None:
    async with FakeOpenAI() as fake:
        chunks = await collect(
            make(fake, http, provider_key).stream_chat(chat_body("one two three"))
        )
        text = "".join(
            c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]
        )
        assert text == "echo: one two three"
        assert chunks[-1]["choices"] == []
        assert chunks[-1]["usage"]["completion_tokens"] == 4
        assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
        sent = fake.requests[-1].json()
        assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


async def test_stream_is_incremental(http: aiohttp.ClientSession, provider_key: str) -> None:
    """The first chunk arrives long before the stream ends: nothing is buffered."""
    async with FakeOpenAI() as fake:
        fake.chunk_delay_s = 0.05
        stream = make(fake, http, provider_key).stream_chat(chat_body("a b c d e f"))
        loop = asyncio.get_running_loop()
        start = loop.time()
        first = await anext(stream)
        first_at = loop.time() - start
        rest = await collect(stream)
        total = loop.time() - start
        assert first["choices"][0]["delta"]["role"] == "assistant"
        assert len(rest) >= 8
        assert first_at < total / 3


async def test_tool_call_round_trip(http: aiohttp.ClientSession, provider_key: str) -> None:
    async with FakeOpenAI() as fake:
        provider = make(fake, http, provider_key)
        first = await provider.chat(
            chat_body("please use the tool", tools=TOOLS, tool_choice="auto")
        )
        call = first["choices"][0]["message"]["tool_calls"][0]
        assert first["choices"][0]["finish_reason"] == "tool_calls"
        assert call["function"] == {"name": "lookup", "arguments": '{"q":"please use the tool"}'}
        followup = {
            "model": "m",
            "tools": TOOLS,
            "messages": [
                {"role": "user", "content": "please use the tool"},
                first["choices"][0]["message"],
                {"role": "tool", "tool_call_id": call["id"], "content": "42"},
            ],
        }
        second = await provider.chat(followup)
        assert second["choices"][0]["message"]["content"] == "echo: 42"


async def test_streamed_tool_call_arguments_concatenate(
    http: aiohttp.ClientSession, provider_key: str
) -> None:
    async with FakeOpenAI() as fake:
        chunks = await collect(
            make(fake, http, provider_key).stream_chat(
                chat_body("x", tools=TOOLS, tool_choice="required")
            )
        )
        calls = [
            tc
            for c in chunks
            if c["choices"]
            for tc in c["choices"][0]["delta"].get("tool_calls") or []
        ]
        assert calls[0]["function"]["name"] == "lookup"
        assert "".join(tc["function"]["arguments"] for tc in calls) == '{"q":"x"}'


async def test_completions_and_streamed_completions(
    http: aiohttp.ClientSession, provider_key: str
) -> None:
    async with FakeOpenAI() as fake:
        provider = make(fake, http, provider_key)
        out = await provider.completions({"model": "m", "prompt": ["a b", "c"]})
        assert [c["text"] for c in out["choices"]] == ["echo: a b", "echo: c"]
        chunks = await collect(provider.stream_completions({"model": "m", "prompt": "a b"}))
        assert "".join(c["choices"][0]["text"] for c in chunks if c["choices"]) == "echo: a b"
        assert chunks[-1]["usage"]["prompt_tokens"] == 2


async def test_embeddings_are_floats_even_when_base64_was_asked(
    http: aiohttp.ClientSession, provider_key: str
) -> None:
    async with FakeOpenAI() as fake:
        out = await make(fake, http, provider_key).embeddings(
            {"model": "e", "input": ["a", "b"], "encoding_format": "base64", "dimensions": 4}
        )
        assert [len(d["embedding"]) for d in out["data"]] == [4, 4]
        assert all(isinstance(v, float) for v in out["data"][0]["embedding"])


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(400, False), (401, False), (404, False), (408, True), (429, True), (500, True), (503, True)],
)
async def test_status_mapping(
    http: aiohttp.ClientSession, provider_key: str, status: int, retryable: bool
) -> None:
    async with FakeOpenAI() as fake:
        fake.fail_next(status, message="upstream says no")
        with pytest.raises(UpstreamError) as info:
            await make(fake, http, provider_key).chat(chat_body("x"))
        assert info.value.upstream_status == status
        assert info.value.retryable is retryable
        assert "upstream says no" in info.value.message


async def test_stream_error_status_is_raised_before_any_chunk(
    http: aiohttp.ClientSession, provider_key: str
) -> None:
    async with FakeOpenAI() as fake:
        fake.fail_next(429)
        with pytest.raises(UpstreamError) as info:
            await collect(make(fake, http, provider_key).stream_chat(chat_body("x")))
        assert info.value.retryable and info.value.upstream_status == 429


async def test_wrong_key_is_not_retryable_and_key_not_leaked(
    http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WRONG_KEY_ENV", "sk-secret-value")
    async with FakeOpenAI() as fake:
        with pytest.raises(UpstreamError) as info:
            await make(fake, http, "WRONG_KEY_ENV").chat(chat_body("x"))
        assert info.value.upstream_status == 401 and not info.value.retryable
        assert "sk-secret-value" not in info.value.message


async def test_timeout_maps_to_upstream_timeout(
    http: aiohttp.ClientSession, provider_key: str
) -> None:
    async with FakeOpenAI() as fake:
        fake.delay_s = 0.6
        with pytest.raises(UpstreamTimeout):
            await make(fake, http, provider_key, timeout_s=0.1).chat(chat_body("x"))


async def test_stream_stall_maps_to_upstream_timeout(
    http: aiohttp.ClientSession, provider_key: str
) -> None:
    async with FakeOpenAI() as fake:
        fake.chunk_delay_s = 1.0
        with pytest.raises(UpstreamTimeout):
            await collect(
                make(fake, http, provider_key, timeout_s=0.2).stream_chat(chat_body("x y"))
            )


async def test_connection_refused_is_retryable(
    http: aiohttp.ClientSession, provider_key: str
) -> None:
    fake = FakeOpenAI()
    async with fake:
        provider = make(fake, http, provider_key)
    with pytest.raises(UpstreamError) as info:
        await provider.chat(chat_body("x"))
    assert info.value.retryable and not isinstance(info.value, UpstreamTimeout)


async def test_failures_are_consumed_then_service_recovers(
    http: aiohttp.ClientSession, provider_key: str
) -> None:
    async with FakeOpenAI() as fake:
        provider = make(fake, http, provider_key)
        fake.fail_next(503, times=2)
        for _ in range(2):
            with pytest.raises(UpstreamError):
                await provider.chat(chat_body("x"))
        assert (await provider.chat(chat_body("x")))["choices"][0]["message"][
            "content"
        ] == "echo: x"
        assert len(fake.requests) == 3
