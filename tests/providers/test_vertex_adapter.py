"""The Vertex/Gemini adapter against the fake Vertex AI server, google-auth included."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from appliance.config import VertexProviderConfig
from appliance.errors import UpstreamError, UpstreamTimeout
from appliance.providers import vertex
from appliance.providers.vertex import VertexProvider, gemini_to_openai, openai_to_gemini
from appliance.testing.fakes import FakeVertex

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Look up",
            "parameters": {
                "type": "object",
                "properties": {"q": {"type": "string"}},
                "additionalProperties": False,
                "$schema": "http://json-schema.org/draft-07/schema#",
            },
        },
    }
]


@pytest.fixture
def token_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("T_VERTEX_TOKEN", "test-key")
    return "T_VERTEX_TOKEN"


def make(fake: FakeVertex, http: aiohttp.ClientSession, **kw: Any) -> VertexProvider:
    fields: dict[str, Any] = {
        "kind": "vertex",
        "project": fake.project,
        "location": fake.location,
        "base_url": fake.base_url,
        "credentials_file_env": None,
        **kw,
    }
    return vertex.create("vertex-test", VertexProviderConfig(**fields), http)


def chat_body(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "gemini-2.0-flash", "messages": [{"role": "user", "content": text}], **extra}


async def collect(stream: Any) -> list[dict[str, Any]]:
    return [c async for c in stream]


def test_request_translation_table() -> None:
    body = {
        "model": "g",
        "messages": [
            {"role": "system", "content": "sys"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "see"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}},
                    {"type": "image_url", "image_url": {"url": "gs://bucket/cat.png"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": '{"q":"x"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": '{"hits": 3}'},
            {"role": "tool", "tool_call_id": "c1", "content": "plain"},
        ],
        "max_tokens": 20,
        "temperature": 0.3,
        "n": 2,
        "stop": "END",
        "response_format": {"type": "json_object"},
        "tools": TOOLS,
        "tool_choice": {"type": "function", "function": {"name": "lookup"}},
    }
    assert openai_to_gemini(body) == {
        "systemInstruction": {"parts": [{"text": "sys"}]},
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "see"},
                    {"inlineData": {"mimeType": "image/png", "data": "AAA"}},
                    {"fileData": {"mimeType": "image/png", "fileUri": "gs://bucket/cat.png"}},
                ],
            },
            {"role": "model", "parts": [{"functionCall": {"name": "lookup", "args": {"q": "x"}}}]},
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "lookup", "response": {"hits": 3}}},
                    {"functionResponse": {"name": "lookup", "response": {"content": "plain"}}},
                ],
            },
        ],
        "generationConfig": {
            "maxOutputTokens": 20,
            "temperature": 0.3,
            "candidateCount": 2,
            "stopSequences": ["END"],
            "responseMimeType": "application/json",
        },
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "lookup",
                        "description": "Look up",
                        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
                    }
                ]
            }
        ],
        "toolConfig": {
            "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["lookup"]}
        },
    }


@pytest.mark.parametrize(
    ("reason", "has_call", "finish"),
    [
        ("STOP", False, "stop"),
        ("STOP", True, "tool_calls"),
        ("MAX_TOKENS", False, "length"),
        ("SAFETY", False, "content_filter"),
        ("OTHER", False, "stop"),
    ],
)
def test_finish_reason_table(reason: str, has_call: bool, finish: str) -> None:
    parts: list[dict[str, Any]] = (
        [{"functionCall": {"name": "f", "args": {}}}] if has_call else [{"text": "t"}]
    )
    resp = {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": reason}]}
    assert gemini_to_openai(resp, "g")["choices"][0]["finish_reason"] == finish


def test_blocked_prompt_gives_content_filter() -> None:
    out = gemini_to_openai(
        {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 4}}, "g"
    )
    assert out["choices"][0]["finish_reason"] == "content_filter"
    assert out["usage"]["prompt_tokens"] == 4


async def test_chat_with_static_token(http: aiohttp.ClientSession, token_env: str) -> None:
    async with FakeVertex() as fake:
        out = await make(fake, http, access_token_env=token_env).chat(chat_body("hello world", n=2))
        assert [c["message"]["content"] for c in out["choices"]] == ["echo: hello world"] * 2
        assert out["usage"] == {"prompt_tokens": 2, "completion_tokens": 6, "total_tokens": 8}
        sent = fake.requests[-1]
        assert (
            sent.path
            == f"/v1/projects/{fake.project}/locations/{fake.location}/publishers/google/models/gemini-2.0-flash:generateContent"
        )
        assert sent.headers["Authorization"] == "Bearer test-key"


async def test_stream_and_usage(http: aiohttp.ClientSession, token_env: str) -> None:
    async with FakeVertex() as fake:
        chunks = await collect(
            make(fake, http, access_token_env=token_env).stream_chat(chat_body("a b c"))
        )
        assert (
            "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
            == "echo: a b c"
        )
        assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 4
        assert fake.requests[-1].query == {"alt": "sse"}


async def test_tool_call_round_trip(http: aiohttp.ClientSession, token_env: str) -> None:
    async with FakeVertex() as fake:
        provider = make(fake, http, access_token_env=token_env)
        chunks = await collect(provider.stream_chat(chat_body("please use the tool", tools=TOOLS)))
        calls = [
            tc
            for c in chunks
            if c["choices"]
            for tc in c["choices"][0]["delta"].get("tool_calls", [])
        ]
        assert calls[0]["function"] == {
            "name": "lookup",
            "arguments": '{"q":"please use the tool"}',
        }
        assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][
            -1
        ] == "tool_calls"
        followup = chat_body("please use the tool", tools=TOOLS)
        followup["messages"] += [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": calls[0]["id"], "type": "function", "function": calls[0]["function"]}
                ],
            },
            {"role": "tool", "tool_call_id": calls[0]["id"], "content": "done"},
        ]
        out = await provider.chat(followup)
        assert out["choices"][0]["message"]["content"] == "echo: done"
        assert (
            fake.requests[-1].json()["contents"][-1]["parts"][0]["functionResponse"]["name"]
            == "lookup"
        )


async def test_service_account_token_minted_once_and_reused(
    http: aiohttp.ClientSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FakeVertex() as fake:
        monkeypatch.setenv("T_SA_FILE", str(fake.write_service_account(tmp_path / "sa.json")))
        provider = make(fake, http, credentials_file_env="T_SA_FILE")
        for _ in range(3):
            out = await provider.chat(chat_body("x"))
            assert out["choices"][0]["message"]["content"] == "echo: x"
        token_requests = [r for r in fake.requests if r.path == "/token"]
        assert len(token_requests) == 1
        assert fake.requests[-1].headers["Authorization"] == "Bearer ya29.fake-1"


async def test_service_account_token_is_refreshed_when_expired(
    http: aiohttp.ClientSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FakeVertex() as fake:
        fake.token_lifetime_s = 1  # inside google-auth's refresh margin: expired at once
        monkeypatch.setenv("T_SA_FILE", str(fake.write_service_account(tmp_path / "sa.json")))
        provider = make(fake, http, credentials_file_env="T_SA_FILE")
        await provider.chat(chat_body("x"))
        await provider.chat(chat_body("x"))
        assert fake.requests[-1].headers["Authorization"] == "Bearer ya29.fake-2"


async def test_service_account_with_wrong_key_fails_cleanly(
    http: aiohttp.ClientSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FakeVertex() as fake:
        path = fake.write_service_account(tmp_path / "sa.json")
        fake.write_service_account(tmp_path / "other.json")  # the fake now trusts another key
        monkeypatch.setenv("T_SA_FILE", str(path))
        with pytest.raises(UpstreamError) as info:
            await make(fake, http, credentials_file_env="T_SA_FILE").chat(chat_body("x"))
        assert "access token" in info.value.message and not info.value.retryable


async def test_wrong_token_and_error_mapping(
    http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("T_BAD", "bad-token")
    async with FakeVertex() as fake:
        with pytest.raises(UpstreamError) as info:
            await make(fake, http, access_token_env="T_BAD").chat(chat_body("x"))
        assert info.value.upstream_status == 401 and "bad-token" not in info.value.message
        monkeypatch.setenv("T_BAD", "test-key")
        fake.fail_next(429, message="Quota exceeded")
        with pytest.raises(UpstreamError) as info:
            await make(fake, http, access_token_env="T_BAD").chat(chat_body("x"))
        assert info.value.retryable and "Quota exceeded" in info.value.message


async def test_stream_timeout(http: aiohttp.ClientSession, token_env: str) -> None:
    async with FakeVertex() as fake:
        fake.chunk_delay_s = 1.0
        with pytest.raises(UpstreamTimeout):
            await collect(
                make(fake, http, access_token_env=token_env, timeout_s=0.2).stream_chat(
                    chat_body("a b c")
                )
            )


async def test_embeddings_and_completions(http: aiohttp.ClientSession, token_env: str) -> None:
    async with FakeVertex() as fake:
        provider = make(fake, http, access_token_env=token_env)
        out = await provider.embeddings(
            {"model": "text-embedding-005", "input": ["a", "b c"], "dimensions": 4}
        )
        assert [len(d["embedding"]) for d in out["data"]] == [4, 4]
        assert out["usage"]["prompt_tokens"] == 3
        assert fake.requests[-1].path.endswith("text-embedding-005:predict")
        comp = await provider.completions({"model": "gemini", "prompt": "p"})
        assert comp["choices"][0]["text"] == "echo: p"
