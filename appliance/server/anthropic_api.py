"""The Anthropic-compatible route: ``POST /v1/messages``, streaming included.

Requests are translated into the canonical (OpenAI) shape before the pipeline and the
answers translated back, so every compliance stage sees one shape. Errors use the
Anthropic error body.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from aiohttp import web

from appliance.errors import InvalidRequest
from appliance.core.context import Context
from appliance.providers.anthropic_format import (
    anthropic_request_to_openai,
    openai_response_to_anthropic,
    openai_stream_to_anthropic_events,
)
from appliance.server.exchange import exchange_json, new_context
from appliance.server.validate import parse_json, validate_chat


def _parser(ctx: Context) -> Callable[[bytes], None]:
    def parse(raw: bytes) -> None:
        body = parse_json(raw)
        max_tokens = body.get("max_tokens")
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise InvalidRequest("max_tokens: a positive integer is required", param="max_tokens")
        canonical = anthropic_request_to_openai(body)
        ctx.requested_model = validate_chat(canonical)
        ctx.body = canonical
        ctx.stream = bool(body.get("stream"))

    return parse


def _render(ctx: Context, response: dict[str, Any]) -> dict[str, Any]:
    return openai_response_to_anthropic(response, ctx.requested_model)


def _sse(ctx: Context) -> Callable[[AsyncIterator[dict[str, Any]]], AsyncIterator[bytes]]:
    async def encode(chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
        async for name, data in openai_stream_to_anthropic_events(chunks, ctx.requested_model):
            yield b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    return encode


async def messages(request: web.Request) -> web.StreamResponse:
    ctx = new_context(request, "messages", "anthropic")
    return await exchange_json(
        request, ctx, _parser(ctx), "chat", render=_render, encoder=_sse, done=b""
    )


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/messages", messages)
