"""Request parsing and validation in the OpenAI schema, answered with precise 400s.

Hand-written checks rather than a schema library: they run on every request of a proxy
whose added latency is measured, and each names the offending ``param`` the way the
OpenAI API does. Unknown fields pass through: providers add parameters faster than any
proxy can list them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from appliance.errors import InvalidRequest

Body = dict[str, Any]

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_PART_TYPES = frozenset({"text", "image_url", "input_audio", "file", "refusal"})


def parse_json(raw: bytes) -> Body:
    if not raw:
        raise InvalidRequest("The request body is empty; expected a JSON object.")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("The request body is not valid UTF-8.") from None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise InvalidRequest(f"The request body is not valid JSON: {e.msg}.") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return body


def _type_name(value: object) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def _fail(param: str, expected: str, value: object) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid type for '{param}': expected {expected}, but got {_type_name(value)}.",
        param=param,
        code="invalid_type",
    )


def _number(lo: float, hi: float) -> Callable[[str, object], None]:
    def check(param: str, v: object) -> None:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise _fail(param, "a number", v)
        if not lo <= v <= hi:
            raise InvalidRequest(
                f"Invalid value for '{param}': {v} is outside [{lo:g}, {hi:g}].",
                param=param,
                code="invalid_value",
            )

    return check


def _integer(lo: int, hi: int | None = None) -> Callable[[str, object], None]:
    def check(param: str, v: object) -> None:
        if isinstance(v, bool) or not isinstance(v, int):
            raise _fail(param, "an integer", v)
        if v < lo or (hi is not None and v > hi):
            bound = f"at least {lo}" if hi is None else f"between {lo} and {hi}"
            raise InvalidRequest(
                f"Invalid value for '{param}': must be {bound}, got {v}.",
                param=param,
                code="invalid_value",
            )

    return check


def _boolean(param: str, v: object) -> None:
    if not isinstance(v, bool):
        raise _fail(param, "a boolean", v)


def _string(param: str, v: object) -> None:
    if not isinstance(v, str):
        raise _fail(param, "a string", v)


def _object(param: str, v: object) -> None:
    if not isinstance(v, dict):
        raise _fail(param, "an object", v)


def _stop(param: str, v: object) -> None:
    if isinstance(v, str):
        return
    if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
        raise _fail(param, "a string or an array of strings", v)
    if len(v) > 4:
        raise InvalidRequest("'stop' accepts at most 4 sequences.", param=param)


def _tools(param: str, v: object) -> None:
    if not isinstance(v, list):
        raise _fail(param, "an array", v)
    for i, tool in enumerate(v):
        p = f"{param}[{i}]"
        if not isinstance(tool, dict):
            raise _fail(p, "an object", tool)
        if tool.get("type") != "function":
            raise InvalidRequest(f"'{p}.type' must be 'function'.", param=f"{p}.type")
        fn = tool.get("function")
        if not isinstance(fn, dict):
            raise _fail(f"{p}.function", "an object", fn)
        if not isinstance(fn.get("name"), str) or not fn["name"]:
            raise InvalidRequest(f"'{p}.function.name' is required.", param=f"{p}.function.name")
        if "description" in fn and not isinstance(fn["description"], str):
            raise _fail(f"{p}.function.description", "a string", fn["description"])
        if "parameters" in fn and not isinstance(fn["parameters"], dict):
            raise _fail(f"{p}.function.parameters", "an object", fn["parameters"])


def _tool_choice(param: str, v: object) -> None:
    if isinstance(v, str):
        if v not in ("none", "auto", "required"):
            raise InvalidRequest(
                f"Invalid value for '{param}': expected 'none', 'auto', 'required' or an object.",
                param=param,
            )
    elif not isinstance(v, dict):
        raise _fail(param, "a string or an object", v)


def _response_format(param: str, v: object) -> None:
    if not isinstance(v, dict):
        raise _fail(param, "an object", v)
    if v.get("type") not in ("text", "json_object", "json_schema"):
        raise InvalidRequest(
            f"Invalid value for '{param}.type': expected 'text', 'json_object' or 'json_schema'.",
            param=f"{param}.type",
        )


def _stream_options(param: str, v: object) -> None:
    _object(param, v)
    assert isinstance(v, dict)
    if "include_usage" in v:
        _boolean(f"{param}.include_usage", v["include_usage"])


_COMMON: dict[str, Callable[[str, object], None]] = {
    "temperature": _number(0, 2),
    "top_p": _number(0, 1),
    "presence_penalty": _number(-2, 2),
    "frequency_penalty": _number(-2, 2),
    "n": _integer(1, 128),
    "max_tokens": _integer(1),
    "max_completion_tokens": _integer(1),
    "seed": _integer(-(2**63), 2**63 - 1),
    "stream": _boolean,
    "stream_options": _stream_options,
    "stop": _stop,
    "user": _string,
    "logit_bias": _object,
    "metadata": _object,
}
_CHAT: dict[str, Callable[[str, object], None]] = {
    **_COMMON,
    "tools": _tools,
    "tool_choice": _tool_choice,
    "response_format": _response_format,
    "parallel_tool_calls": _boolean,
    "logprobs": _boolean,
    "top_logprobs": _integer(0, 20),
}
_COMPLETIONS: dict[str, Callable[[str, object], None]] = {
    **_COMMON,
    "echo": _boolean,
    "suffix": _string,
    "best_of": _integer(1, 20),
    "logprobs": _integer(0, 5),
}


def _check_fields(body: Body, checks: dict[str, Callable[[str, object], None]]) -> None:
    for key, check in checks.items():
        value = body.get(key)
        if value is not None:
            check(key, value)


def _model(body: Body) -> str:
    model = body.get("model")
    if model is None:
        raise InvalidRequest("Missing required parameter: 'model'.", param="model")
    if not isinstance(model, str) or not model:
        raise _fail("model", "a non-empty string", model)
    return model


def _content(param: str, content: object, role: str) -> None:
    if content is None:
        if role in ("assistant", "function"):
            return
        raise InvalidRequest(f"Missing required parameter: '{param}'.", param=param)
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _fail(param, "a string or an array of content parts", content)
    for j, part in enumerate(content):
        p = f"{param}[{j}]"
        if not isinstance(part, dict):
            raise _fail(p, "an object", part)
        kind = part.get("type")
        if kind not in _PART_TYPES:
            raise InvalidRequest(f"Invalid content part type in '{p}.type': {kind!r}.", param=p)
        if kind == "text" and not isinstance(part.get("text"), str):
            raise _fail(f"{p}.text", "a string", part.get("text"))
        if kind == "image_url":
            image = part.get("image_url")
            if not isinstance(image, dict) or not isinstance(image.get("url"), str):
                raise InvalidRequest(f"'{p}.image_url.url' must be a string.", param=p)


def validate_chat(body: Body) -> str:
    """Check a chat completion request; return its model."""
    model = _model(body)
    messages = body.get("messages")
    if messages is None:
        raise InvalidRequest("Missing required parameter: 'messages'.", param="messages")
    if not isinstance(messages, list):
        raise _fail("messages", "an array", messages)
    if not messages:
        raise InvalidRequest("'messages' must contain at least one message.", param="messages")
    for i, msg in enumerate(messages):
        p = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise _fail(p, "an object", msg)
        role = msg.get("role")
        if role not in _ROLES:
            raise InvalidRequest(
                f"Invalid value for '{p}.role': {role!r}; expected one of "
                + ", ".join(sorted(_ROLES))
                + ".",
                param=f"{p}.role",
            )
        _content(f"{p}.content", msg.get("content"), role)
        if role == "assistant" and msg.get("tool_calls") is not None:
            calls = msg["tool_calls"]
            if not isinstance(calls, list):
                raise _fail(f"{p}.tool_calls", "an array", calls)
            for k, call in enumerate(calls):
                fn = call.get("function") if isinstance(call, dict) else None
                if not isinstance(fn, dict) or not isinstance(fn.get("arguments", ""), str):
                    raise InvalidRequest(
                        f"'{p}.tool_calls[{k}].function.arguments' must be a string.",
                        param=f"{p}.tool_calls[{k}]",
                    )
        if role == "tool" and not isinstance(msg.get("tool_call_id"), str):
            raise InvalidRequest(
                f"Missing required parameter: '{p}.tool_call_id'.", param=f"{p}.tool_call_id"
            )
    _check_fields(body, _CHAT)
    return model


def validate_completion(body: Body) -> str:
    model = _model(body)
    prompt = body.get("prompt")
    if prompt is None:
        raise InvalidRequest("Missing required parameter: 'prompt'.", param="prompt")
    if not isinstance(prompt, str) and not (
        isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt)
    ):
        raise _fail("prompt", "a string or a non-empty array of strings", prompt)
    _check_fields(body, _COMPLETIONS)
    return model


def validate_embeddings(body: Body) -> str:
    model = _model(body)
    data = body.get("input")
    if data is None:
        raise InvalidRequest("Missing required parameter: 'input'.", param="input")
    ok = isinstance(data, str) or (
        isinstance(data, list)
        and bool(data)
        and (
            all(isinstance(x, str) for x in data)
            or all(isinstance(x, int) and not isinstance(x, bool) for x in data)
            or all(isinstance(x, list) and all(isinstance(t, int) for t in x) for x in data)
        )
    )
    if not ok:
        raise _fail("input", "a string, an array of strings or an array of token arrays", data)
    if isinstance(data, list) and len(data) > 2048:
        raise InvalidRequest("'input' accepts at most 2048 items.", param="input")
    fmt = body.get("encoding_format")
    if fmt is not None and fmt not in ("float", "base64"):
        raise InvalidRequest(
            "Invalid value for 'encoding_format': expected 'float' or 'base64'.",
            param="encoding_format",
        )
    if body.get("dimensions") is not None:
        _integer(1)("dimensions", body["dimensions"])
    return model
