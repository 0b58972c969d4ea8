"""The real openai SDK's ``client.responses`` against the appliance, forwarding natively to
a fake OpenAI (and Azure OpenAI) that speaks the Responses wire format exactly, and
through chat to a Hugging Face endpoint, which has no Responses API."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai import AsyncOpenAI, BadRequestError, NotFoundError

from appliance.testing.fakes import FakeOpenAI
from appliance.testing.harness import merge
from tests.conftest import StartAppliance, Running

WEATHER: list[Any] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
        "strict": True,
    }
]


@pytest.fixture
async def running(start_appliance: StartAppliance, openai_models: dict[str, Any]) -> Running:
    return await start_appliance(openai_models)


@pytest.fixture
async def client(running: Running) -> Any:
    async with AsyncOpenAI(base_url=running.base_url, api_key=running.key, max_retries=0) as c:
        yield c


async def test_plain_response_goes_upstream_natively(
    client: AsyncOpenAI, fake_openai: FakeOpenAI
) -> None:
    r = await client.responses.create(
        model="gpt-4o", input="the sky is blue", instructions="Be brief.", max_output_tokens=50
    )
    assert r.object == "response" and r.status == "completed"
    assert r.output_text == "echo: the sky is blue"
    assert r.id.startswith("resp_") and r.instructions == "Be brief."
    assert r.usage is not None and r.usage.output_tokens == 5
    sent = fake_openai.requests[-1]
    assert sent.path == "/v1/responses"
    wire = sent.json()
    assert wire["model"] == "gpt-4o-2024-08-06" and wire["store"] is False
    assert wire["max_output_tokens"] == 50
    assert wire["input"][0] == {"type": "message", "role": "system", "content": "Be brief."}


async def test_streamed_response_has_the_event_sequence(client: AsyncOpenAI) -> None:
    stream = await client.responses.create(model="gpt-4o", input="one two three", stream=True)
    events = [e async for e in stream]
    kinds = [e.type for e in events]
    assert kinds[:5] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "echo: one two three"
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output_text == text and final.usage is not None


async def test_stream_helper_accumulates(client: AsyncOpenAI) -> None:
    async with client.responses.stream(model="gpt-4o", input="hello there") as stream:
        async for _ in stream:
            pass
        final = await stream.get_final_response()
    assert final.output_text == "echo: hello there"


async def test_function_tool_round_trip(client: AsyncOpenAI, fake_openai: FakeOpenAI) -> None:
    first = await client.responses.create(
        model="gpt-4o", input="use a tool for Paris", tools=WEATHER  # type: ignore[arg-type]
    )
    calls = [o for o in first.output if o.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert json.loads(calls[0].arguments) == {"city": "use a tool for Paris"}
    wire_tools = fake_openai.requests[-1].json()["tools"]
    assert wire_tools[0]["name"] == "get_weather" and "function" not in wire_tools[0]
    second = await client.responses.create(
        model="gpt-4o",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"}],
        tools=WEATHER,  # type: ignore[arg-type]
    )
    assert second.output_text == "echo: sunny"
    assert second.previous_response_id == first.id
    wire = fake_openai.requests[-1].json()
    kinds = [i.get("type") for i in wire["input"]]
    assert kinds == ["message", "function_call", "function_call_output"]


async def test_streamed_function_call(client: AsyncOpenAI) -> None:
    stream = await client.responses.create(
        model="gpt-4o", input="tool please, Berlin", tools=WEATHER, stream=True  # type: ignore[arg-type]
    )
    events = [e async for e in stream]
    kinds = [e.type for e in events]
    assert "response.function_call_arguments.delta" in kinds
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert json.loads(done.arguments) == {"city": "tool please, Berlin"}  # type: ignore[union-attr]
    assert kinds[-1] == "response.completed"


async def test_previous_response_id_carries_the_conversation(
    client: AsyncOpenAI, fake_openai: FakeOpenAI
) -> None:
    first = await client.responses.create(model="gpt-4o", input="my name is Ada")
    second = await client.responses.create(
        model="gpt-4o", input="what is my name?", previous_response_id=first.id
    )
    assert second.output_text == "echo: what is my name?"
    wire = fake_openai.requests[-1].json()["input"]
    assert [(i["role"], i["content"] if isinstance(i["content"], str) else i["content"][0]["text"])
            for i in wire] == [
        ("user", "my name is Ada"),
        ("assistant", "echo: my name is Ada"),
        ("user", "what is my name?"),
    ]
    got = await client.responses.retrieve(second.id)
    assert got.output_text == second.output_text
    items = await client.responses.input_items.list(second.id)
    assert [i.type for i in items.data] == ["message"]


async def test_store_false_keeps_nothing(client: AsyncOpenAI) -> None:
    r = await client.responses.create(model="gpt-4o", input="forget me", store=False)
    assert r.store is False
    with pytest.raises(NotFoundError):
        await client.responses.retrieve(r.id)
    with pytest.raises(NotFoundError):
        await client.responses.create(model="gpt-4o", input="again", previous_response_id=r.id)


async def test_delete_and_other_tenant(client: AsyncOpenAI, running: Running) -> None:
    r = await client.responses.create(model="gpt-4o", input="tenant secret")
    other_key = running.new_key(tenant="globex", user="bob")
    async with AsyncOpenAI(base_url=running.base_url, api_key=other_key, max_retries=0) as other:
        with pytest.raises(NotFoundError):
            await other.responses.retrieve(r.id)
        with pytest.raises(NotFoundError):
            await other.responses.create(model="gpt-4o", input="x", previous_response_id=r.id)
    await client.responses.delete(r.id)
    with pytest.raises(NotFoundError):
        await client.responses.retrieve(r.id)


async def test_bad_input_is_a_400(client: AsyncOpenAI) -> None:
    with pytest.raises(BadRequestError):
        await client.responses.create(model="gpt-4o", input=[{"type": "nonsense"}])  # type: ignore[list-item]
    with pytest.raises(BadRequestError):
        await client.responses.create(
            model="gpt-4o", input="x", tools=[{"type": "web_search"}]  # type: ignore[list-item]
        )


async def test_azure_is_forwarded_natively_too(
    start_appliance: StartAppliance, fake_openai: FakeOpenAI
) -> None:
    from appliance.testing.fakes import FakeAzureOpenAI
    from appliance.testing.harness import PASS_THROUGH, openai_upstream

    async with FakeAzureOpenAI(api_key="sk-upstream-test") as azure:
        running = await start_appliance(
            merge(openai_upstream("az", azure.base_url, {"az-4o": "dep"}, kind="azure_openai"),
                  PASS_THROUGH)
        )
        async with AsyncOpenAI(base_url=running.base_url, api_key=running.key, max_retries=0) as c:
            r = await c.responses.create(model="az-4o", input="via azure")
            assert r.output_text == "echo: via azure"
            stream = await c.responses.create(model="az-4o", input="streamed", stream=True)
            assert [e.type async for e in stream][-1] == "response.completed"
        sent = azure.requests[-1]
        assert sent.path == "/openai/v1/responses" and sent.json()["model"] == "dep"
        assert sent.headers["api-key"] == "sk-upstream-test"


async def test_hf_endpoint_goes_through_chat(
    start_appliance: StartAppliance, fake_openai: FakeOpenAI
) -> None:
    from appliance.testing.fakes import FakeHFEndpoint
    from appliance.testing.harness import PASS_THROUGH, openai_upstream

    async with FakeHFEndpoint(api_key="sk-upstream-test") as hf:
        running = await start_appliance(
            merge(openai_upstream("hf", hf.base_url, {"hf-model": "tgi"},
                                  kind="hf_endpoint"), PASS_THROUGH)
        )
        async with AsyncOpenAI(base_url=running.base_url, api_key=running.key, max_retries=0) as c:
            r = await c.responses.create(model="hf-model", input="via chat")
            assert r.output_text == "echo: via chat"
        assert hf.requests[-1].path.endswith("/chat/completions")
