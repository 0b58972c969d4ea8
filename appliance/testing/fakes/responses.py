"""The fake OpenAI's ``POST /v1/responses``: OpenAI's Responses wire format, exactly.

Independent of the appliance's own translator (``providers/responses_format.py``), so a
mistake there is not mirrored here: the request's input items are read as OpenAI reads
them (a string, or ``message`` / ``function_call`` / ``function_call_output`` items,
flat function tools, ``instructions``), the echo model answers, and the answer is
written as a ``response`` object or as the streamed event sequence OpenAI sends:
``response.created``, ``response.in_progress``, ``response.output_item.added``,
``response.content_part.added``, ``response.output_text.delta``…,
``response.output_text.done``, ``response.content_part.done``,
``response.output_item.done`` (for a function call ``response.function_call_arguments.
delta``… and ``…done`` instead of the text events), ``response.completed``; each event
named in its ``event:`` line and numbered by ``sequence_number``. No ``[DONE]``.
Requests with ``previous_response_id`` are refused: the appliance keeps state itself and
must send the whole conversation with ``store: false``.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from appliance.testing.fakes._echo import Answer, Prompt, Tool, answer, count_words
from appliance.testing.fakes._server import sse_event

CREATED = 1_700_000_000


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text", "")) for p in content
            if isinstance(p, dict) and p.get("type") in ("input_text", "output_text")
        )
    return ""


def responses_prompt(body: dict[str, Any]) -> Prompt:
    raw = body["input"]
    items = [{"type": "message", "role": "user", "content": raw}] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items:
        raise ValueError("input")
    words = count_words(str(body.get("instructions") or ""))
    last_user, tool_result = "", None
    for item in items:
        kind = item.get("type", "message")
        if kind == "message":
            words += count_words(_text(item.get("content")))
            if item.get("role") == "user":
                last_user = _text(item.get("content"))
        elif kind == "function_call_output":
            words += count_words(str(item.get("output")))
        elif kind != "function_call":
            raise ValueError(f"input item type {kind}")
    last = items[-1]
    if last.get("type") == "function_call_output":
        tool_result = str(last.get("output"))
    tools = []
    for t in body.get("tools") or ():
        if t.get("type") != "function" or "function" in t:  # chat's nested shape is wrong here
            raise ValueError("tools")
        tools.append(Tool(t["name"], t.get("parameters") or {}))
    choice = body.get("tool_choice") or "auto"
    if isinstance(choice, dict):
        choice = choice.get("name", "auto")
    return Prompt(
        last_user_text=last_user,
        tool_result=tool_result,
        tools=tuple(tools),
        tool_choice=str(choice),
        max_tokens=body.get("max_output_tokens"),
        prompt_tokens=max(1, words),
    )


def _usage(a: Answer) -> dict[str, Any]:
    return {
        "input_tokens": a.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": a.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": a.prompt_tokens + a.completion_tokens,
    }


def _shell(ident: str, model: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": ident,
        "object": "response",
        "created_at": CREATED,
        "status": "in_progress",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": model,
        "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": None,
        "user": None,
        "metadata": {},
    }


def build_responses(model: str, body: dict[str, Any]) -> bytes | list[bytes]:
    """The answer to one Responses request: a JSON body, or the stream's frames."""
    if body.get("previous_response_id"):
        raise ValueError("previous_response_id")
    a = answer(responses_prompt(body))
    digest = hashlib.sha1(orjson.dumps(body), usedforsecurity=False).hexdigest()[:20]
    ident = "resp_fake" + digest
    shell = _shell(ident, model, body)
    if a.tool_call is not None:
        item = {
            "id": "fc_fake" + digest,
            "type": "function_call",
            "status": "completed",
            "arguments": orjson.dumps(a.tool_call.arguments).decode(),
            "call_id": a.tool_call.id,
            "name": a.tool_call.name,
        }
    else:
        item = {
            "id": "msg_fake" + digest,
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": a.text, "annotations": [], "logprobs": []}],
        }
    status = "incomplete" if a.finish == "length" else "completed"
    done = {
        **shell,
        "status": status,
        "output": [item],
        "usage": _usage(a),
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
    }
    if not body.get("stream"):
        return orjson.dumps(done)
    frames: list[bytes] = []

    def emit(kind: str, **data: Any) -> None:
        frames.append(sse_event({"type": kind, "sequence_number": len(frames), **data}, kind))

    emit("response.created", response=shell)
    emit("response.in_progress", response=shell)
    if a.tool_call is not None:
        emit("response.output_item.added", output_index=0,
             item={**item, "status": "in_progress", "arguments": ""})
        args = item["arguments"]
        half = len(args) // 2
        for part in (args[:half], args[half:]):
            emit("response.function_call_arguments.delta", item_id=item["id"], output_index=0,
                 delta=part)
        emit("response.function_call_arguments.done", item_id=item["id"], output_index=0,
             name=item["name"], arguments=args)
    else:
        emit("response.output_item.added", output_index=0,
             item={**item, "status": "in_progress", "content": []})
        empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        emit("response.content_part.added", item_id=item["id"], output_index=0, content_index=0,
             part=empty)
        for piece in a.pieces():
            emit("response.output_text.delta", item_id=item["id"], output_index=0,
                 content_index=0, delta=piece, logprobs=[])
        emit("response.output_text.done", item_id=item["id"], output_index=0, content_index=0,
             text=a.text, logprobs=[])
        emit("response.content_part.done", item_id=item["id"], output_index=0, content_index=0,
             part=item["content"][0])
    emit("response.output_item.done", output_index=0, item=item)
    emit("response.completed" if status == "completed" else "response.incomplete", response=done)
    return frames
