"""The one place where errors become HTTP responses, in the caller's API shape."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from aiohttp import web

from appliance.errors import ApplianceError, RateLimited, UpstreamUnavailable


def error_body(err: ApplianceError, api: Literal["openai", "anthropic"]) -> dict[str, Any]:
    if api == "anthropic":
        return {"type": "error", "error": {"type": err.anthropic_type, "message": err.message}}
    return {
        "error": {
            "message": err.message,
            "type": err.type,
            "param": err.param,
            "code": err.code,
        }
    }


def error_response(
    err: ApplianceError,
    api: Literal["openai", "anthropic"] = "openai",
    headers: dict[str, str] | None = None,
) -> web.Response:
    hdrs = dict(headers or {})
    if isinstance(err, RateLimited | UpstreamUnavailable) and err.retry_after_s is not None:
        hdrs["retry-after"] = str(max(1, round(err.retry_after_s)))
    return web.Response(
        status=err.status,
        body=orjson.dumps(error_body(err, api)),
        content_type="application/json",
        headers=hdrs,
    )


def sse_error_event(err: ApplianceError, api: Literal["openai", "anthropic"]) -> bytes:
    """An error that happens after a stream started: sent as one last SSE event."""
    body = orjson.dumps(error_body(err, api))
    if api == "anthropic":
        return b"event: error\ndata: " + body + b"\n\n"
    return b"data: " + body + b"\n\n"
