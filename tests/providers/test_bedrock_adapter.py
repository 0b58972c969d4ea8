"""The Bedrock adapter against the fake Bedrock runtime: SigV4, Converse, the event stream."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer

from appliance.config import BedrockProviderConfig
from appliance.errors import UnsupportedOperation, UpstreamError, UpstreamTimeout
from appliance.providers import bedrock
from appliance.providers.bedrock import BedrockProvider, openai_to_converse
from appliance.testing.fakes import FakeBedrock
from appliance.testing.fakes.bedrock import TEST_ACCESS_KEY, TEST_SECRET_KEY, encode_event

MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
        },
    }
]


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_AK", TEST_ACCESS_KEY)
    monkeypatch.setenv("T_SK", TEST_SECRET_KEY)
    monkeypatch.setenv("T_ST", "session-token-1")


def make(fake: FakeBedrock, http: aiohttp.ClientSession, **kw: Any) -> BedrockProvider:
    fields: dict[str, Any] = {
        "kind": "bedrock",
        "base_url": fake.base_url,
        "aws_region": "eu-central-1",
        "access_key_id_env": "T_AK",
        "secret_access_key_env": "T_SK",
        "session_token_env": None,
        **kw,
    }
    return bedrock.create("bedrock-test", BedrockProviderConfig(**fields), http)


def chat_body(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": text}], **extra}


async def collect(stream: Any) -> list[dict[str, Any]]:
    return [c async for c in stream]


def test_event_stream_encoding_is_what_botocore_decodes() -> None:
    frames = [
        encode_event(
            {":event-type": "messageStart", ":message-type": "event"}, b'{"role":"assistant"}'
        ),
        encode_event({":event-type": "metadata", ":message-type": "event"}, b"{}"),
    ]
    buffer = EventStreamBuffer()
    data = b"".join(frames)
    messages = []
    for i in range(0, len(data), 7):  # arbitrary split points, as the network delivers them
        buffer.add_data(data[i : i + 7])
        messages.extend(buffer)
    assert [m.headers[":event-type"] for m in messages] == ["messageStart", "metadata"]
    assert messages[0].payload == b'{"role":"assistant"}'
    corrupt = bytearray(frames[0])
    corrupt[-1] ^= 0xFF
    broken = EventStreamBuffer()
    broken.add_data(bytes(corrupt))
    with pytest.raises(ChecksumMismatch):
        list(broken)


def test_converse_request_table() -> None:
    body = {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "sys"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "t1",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": '{"q":"a"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "t1", "content": "42"},
        ],
        "max_tokens": 10,
        "temperature": 0.5,
        "top_p": 0.9,
        "stop": ["X"],
        "tools": TOOLS,
        "tool_choice": {"type": "function", "function": {"name": "lookup"}},
    }
    assert openai_to_converse(body) == {
        "system": [{"text": "sys"}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"text": "look"},
                    {"image": {"format": "png", "source": {"bytes": "iVBO"}}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"toolUse": {"toolUseId": "t1", "name": "lookup", "input": {"q": "a"}}}
                ],
            },
            {
                "role": "user",
                "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "42"}]}}],
            },
        ],
        "inferenceConfig": {
            "maxTokens": 10,
            "temperature": 0.5,
            "topP": 0.9,
            "stopSequences": ["X"],
        },
        "toolConfig": {
            "tools": [
                {
                    "toolSpec": {
                        "name": "lookup",
                        "description": "lookup",
                        "inputSchema": {
                            "json": {"type": "object", "properties": {"q": {"type": "string"}}}
                        },
                    }
                }
            ],
            "toolChoice": {"tool": {"name": "lookup"}},
        },
    }


@pytest.mark.parametrize(
    "message",
    [
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "https://x/cat.png"}}],
        },
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "data:image/tiff;base64,AA"}}],
        },
        {"role": "user", "content": [{"type": "input_audio"}]},
    ],
)
def test_unsupported_content_is_refused(message: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedOperation):
        openai_to_converse({"model": MODEL, "messages": [message]})


async def test_chat_is_signed_and_translated(http: aiohttp.ClientSession, aws_env: None) -> None:
    async with FakeBedrock() as fake:
        out = await make(fake, http).chat(chat_body("hello world", max_tokens=50))
        assert out["choices"][0]["message"]["content"] == "echo: hello world"
        assert out["choices"][0]["finish_reason"] == "stop"
        assert out["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
        sent = fake.requests[-1]
        assert sent.path == f"/model/{MODEL}/converse"
        assert sent.headers["Authorization"].startswith(
            f"AWS4-HMAC-SHA256 Credential={TEST_ACCESS_KEY}/"
        )
        assert "inferenceConfig" in sent.json()


async def test_session_token_is_sent_and_checked(
    http: aiohttp.ClientSession, aws_env: None
) -> None:
    async with FakeBedrock(session_token="session-token-1") as fake:
        await make(fake, http, session_token_env="T_ST").chat(chat_body("x"))
        assert fake.requests[-1].headers["X-Amz-Security-Token"] == "session-token-1"
        with pytest.raises(UpstreamError) as info:
            await make(fake, http).chat(chat_body("x"))
        assert info.value.upstream_status == 403


@pytest.mark.parametrize(
    ("fake_kw", "why"),
    [
        ({"secret_key": "another-secret"}, "signature"),
        ({"access_key": "AKIDOTHER"}, "security token"),
        ({"aws_region": "us-east-1"}, "region"),
    ],
)
async def test_bad_signature_is_refused(
    http: aiohttp.ClientSession, aws_env: None, fake_kw: dict[str, str], why: str
) -> None:
    async with FakeBedrock(**fake_kw) as fake:
        with pytest.raises(UpstreamError) as info:
            await make(fake, http).chat(chat_body("x"))
        assert info.value.upstream_status == 403 and not info.value.retryable
        assert why in info.value.message
        assert TEST_SECRET_KEY not in info.value.message


async def test_tampered_body_fails_verification(http: aiohttp.ClientSession, aws_env: None) -> None:
    async with FakeBedrock() as fake:
        provider = make(fake, http)
        url = f"{fake.base_url}/model/m/converse"
        headers = provider._signed_headers(url, b'{"messages":[]}', "application/json")
        async with http.post(url, data=b'{"messages":[1]}', headers=headers) as resp:
            assert resp.status == 403
            assert "signature" in (await resp.json())["message"]


async def test_missing_credentials(
    http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("T_AK", raising=False)
    async with FakeBedrock() as fake:
        with pytest.raises(UpstreamError) as info:
            await make(fake, http).chat(chat_body("x"))
        assert "no AWS credentials" in info.value.message
        assert len(fake.requests) == 0


async def test_stream_text(http: aiohttp.ClientSession, aws_env: None) -> None:
    async with FakeBedrock() as fake:
        chunks = await collect(make(fake, http).stream_chat(chat_body("a b c")))
        text = "".join(
            c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]
        )
        assert text == "echo: a b c"
        assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 4
        assert fake.requests[-1].path == f"/model/{MODEL}/converse-stream"


async def test_tool_call_round_trip_streamed_then_plain(
    http: aiohttp.ClientSession, aws_env: None
) -> None:
    async with FakeBedrock() as fake:
        provider = make(fake, http)
        chunks = await collect(
            provider.stream_chat(chat_body("find", tools=TOOLS, tool_choice="required"))
        )
        calls = [
            tc
            for c in chunks
            if c["choices"]
            for tc in c["choices"][0]["delta"].get("tool_calls", [])
        ]
        assert calls[0]["id"] == "tooluse_fake_1" and calls[0]["function"]["name"] == "lookup"
        arguments = "".join(tc["function"]["arguments"] for tc in calls)
        assert arguments == '{"q":"find"}'
        assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][
            -1
        ] == "tool_calls"
        assert fake.requests[-1].json()["toolConfig"]["toolChoice"] == {"any": {}}
        followup = chat_body("find", tools=TOOLS)
        followup["messages"] += [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": calls[0]["id"],
                        "type": "function",
                        "function": {"name": "lookup", "arguments": arguments},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": calls[0]["id"], "content": "found it"},
        ]
        out = await provider.chat(followup)
        assert out["choices"][0]["message"]["content"] == "echo: found it"


@pytest.mark.parametrize(
    ("exception", "retryable"),
    [
        ("throttlingException", True),
        ("modelStreamErrorException", True),
        ("validationException", False),
    ],
)
async def test_stream_exception_event(
    http: aiohttp.ClientSession, aws_env: None, exception: str, retryable: bool
) -> None:
    async with FakeBedrock() as fake:
        fake.stream_exception = exception
        with pytest.raises(UpstreamError) as info:
            await collect(make(fake, http).stream_chat(chat_body("x")))
        assert exception in info.value.message and info.value.retryable is retryable


@pytest.mark.parametrize(("status", "retryable"), [(400, False), (429, True), (503, True)])
async def test_status_mapping(
    http: aiohttp.ClientSession, aws_env: None, status: int, retryable: bool
) -> None:
    async with FakeBedrock() as fake:
        fake.fail_next(status, message="Too many requests, please wait")
        with pytest.raises(UpstreamError) as info:
            await make(fake, http).chat(chat_body("x"))
        assert (info.value.upstream_status, info.value.retryable) == (status, retryable)
        assert "Too many requests" in info.value.message


async def test_timeout(http: aiohttp.ClientSession, aws_env: None) -> None:
    async with FakeBedrock() as fake:
        fake.chunk_delay_s = 1.0
        with pytest.raises(UpstreamTimeout):
            await collect(make(fake, http, timeout_s=0.2).stream_chat(chat_body("x y")))


@pytest.mark.parametrize("model", ["amazon.titan-embed-text-v2:0", "cohere.embed-multilingual-v3"])
async def test_embeddings(http: aiohttp.ClientSession, aws_env: None, model: str) -> None:
    async with FakeBedrock() as fake:
        out = await make(fake, http).embeddings({"model": model, "input": ["a", "b c"]})
        assert [d["index"] for d in out["data"]] == [0, 1]
        assert len(out["data"][1]["embedding"]) == 8
        assert all(r.path.endswith("/invoke") for r in fake.requests)


async def test_embeddings_of_unknown_family_and_completions(
    http: aiohttp.ClientSession, aws_env: None
) -> None:
    async with FakeBedrock() as fake:
        provider = make(fake, http)
        with pytest.raises(UnsupportedOperation):
            await provider.embeddings({"model": "meta.llama3", "input": "x"})
        out = await provider.completions({"model": MODEL, "prompt": "p q"})
        assert out["choices"][0]["text"] == "echo: p q"
