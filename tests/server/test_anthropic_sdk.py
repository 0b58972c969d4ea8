"""The real anthropic SDK against the appliance's /v1/messages route.

Two upstreams: the fake Anthropic API (through the Anthropic adapter) and the fake
OpenAI API (so the Anthropic shape is translated both ways around the pipeline).
"""

from __future__ import annotations

from typing import Any

import pytest
from anthropic import AsyncAnthropic, AuthenticationError, NotFoundError

from appliance.testing.fakes import FakeAnthropic
from appliance.testing.harness import merge
from tests.conftest import StartAppliance


@pytest.fixture
async def client(
    start_appliance: StartAppliance, openai_models: dict[str, Any], fake_anthropic: FakeAnthropic
) -> Any:
    config = merge(
        openai_models,
        {
            "providers": {
                "anthropic": {
                    "kind": "anthropic",
                    "base_url": fake_anthropic.base_url,
                    "api_key_env": "APPLIANCE_TEST_ANTHROPIC_KEY",
                    "region": "eu",
                }
            },
            "models": {"claude": {"provider": "anthropic", "upstream_model": "claude-sonnet-4-5"}},
        },
    )
    running = await start_appliance(config)
    async with AsyncAnthropic(base_url=running.url, api_key=running.key, max_retries=0) as c:
        yield c


@pytest.mark.parametrize("model", ["claude", "gpt-4o"])
async def test_messages(client: AsyncAnthropic, model: str) -> None:
    msg = await client.messages.create(
        model=model,
        max_tokens=100,
        system="be brief",
        messages=[{"role": "user", "content": "the grass is green"}],
    )
    assert msg.content[0].type == "text"
    assert msg.content[0].text == "echo: the grass is green"
    assert msg.stop_reason == "end_turn"
    assert msg.usage.output_tokens > 0


@pytest.mark.parametrize("model", ["claude", "gpt-4o"])
async def test_streaming_messages(client: AsyncAnthropic, model: str) -> None:
    async with client.messages.stream(
        model=model, max_tokens=100, messages=[{"role": "user", "content": "red yellow blue"}]
    ) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "echo: red yellow blue"
    assert final.usage.output_tokens > 0
    assert final.stop_reason == "end_turn"


@pytest.mark.parametrize("model", ["claude", "gpt-4o"])
async def test_tool_use(client: AsyncAnthropic, model: str) -> None:
    tools: Any = [
        {
            "name": "lookup",
            "description": "look something up",
            "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
        }
    ]
    msg = await client.messages.create(
        model=model,
        max_tokens=100,
        tools=tools,
        tool_choice={"type": "any"},
        messages=[{"role": "user", "content": "use a tool for cats"}],
    )
    use = next(b for b in msg.content if b.type == "tool_use")
    assert use.name == "lookup" and "q" in use.input  # type: ignore[operator]
    assert msg.stop_reason == "tool_use"
    follow = await client.messages.create(
        model=model,
        max_tokens=100,
        tools=tools,
        messages=[
            {"role": "user", "content": "use a tool for cats"},
            {"role": "assistant", "content": msg.content},  # type: ignore[typeddict-item]
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "meow"}],
            },
        ],
    )
    assert follow.content[0].text == "echo: meow"  # type: ignore[union-attr]


async def test_errors_in_anthropic_shape(client: AsyncAnthropic) -> None:
    with pytest.raises(NotFoundError) as e:
        await client.messages.create(
            model="nope", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert e.value.body["type"] == "error"  # type: ignore[index]
    assert e.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    bad = client.with_options(api_key="ak-wrong")
    with pytest.raises(AuthenticationError):
        await bad.messages.create(
            model="claude", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
