"""Translation between OpenAI's Responses API and the canonical chat shape.

Both directions, as for Anthropic (:mod:`.anthropic_format`):

* inbound, for the appliance's own ``/v1/responses`` route: what an SDK sends becomes a
  canonical chat request (``responses_request_to_chat``: instructions, input items,
  function tools and ``function_call_output`` items), the canonical answer becomes a
  ``response`` object (``chat_to_response``) and a canonical chunk stream becomes the
  Responses event sequence with its ``sequence_number``s (:class:`ResponseEventWriter`);
* outbound, for providers that speak Responses natively: a canonical chat request as a
  Responses request (``chat_request_to_responses``, always ``store: false``: the
  appliance keeps conversation state itself), a ``response`` as a ``chat.completion``
  (``responses_response_to_chat``) and Responses stream events as chat chunks
  (:class:`ResponsesStreamTranslator`).

Pure functions over dicts: no I/O here.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from appliance.errors import InvalidRequest, UnsupportedOperation, UpstreamError
from appliance.providers._http import reads_upstream, rejects_malformed

Body = dict[str, Any]

#: Request fields echoed in the response object, with the defaults OpenAI answers.
ECHOED: dict[str, Any] = {
    "instructions": None,
    "max_output_tokens": None,
    "metadata": {},
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "store": True,
    "temperature": 1.0,
    "tool_choice": "auto",
    "tools": [],
    "top_p": 1.0,
    "truncation": "disabled",
    "user": None,
}


def new_item_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


# ------------------------------------------------------------ inbound: request -> chat


def _part_to_chat(part: Any) -> Body | None:
    if isinstance(part, str):
        return {"type": "text", "text": part}
    if not isinstance(part, dict):
        raise InvalidRequest("input: content parts must be objects", param="input")
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        text = part.get("text")
        if not isinstance(text, str):
            raise InvalidRequest(f"input: a {kind} part needs a text string", param="input")
        return {"type": "text", "text": text}
    if kind == "refusal":
        return {"type": "text", "text": str(part.get("refusal") or "")}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str):
            raise UnsupportedOperation(
                "input_image: only image_url is supported (no file_id)", param="input"
            )
        image: Body = {"url": url}
        if part.get("detail"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    raise UnsupportedOperation(f"input: content part type {kind!r} is not supported", param="input")


def _content_to_chat(content: Any) -> Any:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequest("input: message content must be a string or a list", param="input")
    parts = [p for p in (_part_to_chat(c) for c in content) if p is not None]
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def _output_text(output: Any) -> Any:
    """A function_call_output's ``output``: a string, or a list of content parts."""
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return _content_to_chat(output)
    raise InvalidRequest("function_call_output: output must be a string or a list", param="input")


def input_items(value: Any) -> list[Body]:
    """The ``input`` of a request as a list of items (a string is one user message)."""
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    if not isinstance(value, list):
        raise InvalidRequest("input: a string or a list of input items is required", param="input")
    items: list[Body] = []
    for item in value:
        if not isinstance(item, dict):
            raise InvalidRequest("input: each input item must be an object", param="input")
        items.append(item)
    return items


def items_to_messages(items: Iterable[Body]) -> list[Body]:
    """Input or output items as canonical chat messages (tool calls joined to their turn)."""
    messages: list[Body] = []
    for item in items:
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise InvalidRequest(f"input: unsupported message role {role!r}", param="input")
            messages.append({"role": role, "content": _content_to_chat(item.get("content"))})
        elif kind == "function_call":
            name, args = item.get("name"), item.get("arguments", "")
            call_id = item.get("call_id")
            if not isinstance(name, str) or not isinstance(call_id, str) or not isinstance(args, str):
                raise InvalidRequest(
                    "function_call: call_id, name and arguments (strings) are required",
                    param="input",
                )
            call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and "tool_calls" in last:
                last["tool_calls"].append(call)
            elif last is not None and last["role"] == "assistant" and last.get("content"):
                last["tool_calls"] = [call]
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            call_id = item.get("call_id")
            if not isinstance(call_id, str):
                raise InvalidRequest("function_call_output: call_id is required", param="input")
            messages.append(
                {"role": "tool", "tool_call_id": call_id, "content": _output_text(item.get("output"))}
            )
        elif kind == "reasoning":
            continue  # a model's reasoning summary: not sent on through chat
        else:
            raise UnsupportedOperation(f"input item type {kind!r} is not supported", param="input")
    return messages


def _tools_to_chat(tools: Any) -> list[Body]:
    if not isinstance(tools, list):
        raise InvalidRequest("tools: must be a list", param="tools")
    out: list[Body] = []
    for tool in tools:
        if not isinstance(tool, dict) or tool.get("type") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else None
            raise UnsupportedOperation(
                f"tools: only function tools are supported (got {kind!r})", param="tools"
            )
        if not isinstance(tool.get("name"), str):
            raise InvalidRequest("tools: a function tool needs a name", param="tools")
        fn: Body = {"name": tool["name"]}
        if isinstance(tool.get("description"), str):
            fn["description"] = tool["description"]
        fn["parameters"] = tool.get("parameters") or {"type": "object", "properties": {}}
        if tool.get("strict") is not None:
            fn["strict"] = bool(tool["strict"])
        out.append({"type": "function", "function": fn})
    return out


def _tool_choice_to_chat(choice: Any) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise InvalidRequest("tool_choice: auto, none, required or a function", param="tool_choice")


def _format_to_chat(text: Any) -> Body | None:
    fmt = text.get("format") if isinstance(text, dict) else None
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return None
    if fmt["type"] == "json_object":
        return {"type": "json_object"}
    if fmt["type"] == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        return {"type": "json_schema", "json_schema": schema}
    raise InvalidRequest("text.format: text, json_object or json_schema", param="text")


def _number(body: Body, name: str, lo: float, hi: float) -> None:
    v = body.get(name)
    if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi):
        raise InvalidRequest(f"{name}: a number from {lo} to {hi} is required", param=name)


@rejects_malformed
def responses_request_to_chat(body: Body, history: list[Body] | None = None) -> Body:
    """A Responses API request as a canonical chat request.

    ``history`` holds the items of the conversation so far (``previous_response_id``):
    earlier inputs and outputs, before this request's own input. ``instructions`` of
    earlier responses are not carried over, as OpenAI does.
    """
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model: field required (a string)", param="model")
    if "input" not in body:
        raise InvalidRequest("input: field required", param="input")
    items = input_items(body["input"])
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise InvalidRequest("instructions: must be a string", param="instructions")
    messages: list[Body] = []
    if instructions:
        messages.append({"role": "system", "content": instructions})
    messages.extend(items_to_messages([*(history or ()), *items]))
    if not messages:
        raise InvalidRequest("input: at least one input item is required", param="input")
    out: Body = {"model": model, "messages": messages}
    max_out = body.get("max_output_tokens")
    if max_out is not None:
        if isinstance(max_out, bool) or not isinstance(max_out, int) or max_out < 1:
            raise InvalidRequest("max_output_tokens: a positive integer", param="max_output_tokens")
        out["max_tokens"] = max_out
    _number(body, "temperature", 0, 2)
    _number(body, "top_p", 0, 1)
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            out[name] = body[name]
    if body.get("tools"):
        out["tools"] = _tools_to_chat(body["tools"])
        if body.get("tool_choice") is not None:
            out["tool_choice"] = _tool_choice_to_chat(body["tool_choice"])
        if body.get("parallel_tool_calls") is not None:
            out["parallel_tool_calls"] = bool(body["parallel_tool_calls"])
    fmt = _format_to_chat(body.get("text"))
    if fmt is not None:
        out["response_format"] = fmt
    user = body.get("safety_identifier") or body.get("user")
    if isinstance(user, str):
        out["user"] = user
    if body.get("stream"):
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


# ---------------------------------------------------------- inbound: chat -> response


def usage_to_responses(usage: Any) -> Body:
    usage = usage if isinstance(usage, dict) else {}
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt + completion,
    }


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def message_item(text: str, item_id: str | None = None, status: str = "completed") -> Body:
    return {
        "id": item_id or new_item_id("msg"),
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }


def function_call_item(
    call_id: str, name: str, arguments: str, item_id: str | None = None, status: str = "completed"
) -> Body:
    return {
        "id": item_id or new_item_id("fc"),
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def _status_of(finish: str | None) -> tuple[str, Body | None]:
    if finish == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


@dataclass(frozen=True, slots=True)
class ResponseFrame:
    """What a response object echoes of its request (ids, parameters, the model name)."""

    id: str
    model: str
    created_at: int
    request: Body = field(default_factory=dict)

    def object(self, status: str, output: list[Body], usage: Body | None,
               incomplete: Body | None = None) -> Body:
        body: Body = {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": False,
            "error": None,
            "incomplete_details": incomplete,
            "model": self.model,
            "output": output,
            "reasoning": {"effort": None, "summary": None},
            "text": self.request.get("text") or {"format": {"type": "text"}},
            "usage": usage,
        }
        for name, default in ECHOED.items():
            value = self.request.get(name)
            body[name] = default if value is None else value
        if status == "completed":
            body["completed_at"] = int(time.time())
        return body


def chat_to_response(chat: Body, frame: ResponseFrame) -> Body:
    """A canonical ``chat.completion`` as the ``response`` object (choice 0)."""
    choice = (chat.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    output: list[Body] = []
    text = _text_of(message.get("content"))
    if text or not message.get("tool_calls"):
        output.append(message_item(text))
    for call in message.get("tool_calls") or ():
        fn = call.get("function") or {}
        output.append(
            function_call_item(str(call.get("id") or new_item_id("call")), str(fn.get("name", "")),
                               str(fn.get("arguments") or ""))
        )
    status, incomplete = _status_of(choice.get("finish_reason"))
    return frame.object(status, output, usage_to_responses(chat.get("usage")), incomplete)


class ResponseEventWriter:
    """Turns canonical ``chat.completion.chunk``s into the Responses event sequence.

    ``response.created``, ``response.in_progress``; per output item
    ``response.output_item.added``, for text ``response.content_part.added`` /
    ``response.output_text.delta``… / ``response.output_text.done`` /
    ``response.content_part.done``, for a function call
    ``response.function_call_arguments.delta``… / ``…done``; then
    ``response.output_item.done``; last ``response.completed`` (or
    ``response.incomplete``). Every event carries the next ``sequence_number``.
    """

    def __init__(self, frame: ResponseFrame) -> None:
        self.frame = frame
        self._seq = 0
        self._output: list[Body] = []
        self._open: Body | None = None  # the item being streamed
        self._open_key: str | None = None  # "text" or "tool:<index>"
        self._text: list[str] = []
        self._finish: str | None = None
        self._usage: Body | None = None

    def _event(self, kind: str, **data: Any) -> tuple[str, Body]:
        event = {"type": kind, "sequence_number": self._seq, **data}
        self._seq += 1
        return kind, event

    def start(self) -> list[tuple[str, Body]]:
        shell = self.frame.object("in_progress", [], None)
        return [
            self._event("response.created", response=shell),
            self._event("response.in_progress", response=shell),
        ]

    def _close(self) -> list[tuple[str, Body]]:
        item, self._open, key = self._open, None, self._open_key
        self._open_key = None
        if item is None:
            return []
        index = len(self._output)
        events: list[tuple[str, Body]] = []
        if key == "text":
            text = "".join(self._text)
            part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
            events.append(self._event("response.output_text.done", item_id=item["id"],
                                      output_index=index, content_index=0, text=text, logprobs=[]))
            events.append(self._event("response.content_part.done", item_id=item["id"],
                                      output_index=index, content_index=0, part=part))
            done = message_item(text, item["id"])
        else:
            events.append(self._event("response.function_call_arguments.done", item_id=item["id"],
                                      output_index=index, name=item["name"],
                                      arguments=item["arguments"]))
            done = function_call_item(item["call_id"], item["name"], item["arguments"], item["id"])
        self._output.append(done)
        events.append(self._event("response.output_item.done", output_index=index, item=done))
        return events

    def _open_text(self) -> list[tuple[str, Body]]:
        events = self._close()
        item = message_item("", status="in_progress")
        item["content"] = []
        self._open, self._open_key, self._text = item, "text", []
        index = len(self._output)
        events.append(self._event("response.output_item.added", output_index=index, item=item))
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        events.append(self._event("response.content_part.added", item_id=item["id"],
                                  output_index=index, content_index=0, part=part))
        return events

    def feed(self, chunk: Body) -> list[tuple[str, Body]]:
        events: list[tuple[str, Body]] = []
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if isinstance(text, str) and text:
                if self._open_key != "text":
                    events.extend(self._open_text())
                assert self._open is not None
                self._text.append(text)
                events.append(self._event("response.output_text.delta", item_id=self._open["id"],
                                          output_index=len(self._output), content_index=0,
                                          delta=text, logprobs=[]))
            for call in delta.get("tool_calls") or ():
                key = f"tool:{call.get('index', 0)}"
                fn = call.get("function") or {}
                if key != self._open_key:
                    events.extend(self._close())
                    item = function_call_item(str(call.get("id") or new_item_id("call")),
                                              str(fn.get("name") or ""), "", status="in_progress")
                    self._open, self._open_key = item, key
                    events.append(self._event("response.output_item.added",
                                              output_index=len(self._output), item=dict(item)))
                args = fn.get("arguments")
                if isinstance(args, str) and args and self._open is not None:
                    self._open["arguments"] += args
                    events.append(self._event("response.function_call_arguments.delta",
                                              item_id=self._open["id"],
                                              output_index=len(self._output), delta=args))
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        return events

    def response(self) -> Body:
        """The finished response object (after :meth:`finish_events`' items are closed)."""
        status, incomplete = _status_of(self._finish)
        return self.frame.object(status, list(self._output), usage_to_responses(self._usage),
                                 incomplete)

    def close_items(self) -> list[tuple[str, Body]]:
        """Close the open item; an answer with no item at all gets an empty message."""
        events = self._close()
        if not self._output:
            events.extend(self._open_text())
            events.extend(self._close())
        return events

    def final_event(self, response: Body) -> tuple[str, Body]:
        kind = "response.completed" if response["status"] == "completed" else "response.incomplete"
        return self._event(kind, response=response)


# ------------------------------------------------------- outbound: chat -> Responses


def _chat_part_to_input(part: Any, role: str) -> Body:
    if isinstance(part, dict) and part.get("type") == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        return {"type": "input_image", "image_url": url, "detail": "auto"}
    text = part.get("text", "") if isinstance(part, dict) else str(part)
    return {"type": "output_text" if role == "assistant" else "input_text", "text": text}


def _chat_content_to_input(content: Any, role: str) -> Any:
    if isinstance(content, list):
        return [_chat_part_to_input(p, role) for p in content]
    return content if isinstance(content, str) else ""


@rejects_malformed
def chat_request_to_responses(body: Body) -> Body:
    """A canonical chat request as a native Responses request (nothing stored upstream)."""
    items: list[Body] = []
    for message in body.get("messages") or ():
        role = message.get("role")
        if role == "tool":
            items.append({"type": "function_call_output", "call_id": message.get("tool_call_id", ""),
                          "output": _text_of(message.get("content"))})
            continue
        content = message.get("content")
        if content not in (None, "", []):
            items.append({"type": "message", "role": role,
                          "content": _chat_content_to_input(content, str(role))})
        for call in message.get("tool_calls") or ():
            fn = call.get("function") or {}
            items.append({"type": "function_call", "call_id": call.get("id", ""),
                          "name": fn.get("name", ""), "arguments": fn.get("arguments") or ""})
    out: Body = {"model": body["model"], "input": items, "store": False}
    cap = body.get("max_completion_tokens") or body.get("max_tokens")
    if cap:
        out["max_output_tokens"] = cap
    for name in ("temperature", "top_p", "parallel_tool_calls", "user"):
        if body.get(name) is not None:
            out[name] = body[name]
    if body.get("tools"):
        tools = []
        for t in body["tools"]:
            fn = t.get("function") or {}
            tool: Body = {"type": "function", "name": fn.get("name", ""),
                          "parameters": fn.get("parameters") or {"type": "object", "properties": {}}}
            if fn.get("description"):
                tool["description"] = fn["description"]
            tool["strict"] = bool(fn.get("strict", False))
            tools.append(tool)
        out["tools"] = tools
        choice = body.get("tool_choice")
        if isinstance(choice, dict):
            out["tool_choice"] = {"type": "function", "name": (choice.get("function") or {}).get("name", "")}
        elif choice is not None:
            out["tool_choice"] = choice
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_object":
        out["text"] = {"format": {"type": "json_object"}}
    elif isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        out["text"] = {"format": {"type": "json_schema", **(fmt.get("json_schema") or {})}}
    if body.get("stream"):
        out["stream"] = True
    return out


def _usage_to_chat(usage: Any) -> Body:
    usage = usage if isinstance(usage, dict) else {}
    prompt = int(usage.get("input_tokens") or 0)
    completion = int(usage.get("output_tokens") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def _finish_of(resp: Body, has_calls: bool) -> str:
    if has_calls:
        return "tool_calls"
    reason = (resp.get("incomplete_details") or {}).get("reason")
    if resp.get("status") == "incomplete":
        return "content_filter" if reason == "content_filter" else "length"
    return "stop"


@reads_upstream
def responses_response_to_chat(resp: Body) -> Body:
    """A native ``response`` object as a canonical ``chat.completion``."""
    if resp.get("status") == "failed":
        err = resp.get("error") or {}
        raise UpstreamError(f"the provider's response failed: {err.get('code', 'error')}")
    texts: list[str] = []
    calls: list[Body] = []
    for item in resp.get("output") or ():
        if item.get("type") == "message":
            for part in item.get("content") or ():
                if part.get("type") == "output_text":
                    texts.append(part.get("text", ""))
                elif part.get("type") == "refusal":
                    texts.append(part.get("refusal", ""))
        elif item.get("type") == "function_call":
            calls.append({"id": item.get("call_id", ""), "type": "function",
                          "function": {"name": item.get("name", ""),
                                       "arguments": item.get("arguments", "")}})
    message: Body = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": str(resp.get("id", "")),
        "object": "chat.completion",
        "created": int(resp.get("created_at") or time.time()),
        "model": resp.get("model", ""),
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": _finish_of(resp, bool(calls))}],
        "usage": _usage_to_chat(resp.get("usage")),
    }


class ResponsesStreamTranslator:
    """Native Responses stream events, one at a time, as canonical chat chunks."""

    def __init__(self) -> None:
        self.id = ""
        self.model = ""
        self.created = int(time.time())
        self._calls: dict[str, int] = {}  # item id -> tool call index

    def _chunk(self, delta: Body, finish: str | None = None) -> Body:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}

    @reads_upstream
    def feed(self, data: Body) -> list[Body]:
        kind = data.get("type")
        if kind == "response.created":
            resp = data.get("response") or {}
            self.id, self.model = str(resp.get("id", "")), str(resp.get("model", ""))
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "response.output_text.delta":
            return [self._chunk({"content": data.get("delta", "")})]
        if kind == "response.output_item.added":
            item = data.get("item") or {}
            if item.get("type") != "function_call":
                return []
            index = self._calls[str(item.get("id"))] = len(self._calls)
            call = {"index": index, "id": item.get("call_id", ""), "type": "function",
                    "function": {"name": item.get("name", ""), "arguments": ""}}
            return [self._chunk({"tool_calls": [call]})]
        if kind == "response.function_call_arguments.delta":
            index = self._calls.get(str(data.get("item_id")), 0)
            return [self._chunk({"tool_calls": [{"index": index,
                                                 "function": {"arguments": data.get("delta", "")}}]})]
        if kind in ("response.completed", "response.incomplete"):
            resp = data.get("response") or {}
            final = self._chunk({}, _finish_of(resp, bool(self._calls)))
            usage = {**final, "choices": [], "usage": _usage_to_chat(resp.get("usage"))}
            return [final, usage]
        if kind in ("response.failed", "error"):
            err = (data.get("response") or {}).get("error") or data
            code = err.get("code") if isinstance(err, dict) else None
            raise UpstreamError(f"the provider's response failed mid-stream: {code or 'error'}",
                                retryable=kind == "error")
        return []


def history_of(stored: Body) -> list[Body]:
    """The conversation items a stored response leaves for the next turn: its history,
    its own input, its output (function calls and messages, as input items)."""
    items: list[Body] = list(stored.get("history") or ())
    items.extend(stored.get("input") or ())
    for item in (stored.get("response") or {}).get("output") or ():
        if item.get("type") == "message":
            items.append({"type": "message", "role": "assistant", "content": item.get("content")})
        elif item.get("type") == "function_call":
            items.append({k: item[k] for k in ("type", "call_id", "name", "arguments") if k in item})
    return items


def stored_input_items(items: list[Body]) -> list[Body]:
    """This request's input items as ``input_items`` lists them: each with an id."""
    out = []
    for item in items:
        kind = item.get("type", "message")
        entry = {**item, "type": kind}
        if kind == "message":
            content = item.get("content")
            if isinstance(content, str):
                part = "output_text" if item.get("role") == "assistant" else "input_text"
                entry["content"] = [{"type": part, "text": content}]
            entry.setdefault("status", "completed")
        entry.setdefault("id", new_item_id({"message": "msg", "function_call": "fc",
                                             "function_call_output": "fco"}.get(kind, "item")))
        out.append(entry)
    return out


def dumps_item(item: Body) -> str:
    return _dumps(item)
