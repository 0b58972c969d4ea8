"""Behaviour every adapter shares, checked against every fake with one table."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from appliance.config import (
    AnthropicProviderConfig,
    AzureOpenAIProviderConfig,
    BedrockProviderConfig,
    HFEndpointProviderConfig,
    OpenAIProviderConfig,
    VertexProviderConfig,
)
from appliance.errors import UpstreamError
from appliance.providers.base import Provider
from appliance.providers.registry import create_provider
from appliance.testing.fakes import (
    FakeAnthropic,
    FakeAzureOpenAI,
    FakeBedrock,
    FakeHFEndpoint,
    FakeOpenAI,
    FakeProvider,
    FakeVertex,
)
from appliance.testing.fakes.bedrock import TEST_ACCESS_KEY, TEST_SECRET_KEY

KEY_ENV = "T_EVERY_KEY"

Setup = tuple[Callable[[], FakeProvider], Callable[[FakeProvider], Any], str]

SETUPS: dict[str, Setup] = {
    "openai": (
        FakeOpenAI,
        lambda f: OpenAIProviderConfig(kind="openai", base_url=f.base_url, api_key_env=KEY_ENV),
        "gpt",
    ),
    "azure_openai": (
        FakeAzureOpenAI,
        lambda f: AzureOpenAIProviderConfig(
            kind="azure_openai", base_url=f.base_url, api_key_env=KEY_ENV
        ),
        "deployment",
    ),
    "hf_endpoint": (
        FakeHFEndpoint,
        lambda f: HFEndpointProviderConfig(
            kind="hf_endpoint", base_url=f.base_url, api_key_env=KEY_ENV
        ),
        "tgi",
    ),
    "anthropic": (
        FakeAnthropic,
        lambda f: AnthropicProviderConfig(
            kind="anthropic", base_url=f.base_url, api_key_env=KEY_ENV
        ),
        "claude",
    ),
    "bedrock": (
        FakeBedrock,
        lambda f: BedrockProviderConfig(
            kind="bedrock",
            base_url=f.base_url,
            access_key_id_env="T_EVERY_AK",
            secret_access_key_env="T_EVERY_SK",
            session_token_env=None,
        ),
        "anthropic.claude-3-haiku-20240307-v1:0",
    ),
    "vertex": (
        FakeVertex,
        lambda f: VertexProviderConfig(
            kind="vertex",
            project="test-project",
            location="europe-west4",
            base_url=f.base_url,
            credentials_file_env=None,
            access_token_env=KEY_ENV,
        ),
        "gemini-2.0-flash",
    ),
}


@asynccontextmanager
async def pair(
    kind: str, http: aiohttp.ClientSession
) -> AsyncIterator[tuple[FakeProvider, Provider, str]]:
    make_fake, make_config, model = SETUPS[kind]
    async with make_fake() as fake:
        yield fake, create_provider(f"{kind}-test", make_config(fake), http), model


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "test-key")
    monkeypatch.setenv("T_EVERY_AK", TEST_ACCESS_KEY)
    monkeypatch.setenv("T_EVERY_SK", TEST_SECRET_KEY)


def body(model: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def text_of(chunks: list[dict[str, Any]]) -> str:
    return "".join(
        c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices")
    )


KINDS = sorted(SETUPS)


@pytest.mark.parametrize("kind", KINDS)
async def test_registry_creates_a_provider_that_answers(
    kind: str, http: aiohttp.ClientSession
) -> None:
    async with pair(kind, http) as (_fake, provider, model):
        assert provider.kind == kind and provider.name == f"{kind}-test"
        out = await provider.chat(body(model, "same answer everywhere"))
        assert out["object"] == "chat.completion"
        assert out["choices"][0]["message"]["content"] == "echo: same answer everywhere"
        assert out["usage"]["completion_tokens"] == 4 and out["usage"]["total_tokens"] > 4


@pytest.mark.parametrize("kind", KINDS)
async def test_streams_are_incremental(kind: str, http: aiohttp.ClientSession) -> None:
    """The first chunk reaches the caller while the upstream is still sending."""
    async with pair(kind, http) as (fake, provider, model):
        fake.chunk_delay_s = 0.05
        loop = asyncio.get_running_loop()
        start = loop.time()
        arrivals: list[float] = []
        chunks = []
        async for chunk in provider.stream_chat(body(model, "one two three four five six")):
            arrivals.append(loop.time() - start)
            chunks.append(chunk)
        assert text_of(chunks) == "echo: one two three four five six"
        assert chunks[-1]["usage"]["completion_tokens"] == 7
        assert arrivals[0] < arrivals[-1] / 2


@pytest.mark.parametrize("kind", KINDS)
async def test_broken_stream_is_a_retryable_upstream_error(
    kind: str, http: aiohttp.ClientSession
) -> None:
    async with pair(kind, http) as (fake, provider, model):
        fake.break_stream_after = 2
        with pytest.raises(UpstreamError) as info:
            async for _ in provider.stream_chat(body(model, "a b c d e f g h")):
                pass
        assert info.value.retryable


@pytest.mark.parametrize("kind", KINDS)
async def test_service_unavailable_is_retryable_and_bad_request_is_not(
    kind: str, http: aiohttp.ClientSession
) -> None:
    async with pair(kind, http) as (fake, provider, model):
        fake.fail_next(503, message="try later")
        with pytest.raises(UpstreamError) as info:
            await provider.chat(body(model, "x"))
        assert info.value.retryable and info.value.upstream_status == 503
        fake.fail_next(400, message="bad field")
        with pytest.raises(UpstreamError) as info:
            await provider.chat(body(model, "x"))
        assert not info.value.retryable and "bad field" in info.value.message
        assert (await provider.chat(body(model, "x")))["choices"][0]["message"][
            "content"
        ] == "echo: x"


@pytest.mark.parametrize("kind", KINDS)
async def test_tool_call_with_forced_choice(kind: str, http: aiohttp.ClientSession) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "description": "Weather in a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    async with pair(kind, http) as (_fake, provider, model):
        choice = {"type": "function", "function": {"name": "weather"}}
        out = await provider.chat(body(model, "Oslo", tools=tools, tool_choice=choice))
        call = out["choices"][0]["message"]["tool_calls"][0]
        assert out["choices"][0]["finish_reason"] == "tool_calls"
        assert call["function"] == {"name": "weather", "arguments": '{"city":"Oslo"}'}
        assert call["id"]
