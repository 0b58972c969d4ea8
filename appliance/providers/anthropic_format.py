"""Translation between the OpenAI canonical shape and Anthropic's Messages API.

Both directions are needed: the Anthropic adapter sends canonical requests to Anthropic
(``openai_request_to_anthropic`` / ``anthropic_response_to_openai`` /
:class:`AnthropicStreamTranslator`), and the appliance's own ``/v1/messages`` route turns
what Anthropic SDKs send into the canonical shape and back
(``anthropic_request_to_openai`` / ``openai_response_to_anthropic`` /
``openai_stream_to_anthropic_events``). Pure functions over dicts: no I/O here.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import Any

import orjson

from appliance.errors import InvalidRequest, UnsupportedOperation, UpstreamError
from appliance.providers._translate import JSON_ONLY_HINT, append_turn, tool_arguments
from appliance.providers._http import reads_upstream, rejects_malformed

Body = dict[str, Any]

#: Anthropic ``stop_reason`` -> OpenAI ``finish_reason``.
STOP_TO_FINISH: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "pause_turn": "stop",
    "refusal": "content_filter",
    "model_context_window_exceeded": "length",
}

#: OpenAI ``finish_reason`` -> Anthropic ``stop_reason``.
FINISH_TO_STOP: dict[str, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}

#: Anthropic error types worth retrying when they arrive inside a stream.
RETRYABLE_STREAM_ERRORS = frozenset({"overloaded_error", "api_error", "rate_limit_error"})



# --------------------------------------------------------------------------- helpers


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def _text_of(content: Any) -> str:
    """Plain text of an OpenAI or Anthropic content value (str or list of text parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(
        p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
    )


def _image_to_anthropic(part: Body) -> Body:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise InvalidRequest("image_url: must carry a url string", param="messages")
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header[5:].split(";")[0] or "image/png"
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    return {"type": "image", "source": {"type": "url", "url": url}}


def _image_to_openai(block: Body) -> Body:
    source = block.get("source") or {}
    if source.get("type") == "base64":
        url = f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
    else:
        url = source.get("url", "")
    return {"type": "image_url", "image_url": {"url": url}}


def _content_to_anthropic(content: Any) -> list[Body]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[Body] = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif kind == "image_url":
            blocks.append(_image_to_anthropic(part))
        else:
            raise UnsupportedOperation(
                f"content part type {kind!r} is not supported by Anthropic models",
                param="messages",
            )
    return blocks


def _usage_to_openai(usage: Body | None) -> Body:
    usage = usage or {}
    prompt = (
        int(usage.get("input_tokens") or 0)
        + int(usage.get("cache_creation_input_tokens") or 0)
        + int(usage.get("cache_read_input_tokens") or 0)
    )
    completion = int(usage.get("output_tokens") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


# ------------------------------------------------- OpenAI request -> Anthropic request


def _tool_choice_to_anthropic(choice: Any) -> Body | None:
    if choice is None or choice == "auto":
        return {"type": "auto"}
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "tool", "name": choice["function"]["name"]}
    raise InvalidRequest("unsupported tool_choice", param="tool_choice")


@rejects_malformed
def openai_request_to_anthropic(body: Body, *, default_max_tokens: int = 4096) -> Body:
    """A canonical chat request as an Anthropic Messages API request.

    System and developer messages become ``system``; tool results (role ``tool``) become
    ``tool_result`` blocks of a user turn; consecutive turns of one role are merged,
    because Anthropic wants user and assistant to alternate.
    """
    if int(body.get("n") or 1) != 1:
        raise UnsupportedOperation(
            "Anthropic models return one choice only (n must be 1)", param="n"
        )
    system: list[Body] = []
    turns: list[Body] = []
    for message in body.get("messages") or []:
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_content_to_anthropic(message.get("content")))
            continue
        if role == "tool":
            blocks: list[Body] = [
                {
                    "type": "tool_result",
                    "tool_use_id": message.get("tool_call_id", ""),
                    "content": _content_to_anthropic(message.get("content")),
                }
            ]
            role = "user"
        elif role == "assistant":
            blocks = _content_to_anthropic(message.get("content"))
            for call in message.get("tool_calls") or []:
                fn = call.get("function") or {}
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call.get("id", ""),
                        "name": fn.get("name", ""),
                        "input": tool_arguments(fn.get("arguments")),
                    }
                )
        elif role == "user":
            blocks = _content_to_anthropic(message.get("content"))
        else:
            raise InvalidRequest(f"unsupported message role {role!r}", param="messages")
        append_turn(turns, role, blocks, "content")

    fmt = body.get("response_format") or {}
    if fmt.get("type") in ("json_object", "json_schema"):
        system.append({"type": "text", "text": JSON_ONLY_HINT})

    out: Body = {
        "model": body["model"],
        "messages": turns,
        "max_tokens": body.get("max_completion_tokens")
        or body.get("max_tokens")
        or default_max_tokens,
    }
    if system:
        out["system"] = system
    if body.get("temperature") is not None:
        out["temperature"] = min(float(body["temperature"]), 1.0)
    if body.get("top_p") is not None:
        out["top_p"] = body["top_p"]
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("user"):
        out["metadata"] = {"user_id": body["user"]}
    tools = body.get("tools")
    if tools:
        out["tools"] = [
            {
                "name": t["function"]["name"],
                "description": t["function"].get("description", ""),
                "input_schema": t["function"].get("parameters")
                or {"type": "object", "properties": {}},
            }
            for t in tools
            if t.get("type", "function") == "function"
        ]
        choice = _tool_choice_to_anthropic(body.get("tool_choice"))
        if choice is not None:
            if body.get("parallel_tool_calls") is False and choice["type"] != "none":
                choice["disable_parallel_tool_use"] = True
            out["tool_choice"] = choice
    if body.get("stream"):
        out["stream"] = True
    return out


# ----------------------------------------------- Anthropic response -> OpenAI response


@reads_upstream
def anthropic_response_to_openai(resp: Body) -> Body:
    """An Anthropic ``message`` as an OpenAI ``chat.completion``."""
    texts: list[str] = []
    calls: list[Body] = []
    for block in resp.get("content") or []:
        if block.get("type") == "text":
            texts.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            calls.append(
                {
                    "id": block.get("id", ""),
                    "type": "function",
                    "function": {
                        "name": block.get("name", ""),
                        "arguments": _dumps(block.get("input") or {}),
                    },
                }
            )
    message: Body = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": resp.get("id", ""),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": resp.get("model", ""),
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": STOP_TO_FINISH.get(resp.get("stop_reason") or "end_turn", "stop"),
                "logprobs": None,
            }
        ],
        "usage": _usage_to_openai(resp.get("usage")),
    }


class AnthropicStreamTranslator:
    """Turns Anthropic stream events, one at a time, into OpenAI ``chat.completion.chunk``s.

    Stateful because Anthropic numbers content blocks while OpenAI numbers tool calls:
    the translator remembers which block index is which tool call.
    """

    def __init__(self) -> None:
        self.id = ""
        self.model = ""
        self.created = int(time.time())
        self.usage: Body = {}
        self._tool_index: dict[int, int] = {}

    def _chunk(self, delta: Body, finish_reason: str | None = None) -> Body:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [
                {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
            ],
        }

    @reads_upstream
    def feed(self, event: str | None, data: Body) -> list[Body]:
        kind = data.get("type") or event
        if kind == "message_start":
            message = data.get("message") or {}
            self.id = message.get("id", "")
            self.model = message.get("model", "")
            self.usage = dict(message.get("usage") or {})
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = data.get("content_block") or {}
            if block.get("type") == "tool_use":
                index = len(self._tool_index)
                self._tool_index[int(data.get("index", 0))] = index
                call = {
                    "index": index,
                    "id": block.get("id", ""),
                    "type": "function",
                    "function": {"name": block.get("name", ""), "arguments": ""},
                }
                return [self._chunk({"tool_calls": [call]})]
            if block.get("type") == "text" and block.get("text"):
                return [self._chunk({"content": block["text"]})]
            return []
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            if delta.get("type") == "text_delta":
                return [self._chunk({"content": delta.get("text", "")})]
            if delta.get("type") == "input_json_delta" and delta.get("partial_json"):
                index = self._tool_index.get(int(data.get("index", 0)), 0)
                call = {"index": index, "function": {"arguments": delta.get("partial_json", "")}}
                return [self._chunk({"tool_calls": [call]})]
            return []
        if kind == "message_delta":
            self.usage.update({k: v for k, v in (data.get("usage") or {}).items() if v is not None})
            reason = (data.get("delta") or {}).get("stop_reason")
            if reason:
                return [self._chunk({}, STOP_TO_FINISH.get(reason, "stop"))]
            return []
        if kind == "message_stop":
            final = self._chunk({})
            final["choices"] = []
            final["usage"] = _usage_to_openai(self.usage)
            return [final]
        if kind == "error":
            err = data.get("error") or {}
            err_type = err.get("type", "api_error")
            raise UpstreamError(
                f"anthropic upstream failed mid-stream: {err_type}: {str(err.get('message', ''))[:300]}",
                retryable=err_type in RETRYABLE_STREAM_ERRORS,
            )
        return []  # ping, content_block_stop, thinking deltas and future event types


# --------------------------------------------- Anthropic request -> OpenAI request (inbound)


def _tool_result_text(content: Any) -> Any:
    if isinstance(content, list):
        parts = [p for p in (_block_to_openai_part(b) for b in content) if p is not None]
        if all(p["type"] == "text" for p in parts):
            return "".join(p["text"] for p in parts)
        return parts
    if content is None:
        return ""
    if not isinstance(content, str):
        raise InvalidRequest(
            "tool_result content: must be a string or a list of blocks", param="messages"
        )
    return content


def _block_to_openai_part(block: Body) -> Body | None:
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": block.get("text", "")}
    if kind == "image":
        return _image_to_openai(block)
    if kind in ("thinking", "redacted_thinking"):
        return None
    raise UnsupportedOperation(f"content block type {kind!r} is not supported", param="messages")


def _simplify(parts: list[Body]) -> Any:
    """A list of only text parts reads better (and stays compatible) as one string."""
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


@rejects_malformed
def anthropic_request_to_openai(body: Body) -> Body:
    """What an Anthropic SDK sends to ``/v1/messages``, as a canonical chat request."""
    if not isinstance(body.get("messages"), list):
        raise InvalidRequest("messages: field required (a list)", param="messages")
    if not isinstance(body.get("model"), str):
        raise InvalidRequest("model: field required (a string)", param="model")
    messages: list[Body] = []
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        raise InvalidRequest("system: must be a string or a list of text blocks", param="system")
    tools = body.get("tools")
    if tools is not None and not (
        isinstance(tools, list)
        and all(isinstance(t, dict) and isinstance(t.get("name"), str) for t in tools)
    ):
        raise InvalidRequest("tools: must be a list of tools, each with a name", param="tools")
    if system:
        messages.append(
            {"role": "system", "content": _text_of(system) if isinstance(system, list) else system}
        )
    for message in body["messages"]:
        if not isinstance(message, dict):
            raise InvalidRequest("messages: each message must be an object", param="messages")
        role = message.get("role")
        if role not in ("user", "assistant"):
            raise InvalidRequest(f"messages: unsupported role {role!r}", param="messages")
        content = message.get("content")
        if isinstance(content, str):
            messages.append({"role": role, "content": content})
            continue
        if not isinstance(content, list):
            raise InvalidRequest("messages: content must be a string or a list", param="messages")
        parts: list[Body] = []
        calls: list[Body] = []
        results: list[Body] = []
        for block in content:
            if not isinstance(block, dict):
                raise InvalidRequest("messages: content blocks must be objects", param="messages")
            kind = block.get("type")
            if kind == "tool_use":
                calls.append(
                    {
                        "id": block.get("id", ""),
                        "type": "function",
                        "function": {
                            "name": block.get("name", ""),
                            "arguments": _dumps(block.get("input") or {}),
                        },
                    }
                )
            elif kind == "tool_result":
                results.append(
                    {
                        "role": "tool",
                        "tool_call_id": block.get("tool_use_id", ""),
                        "content": _tool_result_text(block.get("content")),
                    }
                )
            else:
                part = _block_to_openai_part(block)
                if part is not None:
                    parts.append(part)
        # OpenAI wants tool results right after the assistant turn that asked for them.
        messages.extend(results)
        if role == "assistant":
            out: Body = {"role": "assistant", "content": _simplify(parts) if parts else None}
            if calls:
                out["tool_calls"] = calls
            messages.append(out)
        elif parts or not results:
            messages.append({"role": "user", "content": _simplify(parts)})

    out_body: Body = {"model": body["model"], "messages": messages}
    if body.get("max_tokens") is not None:
        out_body["max_tokens"] = body["max_tokens"]
    for key in ("temperature", "top_p", "stream"):
        if body.get(key) is not None:
            out_body[key] = body[key]
    if body.get("stop_sequences"):
        out_body["stop"] = list(body["stop_sequences"])
    user = (body.get("metadata") or {}).get("user_id")
    if user:
        out_body["user"] = user
    if body.get("tools"):
        out_body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.get("name", ""),
                    "description": t.get("description", ""),
                    "parameters": t.get("input_schema") or {"type": "object", "properties": {}},
                },
            }
            for t in body["tools"]
        ]
    choice = body.get("tool_choice")
    if choice is not None and not isinstance(choice, dict):
        raise InvalidRequest("tool_choice: must be an object", param="tool_choice")
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind == "auto":
            out_body["tool_choice"] = "auto"
        elif kind == "any":
            out_body["tool_choice"] = "required"
        elif kind == "none":
            out_body["tool_choice"] = "none"
        elif kind == "tool":
            out_body["tool_choice"] = {
                "type": "function",
                "function": {"name": choice.get("name", "")},
            }
        if choice.get("disable_parallel_tool_use"):
            out_body["parallel_tool_calls"] = False
    if body.get("stream"):
        out_body["stream_options"] = {"include_usage": True}
    return out_body


# ------------------------------------------ OpenAI response -> Anthropic response (inbound)


def _message_id(openai_id: str | None) -> str:
    return f"msg_{(openai_id or uuid.uuid4().hex).removeprefix('chatcmpl-')}"


def openai_response_to_anthropic(resp: Body, model: str) -> Body:
    """A canonical ``chat.completion`` as the ``message`` an Anthropic SDK expects."""
    choice = (resp.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[Body] = []
    text = _text_of(message.get("content"))
    if text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or []:
        fn = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id", ""),
                "name": fn.get("name", ""),
                "input": tool_arguments(fn.get("arguments")),
            }
        )
    usage = resp.get("usage") or {}
    return {
        "id": _message_id(resp.get("id")),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": FINISH_TO_STOP.get(choice.get("finish_reason") or "stop", "end_turn"),
        "stop_sequence": None,
        "usage": {
            "input_tokens": int(usage.get("prompt_tokens") or 0),
            "output_tokens": int(usage.get("completion_tokens") or 0),
        },
    }


async def openai_stream_to_anthropic_events(
    chunks: AsyncIterable[Body], model: str
) -> AsyncIterator[tuple[str, Body]]:
    """Canonical ``chat.completion.chunk``s as Anthropic stream events ``(event name, data)``.

    Emits ``message_start``, then per content block ``content_block_start`` /
    ``content_block_delta`` (``text_delta`` or ``input_json_delta``) / ``content_block_stop``,
    then ``message_delta`` (stop reason, usage) and ``message_stop``. Only choice 0 is used.
    """
    started = False
    block_index = -1
    open_kind: str | None = None  # "text" or "tool:<openai tool index>"
    finish: str | None = None
    usage: Body = {}

    def start_message(chunk_id: str | None) -> tuple[str, Body]:
        return (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": _message_id(chunk_id),
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 0, "output_tokens": 0},
                },
            },
        )

    def close_block() -> Iterable[tuple[str, Body]]:
        if open_kind is not None:
            yield "content_block_stop", {"type": "content_block_stop", "index": block_index}

    async for chunk in chunks:
        if not started:
            started = True
            yield start_message(chunk.get("id"))
        if chunk.get("usage"):
            usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if text:
                if open_kind != "text":
                    for ev in close_block():
                        yield ev
                    block_index += 1
                    open_kind = "text"
                    yield (
                        "content_block_start",
                        {
                            "type": "content_block_start",
                            "index": block_index,
                            "content_block": {"type": "text", "text": ""},
                        },
                    )
                yield (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": block_index,
                        "delta": {"type": "text_delta", "text": text},
                    },
                )
            for call in delta.get("tool_calls") or []:
                kind = f"tool:{call.get('index', 0)}"
                fn = call.get("function") or {}
                if kind != open_kind:
                    for ev in close_block():
                        yield ev
                    block_index += 1
                    open_kind = kind
                    yield (
                        "content_block_start",
                        {
                            "type": "content_block_start",
                            "index": block_index,
                            "content_block": {
                                "type": "tool_use",
                                "id": call.get("id", ""),
                                "name": fn.get("name", ""),
                                "input": {},
                            },
                        },
                    )
                if fn.get("arguments"):
                    yield (
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": block_index,
                            "delta": {"type": "input_json_delta", "partial_json": fn["arguments"]},
                        },
                    )
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
    if not started:
        yield start_message(None)
    for ev in close_block():
        yield ev
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {
                "stop_reason": FINISH_TO_STOP.get(finish or "stop", "end_turn"),
                "stop_sequence": None,
            },
            "usage": {
                "input_tokens": int(usage.get("prompt_tokens") or 0),
                "output_tokens": int(usage.get("completion_tokens") or 0),
            },
        },
    )
    yield "message_stop", {"type": "message_stop"}
