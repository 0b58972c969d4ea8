"""Fake Anthropic Messages API: ``POST /v1/messages`` with its exact event stream.

Checks the key (``x-api-key``, or ``Authorization: Bearer`` as anthropic SDK 2.x sends it)
and ``anthropic-version`` like the real service, requires
``max_tokens``, answers with ``message`` objects (text and ``tool_use`` blocks) or the SSE
sequence ``message_start``, ``ping``, ``content_block_start`` / ``content_block_delta``
(``text_delta``, ``input_json_delta``) / ``content_block_stop``, ``message_delta``,
``message_stop``; errors use Anthropic's ``{"type": "error", "error": {...}}`` body.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from aiohttp import web

from appliance.testing.fakes._echo import Answer, Prompt, Tool, answer, count_words
from appliance.testing.fakes._server import FakeProvider, sse_event, start_sse

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(
        b.get("text", "") for b in content or [] if isinstance(b, dict) and b.get("type") == "text"
    )


def _tool_result_text(content: Any) -> str:
    return _text(content) if content is not None else ""


def anthropic_prompt(body: dict[str, Any]) -> Prompt:
    messages = body["messages"]
    system = body.get("system")
    words = count_words(_text(system) if system else "")
    last_user, images, tool_result = "", 0, None
    for m in messages:
        words += count_words(_text(m.get("content")))
    last = messages[-1] if messages else {}
    if last.get("role") == "user" and isinstance(last.get("content"), list):
        results = [b for b in last["content"] if b.get("type") == "tool_result"]
        if results:
            tool_result = _tool_result_text(results[-1].get("content"))
    for m in reversed(messages):
        if m.get("role") == "user" and _text(m.get("content")):
            last_user = _text(m["content"])
            if isinstance(m["content"], list):
                images = sum(1 for b in m["content"] if b.get("type") == "image")
            break
    choice = body.get("tool_choice") or {"type": "auto"}
    kind = str(choice.get("type", "auto"))
    choice_name = {"auto": "auto", "any": "required", "none": "none"}.get(kind) or str(
        choice.get("name", "auto")
    )
    tools = tuple(Tool(t["name"], t.get("input_schema") or {}) for t in body.get("tools") or [])
    return Prompt(
        last_user_text=last_user,
        images=images,
        tool_result=tool_result,
        tools=tools,
        tool_choice=choice_name,
        max_tokens=int(body["max_tokens"]),
        prompt_tokens=max(1, words),
    )


def _blocks(a: Answer) -> list[dict[str, Any]]:
    if a.tool_call is None:
        return [{"type": "text", "text": a.text}]
    return [
        {"type": "text", "text": f"calling {a.tool_call.name}"},
        {
            "type": "tool_use",
            "id": a.tool_call.id,
            "name": a.tool_call.name,
            "input": a.tool_call.arguments,
        },
    ]


class FakeAnthropic(FakeProvider):
    provider = "anthropic"

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/v1/messages", self._messages)]

    def error_response(self, status: int, message: str) -> web.Response:
        body = {
            "type": "error",
            "error": {"type": _ERROR_TYPES.get(status, "api_error"), "message": message},
        }
        return web.json_response(body, status=status)

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        raw, failure = await self.intake(request)
        if failure is not None:
            return failure
        if self.api_key not in (
            request.headers.get("x-api-key"),
            request.headers.get("Authorization", "").removeprefix("Bearer "),
        ):
            return self.error_response(401, "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return self.error_response(400, "anthropic-version: header is required")
        try:
            body = orjson.loads(raw)
            if not isinstance(body.get("model"), str) or not isinstance(body.get("messages"), list):
                return self.error_response(400, "model and messages: field required")
            if "max_tokens" not in body:
                return self.error_response(400, "max_tokens: Field required")
            prompt = anthropic_prompt(body)
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
            return self.error_response(400, "the request body is not a valid Messages API request")
        a = answer(prompt, call_id="toolu_fake_1")
        ident = "msg_fake" + hashlib.sha1(raw, usedforsecurity=False).hexdigest()[:20]
        usage = {"input_tokens": a.prompt_tokens, "output_tokens": a.completion_tokens}
        if not body.get("stream"):
            return web.json_response(
                {
                    "id": ident,
                    "type": "message",
                    "role": "assistant",
                    "model": body["model"],
                    "content": _blocks(a),
                    "stop_reason": _STOP[a.finish],
                    "stop_sequence": None,
                    "usage": {
                        **usage,
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": 0,
                    },
                }
            )
        frames: list[bytes] = []

        def send(event: str, data: dict[str, Any]) -> None:
            frames.append(sse_event({"type": event, **data}, event))

        send(
            "message_start",
            {
                "message": {
                    "id": ident,
                    "type": "message",
                    "role": "assistant",
                    "model": body["model"],
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": a.prompt_tokens, "output_tokens": 1},
                }
            },
        )
        send("ping", {})
        for index, block in enumerate(_blocks(a)):
            if block["type"] == "text":
                send(
                    "content_block_start",
                    {"index": index, "content_block": {"type": "text", "text": ""}},
                )
                pieces = a.pieces() if a.tool_call is None else [block["text"]]
                for piece in pieces:
                    send(
                        "content_block_delta",
                        {"index": index, "delta": {"type": "text_delta", "text": piece}},
                    )
            else:
                start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
                send("content_block_start", {"index": index, "content_block": start})
                args = orjson.dumps(block["input"]).decode()
                for part in ("", args[: len(args) // 2], args[len(args) // 2 :]):
                    send(
                        "content_block_delta",
                        {
                            "index": index,
                            "delta": {"type": "input_json_delta", "partial_json": part},
                        },
                    )
            send("content_block_stop", {"index": index})
        send(
            "message_delta",
            {
                "delta": {"stop_reason": _STOP[a.finish], "stop_sequence": None},
                "usage": {"output_tokens": a.completion_tokens},
            },
        )
        send("message_stop", {})
        return await self.send_frames(request, await start_sse(request), frames)
