"""Translation tables between the OpenAI canonical shape and Anthropic's Messages API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from appliance.errors import InvalidRequest, UpstreamError
from appliance.providers.anthropic_format import (
    FINISH_TO_STOP,
    STOP_TO_FINISH,
    AnthropicStreamTranslator,
    anthropic_request_to_openai,
    anthropic_response_to_openai,
    openai_request_to_anthropic,
    openai_response_to_anthropic,
    openai_stream_to_anthropic_events,
)

TOOL_CHOICES = [
    ("auto", {"type": "auto"}),
    ("required", {"type": "any"}),
    ("none", {"type": "none"}),
    ({"type": "function", "function": {"name": "f"}}, {"type": "tool", "name": "f"}),
]


@pytest.mark.parametrize(("openai_choice", "anthropic_choice"), TOOL_CHOICES)
def test_tool_choice_both_directions(openai_choice: Any, anthropic_choice: dict[str, Any]) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "tools": tools,
        "tool_choice": openai_choice,
    }
    out = openai_request_to_anthropic(body)
    assert out["tool_choice"] == anthropic_choice
    assert out["tools"] == [{"name": "f", "description": "", "input_schema": {"type": "object"}}]
    back = anthropic_request_to_openai({**out, "messages": [{"role": "user", "content": "x"}]})
    assert back["tool_choice"] == openai_choice
    assert back["tools"][0]["function"]["parameters"] == {"type": "object"}


@pytest.mark.parametrize(("stop", "finish"), sorted(STOP_TO_FINISH.items()))
def test_stop_reason_to_finish_reason(stop: str, finish: str) -> None:
    resp = {
        "id": "msg_1",
        "model": "c",
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": stop,
        "usage": {},
    }
    assert anthropic_response_to_openai(resp)["choices"][0]["finish_reason"] == finish


@pytest.mark.parametrize(("finish", "stop"), sorted(FINISH_TO_STOP.items()))
def test_finish_reason_to_stop_reason(finish: str, stop: str) -> None:
    resp = {
        "id": "c1",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "x"}, "finish_reason": finish}
        ],
    }
    assert openai_response_to_anthropic(resp, "m")["stop_reason"] == stop


def test_parallel_tool_calls_false_disables_parallel_use() -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "parallel_tool_calls": False,
    }
    assert openai_request_to_anthropic(body)["tool_choice"] == {
        "type": "auto",
        "disable_parallel_tool_use": True,
    }


def test_consecutive_tool_results_merge_into_one_user_turn() -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "x"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                    {
                        "id": "b",
                        "type": "function",
                        "function": {"name": "g", "arguments": '{"k": 1}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "a", "content": "1"},
            {"role": "tool", "tool_call_id": "b", "content": "2"},
        ],
    }
    turns = openai_request_to_anthropic(body)["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[1]["content"] == [
        {"type": "tool_use", "id": "a", "name": "f", "input": {}},
        {"type": "tool_use", "id": "b", "name": "g", "input": {"k": 1}},
    ]
    assert [b["tool_use_id"] for b in turns[2]["content"]] == ["a", "b"]


def test_json_response_format_adds_instruction_and_bad_arguments_are_rejected() -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_object"},
    }
    assert "JSON" in openai_request_to_anthropic(body)["system"][-1]["text"]
    bad = {
        "model": "m",
        "messages": [
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{"}}
                ],
            }
        ],
    }
    with pytest.raises(InvalidRequest):
        openai_request_to_anthropic(bad)


def test_inbound_request_with_system_blocks_images_and_metadata() -> None:
    body = {
        "model": "claude",
        "max_tokens": 9,
        "system": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}],
        "stop_sequences": ["X"],
        "metadata": {"user_id": "u7"},
        "stream": True,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "see"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "AAA"},
                    },
                ],
            }
        ],
    }
    out = anthropic_request_to_openai(body)
    assert out == {
        "model": "claude",
        "max_tokens": 9,
        "stop": ["X"],
        "user": "u7",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [
            {"role": "system", "content": "AB"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "see"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}},
                ],
            },
        ],
    }


@pytest.mark.parametrize(
    "body",
    [
        {"model": "m"},
        {"messages": []},
        {"model": "m", "messages": [{"role": "system", "content": "x"}]},
        {"model": "m", "messages": [{"role": "user", "content": 5}]},
        {"model": "m", "messages": ["x"]},
        {"model": "m", "messages": [{"role": "user", "content": [{"type": "audio"}]}]},
    ],
)
def test_inbound_malformed_requests_are_invalid(body: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest):
        anthropic_request_to_openai(body)


def test_stream_translator_event_table() -> None:
    t = AnthropicStreamTranslator()
    events: list[tuple[str, dict[str, Any]]] = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_1",
                    "model": "c",
                    "usage": {"input_tokens": 5, "output_tokens": 1},
                },
            },
        ),
        ("ping", {"type": "ping"}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "Hi"},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "tool_use", "id": "t1", "name": "f", "input": {}},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": '{"a":'},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": "1}"},
            },
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 2,
                "content_block": {"type": "tool_use", "id": "t2", "name": "g", "input": {}},
            },
        ),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use"},
                "usage": {"output_tokens": 12},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    deltas = [
        (
            c["choices"][0]["delta"] if c["choices"] else None,
            c["choices"][0]["finish_reason"] if c["choices"] else None,
            c.get("usage"),
        )
        for e, d in events
        for c in t.feed(e, d)
    ]
    assert deltas == [
        ({"role": "assistant", "content": ""}, None, None),
        ({"content": "Hi"}, None, None),
        (
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "t1",
                        "type": "function",
                        "function": {"name": "f", "arguments": ""},
                    }
                ]
            },
            None,
            None,
        ),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}, None, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}, None, None),
        (
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "t2",
                        "type": "function",
                        "function": {"name": "g", "arguments": ""},
                    }
                ]
            },
            None,
            None,
        ),
        ({}, "tool_calls", None),
        (None, None, {"prompt_tokens": 5, "completion_tokens": 12, "total_tokens": 17}),
    ]


@pytest.mark.parametrize(
    ("error_type", "retryable"), [("overloaded_error", True), ("invalid_request_error", False)]
)
def test_stream_error_event_raises(error_type: str, retryable: bool) -> None:
    with pytest.raises(UpstreamError) as info:
        AnthropicStreamTranslator().feed(
            "error", {"type": "error", "error": {"type": error_type, "message": "m"}}
        )
    assert info.value.retryable is retryable


async def _aiter(items: list[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    for item in items:
        yield item


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-9",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


async def test_openai_stream_to_anthropic_events_sequence() -> None:
    chunks = [
        _chunk({"role": "assistant", "content": ""}),
        _chunk({"content": "He"}),
        _chunk({"content": "llo"}),
        _chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "f", "arguments": ""},
                    }
                ]
            }
        ),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}),
        _chunk({}, "tool_calls"),
        {
            "id": "chatcmpl-9",
            "choices": [],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
        },
    ]
    events = [
        (name, data)
        async for name, data in openai_stream_to_anthropic_events(_aiter(chunks), "claude")
    ]
    assert [n for n, _ in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(d["type"] == n for n, d in events)
    assert events[0][1]["message"]["id"] == "msg_9" and events[0][1]["message"]["model"] == "claude"
    assert events[5][1]["content_block"] == {
        "type": "tool_use",
        "id": "c1",
        "name": "f",
        "input": {},
    }
    assert events[6][1]["delta"] == {"type": "input_json_delta", "partial_json": "{}"}
    assert events[8][1]["delta"]["stop_reason"] == "tool_use"
    assert events[8][1]["usage"] == {"input_tokens": 3, "output_tokens": 4}


async def test_empty_openai_stream_still_yields_a_valid_message() -> None:
    events = [n async for n, _ in openai_stream_to_anthropic_events(_aiter([]), "m")]
    assert events == ["message_start", "message_delta", "message_stop"]


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"model": "m", "messages": [{"role": "user", "content": "x"}], "system": 5},
        {
            "model": "m",
            "messages": [{"role": "user", "content": "x"}],
            "tools": [{"description": "no name"}],
        },
        {"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": "all"},
        {
            "model": "m",
            "messages": [{"role": "user", "content": [{"type": "tool_result", "content": 5}]}],
            "tool_choice": 3,
        },
    ],
)
def test_inbound_shapes_that_cannot_be_read_are_invalid(body: Any) -> None:
    with pytest.raises(InvalidRequest):
        anthropic_request_to_openai(body)


@pytest.mark.parametrize(
    "body",
    [
        {
            "model": "m",
            "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function"}],
        },
        {
            "model": "m",
            "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": 3}]}],
        },
        {"model": "m", "messages": "x"},
        {"messages": []},
    ],
)
def test_outbound_shapes_that_cannot_be_read_are_invalid(body: Any) -> None:
    with pytest.raises(InvalidRequest):
        openai_request_to_anthropic(body)


@pytest.mark.parametrize(
    "resp",
    [
        {"content": "text instead of blocks"},
        {"content": [5]},
        {"content": [], "usage": {"input_tokens": "many"}},
    ],
)
def test_unexpected_upstream_shapes_are_upstream_errors(resp: Any) -> None:
    with pytest.raises(UpstreamError):
        anthropic_response_to_openai(resp)
