"""The Anthropic adapter against the fake Anthropic server."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from appliance.config import AnthropicProviderConfig
from appliance.errors import UnsupportedOperation, UpstreamError, UpstreamTimeout
from appliance.providers import anthropic as anthropic_provider
from appliance.providers.anthropic import AnthropicProvider
from appliance.testing.fakes import FakeAnthropic

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Look something up",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
        },
    }
]


def make(
    fake: FakeAnthropic, http: aiohttp.ClientSession, key_env: str, **kw: Any
) -> AnthropicProvider:
    config = AnthropicProviderConfig(
        kind="anthropic", base_url=fake.base_url, api_key_env=key_env, **kw
    )
    return anthropic_provider.create("anthropic-test", config, http)


def chat_body(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "claude-test", "messages": [{"role": "user", "content": text}], **extra}


async def collect(stream: Any) -> list[dict[str, Any]]:
    return [c async for c in stream]


async def test_chat_translates_request_and_response(
    http: aiohttp.ClientSession, provider_key: str
) -> None:
    async with FakeAnthropic() as fake:
        provider = make(fake, http, provider_key, default_max_tokens=321)
        body = {
            "model": "claude-test",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "hello world"},
            ],
            "stop": "END",
            "temperature": 1.5,
        }
        out = await provider.chat(body)
        assert out["object"] == "chat.completion"
        assert out["choices"][0]["message"] == {"role": "assistant", "content": "echo: hello world"}
        assert out["choices"][0]["finish_reason"] == "stop"
        assert out["usage"] == {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}
        sent = fake.requests[-1]
        assert sent.headers["x-api-key"] == "test-key"
        assert sent.headers["anthropic-version"] == "2023-06-01"
        assert sent.json() == {
            "model": "claude-test",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hello world"}]}],
            "system": [{"type": "text", "text": "be brief"}],
            "max_tokens": 321,
            "temperature": 1.0,
            "stop_sequences": ["END"],
        }


async def test_max_tokens_maps_to_length(http: aiohttp.ClientSession, provider_key: str) -> None:
    async with FakeAnthropic() as fake:
        out = await make(fake, http, provider_key).chat(
            chat_body("one two three four", max_tokens=2)
        )
        assert out["choices"][0]["finish_reason"] == "length"
        assert out["choices"][0]["message"]["content"] == "echo: one"


async def test_tool_call_round_trip(http: aiohttp.ClientSession, provider_key: str) -> None:
    async with FakeAnthropic() as fake:
        provider = make(fake, http, provider_key)
        first = await provider.chat(chat_body("use the tool", tools=TOOLS))
        message = first["choices"][0]["message"]
        assert first["choices"][0]["finish_reason"] == "tool_calls"
        assert message["tool_calls"][0]["function"] == {
            "name": "lookup",
            "arguments": '{"q":"use the tool"}',
        }
        followup = chat_body("use the tool", tools=TOOLS)
        followup["messages"] += [
            message,
            {"role": "tool", "tool_call_id": message["tool_calls"][0]["id"], "content": "result 7"},
        ]
        second = await provider.chat(followup)
        assert second["choices"][0]["message"]["content"] == "echo: result 7"
        sent = fake.requests[-1].json()["messages"]
        assert [m["role"] for m in sent] == ["user", "assistant", "user"]
        assert sent[1]["content"][-1]["type"] == "tool_use"
        assert sent[2]["content"][0] == {
            "type": "tool_result",
            "tool_use_id": "toolu_fake_1",
            "content": [{"type": "text", "text": "result 7"}],
        }


async def test_stream_text_and_usage(http: aiohttp.ClientSession, provider_key: str) -> None:
    async with FakeAnthropic() as fake:
        chunks = await collect(make(fake, http, provider_key).stream_chat(chat_body("a b c")))
        assert all(c["object"] == "chat.completion.chunk" for c in chunks)
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
        assert text == "echo: a b c"
        finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
        assert finishes[-1] == "stop"
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 4
        assert fake.requests[-1].json()["stream"] is True


async def test_stream_tool_call(http: aiohttp.ClientSession, provider_key: str) -> None:
    async with FakeAnthropic() as fake:
        chunks = await collect(
            make(fake, http, provider_key).stream_chat(
                chat_body("x", tools=TOOLS, tool_choice="required")
            )
        )
        calls = [
            tc
            for c in chunks
            if c["choices"]
            for tc in c["choices"][0]["delta"].get("tool_calls", [])
        ]
        assert calls[0]["id"] == "toolu_fake_1" and calls[0]["function"]["name"] == "lookup"
        assert "".join(tc["function"]["arguments"] for tc in calls) == '{"q":"x"}'
        assert {tc["index"] for tc in calls} == {0}
        assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][
            -1
        ] == "tool_calls"
        assert fake.requests[-1].json()["tool_choice"] == {"type": "any"}


async def test_images_become_image_blocks(http: aiohttp.ClientSession, provider_key: str) -> None:
    parts = [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
    ]
    async with FakeAnthropic() as fake:
        out = await make(fake, http, provider_key).chat(
            {"model": "c", "messages": [{"role": "user", "content": parts}]}
        )
        assert out["choices"][0]["message"]["content"] == "echo: look (+2 image)"
        blocks = fake.requests[-1].json()["messages"][0]["content"]
        assert blocks[1] == {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"},
        }
        assert blocks[2] == {
            "type": "image",
            "source": {"type": "url", "url": "https://example.com/cat.png"},
        }


async def test_completions_served_by_chat(http: aiohttp.ClientSession, provider_key: str) -> None:
    async with FakeAnthropic() as fake:
        provider = make(fake, http, provider_key)
        out = await provider.completions({"model": "c", "prompt": ["x y", "z"]})
        assert out["object"] == "text_completion"
        assert [c["text"] for c in out["choices"]] == ["echo: x y", "echo: z"]
        chunks = await collect(provider.stream_completions({"model": "c", "prompt": "q"}))
        assert "".join(c["choices"][0]["text"] for c in chunks if c["choices"]) == "echo: q"
        assert chunks[-1]["usage"]["total_tokens"] > 0


async def test_embeddings_and_n_are_unsupported(
    http: aiohttp.ClientSession, provider_key: str
) -> None:
    async with FakeAnthropic() as fake:
        provider = make(fake, http, provider_key)
        with pytest.raises(UnsupportedOperation):
            await provider.embeddings({"model": "c", "input": "x"})
        with pytest.raises(UnsupportedOperation):
            await provider.chat(chat_body("x", n=2))
        assert len(fake.requests) == 0


@pytest.mark.parametrize(
    ("status", "retryable"), [(400, False), (401, False), (429, True), (529, True), (500, True)]
)
async def test_status_mapping(
    http: aiohttp.ClientSession, provider_key: str, status: int, retryable: bool
) -> None:
    async with FakeAnthropic() as fake:
        fake.fail_next(status, message="nope")
        with pytest.raises(UpstreamError) as info:
            await make(fake, http, provider_key).chat(chat_body("x"))
        assert (info.value.upstream_status, info.value.retryable) == (status, retryable)
        assert "nope" in info.value.message


async def test_stream_timeout(http: aiohttp.ClientSession, provider_key: str) -> None:
    async with FakeAnthropic() as fake:
        fake.chunk_delay_s = 1.0
        with pytest.raises(UpstreamTimeout):
            await collect(make(fake, http, provider_key, timeout_s=0.2).stream_chat(chat_body("x")))
