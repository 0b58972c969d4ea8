"""Bounds on what one request may bring, checked before any route reads it.

Header size (HTTP 431), JSON nesting depth and message count (400), inline media in
content parts (413); the body's byte size is aiohttp's ``client_max_size`` (413). Each
limit is a ``[server]`` setting and each refusal is an ordinary error, rendered by the
error boundary in the caller's API format (OpenAI or Anthropic). Checking in one place
covers every route, new ones included. A body that is not JSON is left to its route,
which says so precisely. Most bodies are too small to break any limit, which counting
their bytes shows (:func:`may_break`); only the others are parsed here, once more than
the route parses them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain
from typing import Any

import orjson
from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

from appliance.config import ServerConfig
from appliance.errors import HeadersTooLarge, InvalidRequest, PayloadTooLarge
from appliance.server.exchange import read_body

#: Content parts that carry media inline (OpenAI chat and Responses, Anthropic).
MEDIA_PARTS = frozenset({
    "image_url", "input_audio", "file", "image", "document", "input_image", "input_file",
    "audio",
})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


@dataclass(frozen=True, slots=True)
class RequestLimits:
    max_header_bytes: int
    max_json_depth: int
    max_messages: int
    max_multimodal_bytes: int

    @classmethod
    def of(cls, server: ServerConfig) -> RequestLimits:
        return cls(server.max_header_bytes, server.max_json_depth, server.max_messages,
                   server.max_multimodal_bytes)


def header_bytes(request: web.BaseRequest) -> int:
    """Bytes of the request head as sent: names, values and each line's ": " and CRLF."""
    raw = request.raw_headers
    return sum(map(len, chain.from_iterable(raw))) + 4 * len(raw)


def may_break(raw: bytes, limits: RequestLimits) -> bool:
    """Whether the body ``raw`` could break a JSON limit, by counting bytes (C speed, no
    parse). Nesting ``max_json_depth + 1`` deep takes that many brackets, more than
    ``max_messages`` items take that many commas, and inline media over the limit take
    more bytes than it. Brackets and commas inside strings count too, so the answer errs
    towards parsing."""
    return (
        len(raw) > limits.max_multimodal_bytes
        or raw.count(b"{") + raw.count(b"[") > limits.max_json_depth
        or raw.count(b",") >= limits.max_messages
    )


def check_body(body: Any, limits: RequestLimits) -> None:
    """Raise the error for the first limit ``body`` (parsed JSON) breaks."""
    if isinstance(body, dict):
        for field in ("messages", "input"):
            items = body.get(field)
            if (isinstance(items, list) and len(items) > limits.max_messages
                    and (field == "messages" or isinstance(items[0], dict))):
                raise InvalidRequest(
                    f"'{field}' holds {len(items)} items; at most {limits.max_messages} "
                    "are accepted.", param=field, code="too_many_messages")
    _walk(body, limits)  # its cost follows the number of JSON values, not the bytes


def _walk(body: Any, limits: RequestLimits) -> None:
    media = 0
    stack: list[tuple[Any, int, bool]] = [(body, 1, False)]
    while stack:
        node, depth, in_media = stack.pop()
        children: Iterable[Any]
        if depth > limits.max_json_depth:
            raise InvalidRequest(
                f"The JSON body nests deeper than {limits.max_json_depth} levels.",
                code="json_too_deep")
        if isinstance(node, dict):
            kind = node.get("type")  # any JSON value: {"type": []} is not a media part
            in_media = in_media or (isinstance(kind, str) and kind in MEDIA_PARTS)
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        for child in children:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1, in_media))
            elif in_media and isinstance(child, str):
                media += len(child)
    if media > limits.max_multimodal_bytes:
        raise PayloadTooLarge(
            f"The request's inline media ({media} bytes) exceed the limit of "
            f"{limits.max_multimodal_bytes} bytes.", code="multimodal_too_large")


def request_limits(server: ServerConfig) -> Middleware:
    limits = RequestLimits.of(server)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        size = header_bytes(request)
        if size > limits.max_header_bytes:
            raise HeadersTooLarge(
                f"The request headers ({size} bytes) exceed the limit of "
                f"{limits.max_header_bytes} bytes.")
        if request.method in _BODY_METHODS and request.body_exists and not (
            request.headers.get(hdrs.CONTENT_TYPE, "").lstrip().lower().startswith("multipart/")
        ):
            raw = await read_body(request)  # kept for the route
            if may_break(raw, limits):
                try:
                    body = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    body = None  # the route answers with what is wrong with it
                if body is not None:
                    check_body(body, limits)
        return await handler(request)

    return middleware
