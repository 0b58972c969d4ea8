"""The official SDKs against the fakes: proof that the fakes speak the exact wire formats.

Also drives the inbound Anthropic translation (what the appliance's ``/v1/messages``
route uses) with the real ``anthropic`` SDK, through a small bridge app: Anthropic request
-> canonical -> OpenAI adapter -> fake OpenAI -> canonical -> Anthropic response/events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import openai
import orjson
import pytest
from aiohttp import web

from appliance.config import OpenAIProviderConfig
from appliance.providers import openai as openai_provider
from appliance.providers.anthropic_format import (
    anthropic_request_to_openai,
    openai_response_to_anthropic,
    openai_stream_to_anthropic_events,
)
from appliance.testing.fakes import FakeAnthropic, FakeOpenAI

OPENAI_TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
ANTHROPIC_TOOLS: list[Any] = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
]


async def test_openai_sdk_against_fake_openai() -> None:
    async with FakeOpenAI() as fake:
        client = openai.AsyncOpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0)
        async with client:
            out = await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hello there"}]
            )
            assert out.choices[0].message.content == "echo: hello there"
            assert out.usage is not None and out.usage.total_tokens == 5

            stream = await client.chat.completions.create(
                model="m",
                messages=[{"role": "user", "content": "hello there"}],
                stream=True,
                stream_options={"include_usage": True},
            )
            chunks = [c async for c in stream]
            assert (
                "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
                == "echo: hello there"
            )
            assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3

            tool = await client.chat.completions.create(
                model="m",
                messages=[{"role": "user", "content": "Berlin"}],
                tools=OPENAI_TOOLS,
                tool_choice="required",
            )
            calls = tool.choices[0].message.tool_calls
            assert calls is not None and calls[0].function.name == "get_weather"  # type: ignore[union-attr]

            emb = await client.embeddings.create(model="e", input=["a", "b"])
            assert len(emb.data) == 2 and len(emb.data[0].embedding) == 8

            comp = await client.completions.create(model="m", prompt="say this")
            assert comp.choices[0].text == "echo: say this"

            models = await client.models.list()
            assert [m.id for m in models.data] == ["fake-model"]

            with pytest.raises(openai.AuthenticationError):
                bad = openai.AsyncOpenAI(base_url=fake.base_url, api_key="wrong", max_retries=0)
                async with bad:
                    await bad.chat.completions.create(
                        model="m", messages=[{"role": "user", "content": "x"}]
                    )


async def test_anthropic_sdk_against_fake_anthropic() -> None:
    async with FakeAnthropic() as fake:
        client = anthropic.AsyncAnthropic(base_url=fake.base_url, api_key="test-key", max_retries=0)
        async with client:
            msg = await client.messages.create(
                model="claude-test",
                max_tokens=100,
                system="be brief",
                messages=[{"role": "user", "content": "hello there"}],
            )
            assert msg.content[0].type == "text" and msg.content[0].text == "echo: hello there"
            assert msg.stop_reason == "end_turn" and msg.usage.output_tokens == 3

            async with client.messages.stream(
                model="claude-test",
                max_tokens=100,
                messages=[{"role": "user", "content": "use a tool: Paris"}],
                tools=ANTHROPIC_TOOLS,
            ) as stream:
                final = await stream.get_final_message()
            tool_use = next(b for b in final.content if b.type == "tool_use")
            assert tool_use.name == "get_weather" and tool_use.input == {
                "city": "use a tool: Paris"
            }
            assert final.stop_reason == "tool_use"

            async with client.messages.stream(
                model="claude-test",
                max_tokens=100,
                messages=[{"role": "user", "content": "streamed words here"}],
            ) as stream:
                text = "".join([t async for t in stream.text_stream])
            assert text == "echo: streamed words here"

            fake.fail_next(529, message="overloaded")
            with pytest.raises(anthropic.InternalServerError):
                await client.messages.create(
                    model="claude-test", max_tokens=10, messages=[{"role": "user", "content": "x"}]
                )


def bridge_app(provider: Any) -> web.Application:
    """What the appliance's /v1/messages route does, reduced to the translation."""

    async def messages(request: web.Request) -> web.StreamResponse:
        raw = await request.json()
        body = anthropic_request_to_openai(raw)
        if not body.get("stream"):
            return web.json_response(
                openai_response_to_anthropic(await provider.chat(body), raw["model"])
            )
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        async for event, data in openai_stream_to_anthropic_events(
            provider.stream_chat(body), raw["model"]
        ):
            await resp.write(f"event: {event}\ndata: ".encode() + orjson.dumps(data) + b"\n\n")
        await resp.write_eof()
        return resp

    app = web.Application()
    app.add_routes([web.post("/v1/messages", messages)])
    return app


@pytest.fixture
async def bridge(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[str, FakeOpenAI]]:
    monkeypatch.setenv("BRIDGE_KEY", "test-key")
    async with FakeOpenAI() as fake, aiohttp.ClientSession() as http:
        config = OpenAIProviderConfig(
            kind="openai", base_url=fake.base_url, api_key_env="BRIDGE_KEY"
        )
        runner = web.AppRunner(bridge_app(openai_provider.create("o", config, http)))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        yield f"http://127.0.0.1:{port}", fake
        await runner.cleanup()


async def test_anthropic_sdk_through_inbound_translation(bridge: tuple[str, FakeOpenAI]) -> None:
    url, fake = bridge
    client = anthropic.AsyncAnthropic(base_url=url, api_key="any", max_retries=0)
    async with client:
        msg = await client.messages.create(
            model="m", max_tokens=50, system="sys", messages=[{"role": "user", "content": "hi you"}]
        )
        assert msg.content[0].type == "text" and msg.content[0].text == "echo: hi you"
        assert msg.usage.input_tokens == 3 and msg.usage.output_tokens == 3
        assert fake.requests[-1].json()["messages"][0] == {"role": "system", "content": "sys"}

        async with client.messages.stream(
            model="m", max_tokens=50, messages=[{"role": "user", "content": "a b c"}]
        ) as stream:
            text = "".join([t async for t in stream.text_stream])
            final = await stream.get_final_message()
        assert text == "echo: a b c"
        assert final.stop_reason == "end_turn" and final.usage.output_tokens == 4

        async with client.messages.stream(
            model="m",
            max_tokens=50,
            messages=[{"role": "user", "content": "Rome"}],
            tools=ANTHROPIC_TOOLS,
            tool_choice={"type": "any"},
        ) as stream:
            final = await stream.get_final_message()
        tool_use = next(b for b in final.content if b.type == "tool_use")
        assert tool_use.input == {"city": "Rome"} and final.stop_reason == "tool_use"

        result = await client.messages.create(
            model="m",
            max_tokens=50,
            tools=ANTHROPIC_TOOLS,
            messages=[
                {"role": "user", "content": "Rome"},
                {
                    "role": "assistant",
                    "content": [
                        {
                            "type": "tool_use",
                            "id": tool_use.id,
                            "name": tool_use.name,
                            "input": tool_use.input,
                        }
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": tool_use.id, "content": "sunny"}
                    ],
                },
            ],
        )
        assert result.content[0].type == "text" and result.content[0].text == "echo: sunny"
        sent = fake.requests[-1].json()["messages"]
        assert sent[1]["tool_calls"][0]["id"] == tool_use.id
        assert sent[2] == {"role": "tool", "tool_call_id": tool_use.id, "content": "sunny"}


def test_botocore_client_against_fake_bedrock() -> None:
    """botocore's own bedrock-runtime client: its signing, its JSON and event-stream parsers."""
    import botocore.session
    from botocore.config import Config
    from botocore.exceptions import ClientError, EventStreamError

    from appliance.testing.fakes import FakeBedrock
    from appliance.testing.fakes.bedrock import TEST_ACCESS_KEY, TEST_SECRET_KEY

    with FakeBedrock().running() as fake:
        client = botocore.session.get_session().create_client(
            "bedrock-runtime",
            endpoint_url=fake.base_url,
            region_name="eu-central-1",
            aws_access_key_id=TEST_ACCESS_KEY,
            aws_secret_access_key=TEST_SECRET_KEY,
            config=Config(retries={"total_max_attempts": 1}),
        )
        model = "anthropic.claude-3-haiku-20240307-v1:0"
        messages = [{"role": "user", "content": [{"text": "hello there"}]}]
        out = client.converse(modelId=model, messages=messages, inferenceConfig={"maxTokens": 20})
        assert out["output"]["message"]["content"] == [{"text": "echo: hello there"}]
        assert out["stopReason"] == "end_turn" and out["usage"]["outputTokens"] == 3

        events = list(client.converse_stream(modelId=model, messages=messages)["stream"])
        assert [next(iter(e)) for e in events] == [
            "messageStart",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockStop",
            "messageStop",
            "metadata",
        ]
        text = "".join(
            e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e
        )
        assert text == "echo: hello there"

        tools = {
            "tools": [
                {
                    "toolSpec": {
                        "name": "f",
                        "inputSchema": {
                            "json": {"type": "object", "properties": {"q": {"type": "string"}}}
                        },
                    }
                }
            ],
            "toolChoice": {"any": {}},
        }
        stream = client.converse_stream(modelId=model, messages=messages, toolConfig=tools)[
            "stream"
        ]
        starts = [
            e["contentBlockStart"]["start"]["toolUse"]["name"]
            for e in stream
            if "contentBlockStart" in e
        ]
        assert starts == ["f"]

        fake.fail_next(429, message="Too many tokens")
        with pytest.raises(ClientError) as info:
            client.converse(modelId=model, messages=messages)
        assert info.value.response["Error"]["Code"] == "ThrottlingException"

        fake.stream_exception = "throttlingException"
        with pytest.raises(EventStreamError) as stream_info:
            list(client.converse_stream(modelId=model, messages=messages)["stream"])
        assert stream_info.value.response["Error"]["Code"] == "throttlingException"


async def test_openai_sdk_against_fake_azure_and_hf() -> None:
    from appliance.testing.fakes import FakeAzureOpenAI, FakeHFEndpoint

    async with FakeAzureOpenAI() as azure, FakeHFEndpoint() as hf:
        client = openai.AsyncAzureOpenAI(
            azure_endpoint=azure.base_url,
            api_key="test-key",
            api_version="2024-10-21",
            max_retries=0,
        )
        async with client:
            out = await client.chat.completions.create(
                model="my-deployment", messages=[{"role": "user", "content": "hi azure"}]
            )
            assert (
                out.choices[0].message.content == "echo: hi azure" and out.model == "my-deployment"
            )
            stream = await client.chat.completions.create(
                model="my-deployment",
                messages=[{"role": "user", "content": "hi azure"}],
                stream=True,
            )
            chunks = [c async for c in stream]
            assert (
                "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
                == "echo: hi azure"
            )
            assert azure.requests[-1].path == "/openai/deployments/my-deployment/chat/completions"

        hf_client = openai.AsyncOpenAI(
            base_url=hf.base_url + "/v1", api_key="test-key", max_retries=0
        )
        async with hf_client:
            out = await hf_client.chat.completions.create(
                model="tgi", messages=[{"role": "user", "content": "hi hf"}]
            )
            assert out.choices[0].message.content == "echo: hi hf"


async def test_huggingface_hub_client_against_fake_hf_endpoint() -> None:
    from huggingface_hub import AsyncInferenceClient

    from appliance.testing.fakes import FakeHFEndpoint

    async with FakeHFEndpoint() as fake:
        client = AsyncInferenceClient(base_url=fake.base_url, api_key="test-key")
        out = await client.chat_completion(
            messages=[{"role": "user", "content": "hi hf"}], max_tokens=10
        )
        assert out.choices[0].message.content == "echo: hi hf"
        stream = await client.chat_completion(
            messages=[{"role": "user", "content": "hi hf"}], stream=True
        )
        pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
        assert "".join(pieces) == "echo: hi hf"
        vectors = await client.feature_extraction(["a", "b"])  # type: ignore[arg-type]
        assert vectors.shape == (2, 8)
        assert [r.path for r in fake.requests] == [
            "/v1/chat/completions",
            "/v1/chat/completions",
            "/",
        ]


async def test_google_genai_sdk_against_fake_vertex() -> None:
    import google.oauth2.credentials
    from google import genai
    from google.genai import types

    from appliance.testing.fakes import FakeVertex

    async with FakeVertex() as fake:
        client = genai.Client(
            vertexai=True,
            project=fake.project,
            location=fake.location,
            credentials=google.oauth2.credentials.Credentials(token="test-key"),  # type: ignore[no-untyped-call]
            http_options=types.HttpOptions(base_url=fake.base_url, api_version="v1"),
        )
        config = types.GenerateContentConfig(system_instruction="be brief", max_output_tokens=50)
        out = await client.aio.models.generate_content(
            model="gemini-2.0-flash", contents="hello gemini", config=config
        )
        assert out.text == "echo: hello gemini"
        assert out.usage_metadata is not None and out.usage_metadata.prompt_token_count == 4

        stream = await client.aio.models.generate_content_stream(
            model="gemini-2.0-flash", contents="hello gemini"
        )
        assert "".join([c.text or "" async for c in stream]) == "echo: hello gemini"
        assert fake.requests[-1].query == {"alt": "sse"}

        schema = types.Schema(
            type=types.Type.OBJECT, properties={"city": types.Schema(type=types.Type.STRING)}
        )
        tool = types.Tool(
            function_declarations=[types.FunctionDeclaration(name="weather", parameters=schema)]
        )
        config = types.GenerateContentConfig(
            tools=[tool],
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )
        out = await client.aio.models.generate_content(
            model="gemini-2.0-flash", contents="tool: Rome", config=config
        )
        assert out.function_calls is not None
        assert out.function_calls[0].name == "weather" and out.function_calls[0].args == {
            "city": "tool: Rome"
        }

        texts: list[Any] = ["a", "b"]
        embedded = await client.aio.models.embed_content(model="text-embedding-005", contents=texts)
        assert embedded.embeddings is not None and len(embedded.embeddings) == 2

        fake.fail_next(429, message="Resource exhausted")
        with pytest.raises(genai.errors.ClientError) as info:
            await client.aio.models.generate_content(model="gemini-2.0-flash", contents="x")
        assert info.value.code == 429 and info.value.status == "RESOURCE_EXHAUSTED"
