"""The real openai SDK, pointed at the appliance, forwarding to a fake OpenAI."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai import AsyncOpenAI, AuthenticationError, NotFoundError

from appliance.testing.fakes import FakeOpenAI
from tests.conftest import StartAppliance

TOOLS: list[Any] = [
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


@pytest.fixture
async def client(start_appliance: StartAppliance, openai_models: dict[str, Any]) -> Any:
    running = await start_appliance(openai_models)
    async with AsyncOpenAI(base_url=running.base_url, api_key=running.key, max_retries=0) as c:
        yield c


async def test_chat(client: AsyncOpenAI, fake_openai: FakeOpenAI) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "the sky is blue"}]
    )
    r = raw.parse()
    assert r.choices[0].message.content == "echo: the sky is blue"
    assert r.usage is not None and r.usage.completion_tokens > 0
    assert raw.headers["x-request-id"].startswith("req_")
    sent = fake_openai.requests[-1].json()
    assert sent["model"] == "gpt-4o-2024-08-06"  # the upstream name, not the alias


async def test_streaming_chat(client: AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage = "", None
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        if chunk.usage:
            usage = chunk.usage
    assert text == "echo: one two three"
    assert usage is not None and usage.total_tokens > 0


async def test_stream_without_usage_option_has_no_usage_chunk(client: AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hello"}], stream=True
    )
    chunks = [c async for c in stream]
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)


async def test_tool_call_round_trip(client: AsyncOpenAI) -> None:
    messages: list[Any] = [{"role": "user", "content": "use the tool for Paris"}]
    first = await client.chat.completions.create(
        model="gpt-4o", messages=messages, tools=TOOLS, tool_choice="required"
    )
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert "city" in json.loads(call.function.arguments)
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 degrees"},
    ]
    second = await client.chat.completions.create(model="gpt-4o", messages=messages, tools=TOOLS)
    assert second.choices[0].message.content == "echo: sunny, 21 degrees"


async def test_streamed_tool_call(client: AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "call the tool please"}],
        tools=TOOLS,
        stream=True,
    )
    args, name = "", None
    async for chunk in stream:
        for tc in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
            name = tc.function.name or name  # type: ignore[union-attr]
            args += tc.function.arguments or ""  # type: ignore[union-attr]
    assert name == "get_weather"
    assert json.loads(args)["city"]


async def test_embeddings_float_and_base64(client: AsyncOpenAI) -> None:
    default = await client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    floats = await client.embeddings.create(
        model="text-embedding-3-small", input=["a", "b"], encoding_format="float"
    )
    assert len(default.data) == 2
    assert default.data[0].embedding == pytest.approx(floats.data[0].embedding, rel=1e-6)
    assert default.data[0].embedding != default.data[1].embedding


async def test_completions(client: AsyncOpenAI) -> None:
    r = await client.completions.create(model="gpt-4o", prompt="say this", max_tokens=50)
    assert "say this" in r.choices[0].text


async def test_models(client: AsyncOpenAI) -> None:
    ids = {m.id: m.owned_by async for m in client.models.list()}
    assert ids["gpt-4o"] == "openai"
    assert "text-embedding-3-small" in ids
    model = await client.models.retrieve("gpt-4o")
    assert model.id == "gpt-4o"


async def test_unknown_model_is_404(client: AsyncOpenAI) -> None:
    with pytest.raises(NotFoundError) as e:
        await client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "x"}]
        )
    assert e.value.code == "model_not_found"


async def test_bad_key_is_401(start_appliance: StartAppliance, openai_models: Any) -> None:
    running = await start_appliance(openai_models)
    async with AsyncOpenAI(base_url=running.base_url, api_key="ak-nope", max_retries=0) as c:
        with pytest.raises(AuthenticationError):
            await c.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "x"}]
            )


async def test_multimodal_parts_pass_through(client: AsyncOpenAI, fake_openai: FakeOpenAI) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    r = await client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": [{"type": "text", "text": "what is it"}, image]}],
    )
    assert "(+1 image)" in (r.choices[0].message.content or "")
    sent = fake_openai.requests[-1].json()
    assert sent["messages"][0]["content"][1] == image
