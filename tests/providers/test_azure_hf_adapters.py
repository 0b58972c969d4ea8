"""Azure OpenAI and Hugging Face endpoint adapters against their fakes."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from appliance.config import AzureOpenAIProviderConfig, HFEndpointProviderConfig
from appliance.errors import UpstreamError
from appliance.providers import azure_openai, hf_endpoint
from appliance.providers.hf_endpoint import _pooled
from appliance.testing.fakes import FakeAzureOpenAI, FakeHFEndpoint


def chat_body(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "my-deployment", "messages": [{"role": "user", "content": text}], **extra}


async def collect(stream: Any) -> list[dict[str, Any]]:
    return [c async for c in stream]


async def test_azure_chat_uses_deployment_url_version_and_api_key(
    http: aiohttp.ClientSession, provider_key: str
) -> None:
    async with FakeAzureOpenAI() as fake:
        config = AzureOpenAIProviderConfig(
            kind="azure_openai",
            base_url=fake.base_url,
            api_key_env=provider_key,
            api_version="2024-10-21",
        )
        provider = azure_openai.create("azure", config, http)
        out = await provider.chat(chat_body("hi"))
        assert out["model"] == "my-deployment"
        assert out["choices"][0]["message"]["content"] == "echo: hi"
        sent = fake.requests[-1]
        assert sent.path == "/openai/deployments/my-deployment/chat/completions"
        assert sent.query == {"api-version": "2024-10-21"}
        assert sent.headers["api-key"] == "test-key" and "Authorization" not in sent.headers

        emb = await provider.embeddings({"model": "emb-deploy", "input": "x"})
        assert fake.requests[-1].path == "/openai/deployments/emb-deploy/embeddings"
        assert len(emb["data"][0]["embedding"]) == 8
        comp = await provider.completions({"model": "d", "prompt": "p"})
        assert comp["choices"][0]["text"] == "echo: p"


async def test_azure_stream_drops_the_prompt_filter_chunk(
    http: aiohttp.ClientSession, provider_key: str
) -> None:
    async with FakeAzureOpenAI() as fake:
        config = AzureOpenAIProviderConfig(
            kind="azure_openai", base_url=fake.base_url, api_key_env=provider_key
        )
        chunks = await collect(
            azure_openai.create("azure", config, http).stream_chat(chat_body("a b"))
        )
        assert all(c["choices"] or c.get("usage") for c in chunks)
        assert (
            "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
            == "echo: a b"
        )
        assert chunks[-1]["usage"]["total_tokens"] == 5


async def test_azure_wrong_key(
    http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZ_WRONG", "nope")
    async with FakeAzureOpenAI() as fake:
        config = AzureOpenAIProviderConfig(
            kind="azure_openai", base_url=fake.base_url, api_key_env="AZ_WRONG"
        )
        with pytest.raises(UpstreamError) as info:
            await azure_openai.create("azure", config, http).chat(chat_body("hi"))
        assert info.value.upstream_status == 401 and not info.value.retryable
        assert "Access denied" in info.value.message


async def test_hf_chat_stream_and_feature_extraction(
    http: aiohttp.ClientSession, provider_key: str
) -> None:
    async with FakeHFEndpoint() as fake:
        config = HFEndpointProviderConfig(
            kind="hf_endpoint", base_url=fake.base_url + "/", api_key_env=provider_key
        )
        provider = hf_endpoint.create("hf", config, http)
        out = await provider.chat(chat_body("hello"))
        assert out["choices"][0]["message"]["content"] == "echo: hello"
        assert fake.requests[-1].path == "/v1/chat/completions"
        assert fake.requests[-1].headers["Authorization"] == "Bearer test-key"
        chunks = await collect(provider.stream_chat(chat_body("x y")))
        assert (
            "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
            == "echo: x y"
        )

        emb = await provider.embeddings({"model": "tei", "input": ["a", "b"]})
        assert fake.requests[-1].path == "/" and fake.requests[-1].json() == {"inputs": ["a", "b"]}
        assert [d["index"] for d in emb["data"]] == [0, 1] and len(emb["data"][0]["embedding"]) == 8


async def test_hf_errors_are_mapped(http: aiohttp.ClientSession, provider_key: str) -> None:
    async with FakeHFEndpoint() as fake:
        config = HFEndpointProviderConfig(
            kind="hf_endpoint", base_url=fake.base_url, api_key_env=provider_key
        )
        fake.fail_next(503, message="Model is loading")
        with pytest.raises(UpstreamError) as info:
            await hf_endpoint.create("hf", config, http).embeddings({"model": "m", "input": "x"})
        assert info.value.retryable and "Model is loading" in info.value.message


@pytest.mark.parametrize(
    ("raw", "pooled"),
    [
        ([1.0, 2.0], [1.0, 2.0]),
        ([[1.0, 2.0], [3.0, 4.0]], [2.0, 3.0]),
        ([[[1.0, 0.0], [0.0, 1.0]]], [0.5, 0.5]),
    ],
)
def test_feature_extraction_pooling(raw: Any, pooled: list[float]) -> None:
    assert _pooled(raw) == pooled
