"""The Responses <-> canonical chat translator, as tables of inputs and expected results,
and against the fake's own (independently written) Responses wire format."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from appliance.errors import InvalidRequest, UnsupportedOperation, UpstreamError
from appliance.providers.responses_format import (
    ResponseEventWriter,
    ResponseFrame,
    ResponsesStreamTranslator,
    chat_request_to_responses,
    chat_to_response,
    history_of,
    responses_request_to_chat,
    responses_response_to_chat,
)
from appliance.testing.fakes.responses import build_responses

TOOL = {"type": "function", "name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}


@pytest.mark.parametrize(
    ("body", "messages"),
    [
        ({"model": "m", "input": "hi"}, [{"role": "user", "content": "hi"}]),
        ({"model": "m", "input": "hi", "instructions": "Be brief."},
         [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]),
        ({"model": "m", "input": [{"role": "user", "content": [
            {"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}]}]},
         [{"role": "user", "content": "ab"}]),
        ({"model": "m", "input": [
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "x"}]},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "one"},
            {"type": "function_call_output", "call_id": "c2", "output": "two"},
        ]}, [
            {"role": "assistant", "content": "x", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "one"},
            {"role": "tool", "tool_call_id": "c2", "content": "two"},
        ]),
        ({"model": "m", "input": [{"role": "user", "content": [
            {"type": "input_text", "text": "see"},
            {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]}]},
         [{"role": "user", "content": [{"type": "text", "text": "see"}, {
             "type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]),
    ],
)
def test_request_to_chat(body: dict[str, Any], messages: list[dict[str, Any]]) -> None:
    assert responses_request_to_chat(body)["messages"] == messages


def test_request_options_to_chat() -> None:
    out = responses_request_to_chat({
        "model": "m", "input": "x", "max_output_tokens": 7, "temperature": 0.5, "tools": [TOOL],
        "tool_choice": {"type": "function", "name": "get_weather"}, "parallel_tool_calls": False,
        "text": {"format": {"type": "json_schema", "name": "s", "schema": {"type": "object"}}},
        "stream": True,
    })
    assert out["max_tokens"] == 7 and out["temperature"] == 0.5
    assert out["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "parameters": TOOL["parameters"]}}]
    assert out["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert out["parallel_tool_calls"] is False
    assert out["response_format"] == {"type": "json_schema",
                                      "json_schema": {"name": "s", "schema": {"type": "object"}}}
    assert out["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"input": "x"}, InvalidRequest),
        ({"model": "m"}, InvalidRequest),
        ({"model": "m", "input": 3}, InvalidRequest),
        ({"model": "m", "input": ["x"]}, InvalidRequest),
        ({"model": "m", "input": [{"type": "item_reference", "id": "x"}]}, UnsupportedOperation),
        ({"model": "m", "input": [{"role": "robot", "content": "x"}]}, InvalidRequest),
        ({"model": "m", "input": [{"type": "function_call", "name": "f"}]}, InvalidRequest),
        ({"model": "m", "input": "x", "tools": [{"type": "web_search"}]}, UnsupportedOperation),
        ({"model": "m", "input": "x", "tools": [TOOL], "tool_choice": "sometimes"}, InvalidRequest),
        ({"model": "m", "input": "x", "max_output_tokens": 0}, InvalidRequest),
        ({"model": "m", "input": "x", "temperature": 5}, InvalidRequest),
        ({"model": "m", "input": "x", "instructions": ["a"]}, InvalidRequest),
        ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_file"}]}]},
         UnsupportedOperation),
    ],
)
def test_bad_requests_are_4xx(body: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        responses_request_to_chat(body)


FRAME = ResponseFrame("resp_1", "gpt-4o", 1, {"instructions": "x", "store": False})


def test_chat_answer_to_response() -> None:
    chat = {"choices": [{"index": 0, "finish_reason": "length", "message": {
        "role": "assistant", "content": "partial", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2}}
    r = chat_to_response(chat, FRAME)
    assert r["status"] == "incomplete" and r["incomplete_details"] == {"reason": "max_output_tokens"}
    assert [o["type"] for o in r["output"]] == ["message", "function_call"]
    assert r["output"][1]["call_id"] == "call_1"
    assert r["usage"]["total_tokens"] == 5 and r["instructions"] == "x" and r["store"] is False


def _events(chunks: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    w = ResponseEventWriter(FRAME)
    out = w.start()
    for c in chunks:
        out.extend(w.feed(c))
    out.extend(w.close_items())
    out.append(w.final_event(w.response()))
    return out


def _delta(**delta: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}


def test_stream_of_text_then_tool_call() -> None:
    events = _events([
        _delta(role="assistant", content=""), _delta(content="Hel"), _delta(content="lo"),
        _delta(tool_calls=[{"index": 0, "id": "c1", "function": {"name": "f", "arguments": ""}}]),
        _delta(tool_calls=[{"index": 0, "function": {"arguments": '{"a":'}}]),
        _delta(tool_calls=[{"index": 0, "function": {"arguments": "1}"}}]),
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {"choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 3}},
    ])
    kinds = [k for k, _ in events]
    assert kinds == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.delta", "response.function_call_arguments.done",
        "response.output_item.done", "response.completed",
    ]
    assert [e["sequence_number"] for _, e in events] == list(range(len(events)))
    final = events[-1][1]["response"]
    assert final["output"][0]["content"][0]["text"] == "Hello"
    assert final["output"][1]["arguments"] == '{"a":1}'
    assert final["usage"]["output_tokens"] == 3
    assert {e[1]["output_index"] for e in events if e[0].startswith("response.function")} == {1}


def test_empty_answer_still_has_a_message() -> None:
    events = _events([{"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}])
    assert events[-1][1]["response"]["output"][0]["type"] == "message"


def _fake(body: dict[str, Any]) -> Any:
    return build_responses("gpt-4o", body)


def test_outbound_round_trip_against_the_fake_wire() -> None:
    canonical = {"model": "gpt-4o", "messages": [
        {"role": "system", "content": "sys"}, {"role": "user", "content": "use a tool, Rome"}],
        "tools": [{"type": "function", "function": {"name": "get_weather",
                                                    "parameters": TOOL["parameters"]}}],
        "max_tokens": 20}
    wire = chat_request_to_responses(canonical)
    assert wire["store"] is False and wire["max_output_tokens"] == 20
    chat = responses_response_to_chat(orjson.loads(_fake(wire)))
    call = chat["choices"][0]["message"]["tool_calls"][0]
    assert chat["choices"][0]["finish_reason"] == "tool_calls"
    assert orjson.loads(call["function"]["arguments"]) == {"city": "use a tool, Rome"}
    follow = {**canonical, "messages": [*canonical["messages"],
                                        chat["choices"][0]["message"],
                                        {"role": "tool", "tool_call_id": call["id"], "content": "sun"}]}
    answer = responses_response_to_chat(orjson.loads(_fake(chat_request_to_responses(follow))))
    assert answer["choices"][0]["message"]["content"] == "echo: sun"


def test_stream_translator_reads_the_fake_stream() -> None:
    frames = _fake({"model": "gpt-4o", "input": "a b c", "stream": True, "store": False})
    t = ResponsesStreamTranslator()
    chunks = []
    for frame in frames:
        data = frame.split(b"data: ", 1)[1].strip()
        chunks.extend(t.feed(orjson.loads(data)))
    text = "".join((c["choices"][0]["delta"].get("content") or "") for c in chunks if c["choices"])
    assert text == "echo: a b c"
    assert chunks[-1]["usage"]["completion_tokens"] == 4
    with pytest.raises(UpstreamError):
        t.feed({"type": "response.failed", "response": {"error": {"code": "server_error"}}})


def test_history_of_a_stored_response() -> None:
    stored = {"history": [{"type": "message", "role": "user", "content": "a"}],
              "input": [{"type": "message", "role": "user", "content": "b", "id": "msg_1"}],
              "response": {"output": [
                  {"type": "function_call", "id": "fc_1", "call_id": "c", "name": "f",
                   "arguments": "{}", "status": "completed"}]}}
    items = history_of(stored)
    assert [i.get("type") for i in items] == ["message", "message", "function_call"]
    assert items[-1] == {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}
