"""WebSocket streaming for clients that cannot consume SSE.

``GET /v1/realtime/chat`` upgrades; the client sends one chat request as JSON, receives
one message per chunk (the same ``chat.completion.chunk`` objects SSE would carry), then
``{"type": "done", "usage": ...}``. Errors arrive as ``{"type": "error", "error": ...}``.
The API key comes with the upgrade request's headers.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
from aiohttp import web

from appliance.errors import ApplianceError, InvalidRequest
from appliance.server.errors import error_body
from appliance.server.exchange import finish, new_context, response_headers, unexpected
from appliance.server.request_limits import RequestLimits, check_body
from appliance.server.services import SERVICES
from appliance.server.validate import parse_json, validate_chat


async def realtime_chat(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=services.config.server.max_body_bytes)
    await ws.prepare(request)
    ctx = new_context(request, "chat.completions", "openai")
    ctx.stream = True
    final: dict[str, Any]
    try:
        msg = await ws.receive(timeout=60)
        if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            raise InvalidRequest("Expected a chat request as the first WebSocket message.")
        raw = msg.data.encode() if isinstance(msg.data, str) else msg.data
        body = parse_json(raw)
        check_body(body, RequestLimits.of(services.config.server))  # no middleware sees it
        ctx.requested_model = validate_chat(body)
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        ctx.body = body
        await services.pipeline.prepare(ctx, "chat")
        await ws.send_str(
            orjson.dumps({"type": "start", "headers": response_headers(ctx)}).decode()
        )
        async for chunk in services.pipeline.stream(ctx, "chat"):
            if chunk.get("choices"):
                await ws.send_str(orjson.dumps({"type": "chunk", "chunk": chunk}).decode())
        final = {"type": "done", "usage": {
            "prompt_tokens": ctx.usage.prompt_tokens,
            "completion_tokens": ctx.usage.completion_tokens,
            "total_tokens": ctx.usage.total_tokens,
        }}
    except ApplianceError as e:
        ctx.status, ctx.error = e.status, e.code or e.type
        final = {"type": "error", "status": e.status, **error_body(e, "openai")}
    except TimeoutError:
        ctx.status, ctx.error = 408, "timeout"
        final = {"type": "error", "status": 408, "error": {
            "message": "No request received within 60 seconds.",
            "type": "invalid_request_error", "param": None, "code": "timeout"}}
    except ConnectionError:  # nobody is left to tell
        ctx.status, ctx.error = 499, "client_disconnected"
        final = {}
    except Exception as e:  # noqa: BLE001 - recorded as failed, told in the last message
        err = unexpected(ctx, e)
        ctx.status, ctx.error = err.status, err.code
        final = {"type": "error", "status": err.status, **error_body(err, "openai")}
    await finish(services, ctx)
    if final and not ws.closed:
        await ws.send_str(orjson.dumps(final).decode())
        await ws.close()
    return ws


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/realtime/chat", realtime_chat)
