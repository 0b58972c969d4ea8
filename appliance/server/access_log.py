"""One access log line per HTTP request, for operators: who, what model, how it ended.

The line names the request id (the key of its audit record), the caller's key id and
tenant, the model, the HTTP status, the decision and the duration; never a prompt, a key,
a header value or a PII value. Every value is escaped, so a caller cannot forge a line
with CR/LF or control characters (a model name, a path). Streams are logged once they end.
``[server] access_log`` picks ``logfmt`` (default), ``json`` or ``off``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from appliance.config import ServerConfig
from appliance.core.logline import escape_controls
from appliance.core.decision import decision_of
from appliance.server.exchange import CONTEXT, REQUEST_ID

log = logging.getLogger("appliance.access")

#: Longest value written (a path or model name longer than this is cut).
_MAX_VALUE = 200


def _logfmt_value(value: object) -> str:
    text = str(value)[:_MAX_VALUE]
    if text and all(c.isprintable() and c not in ' "=\\' for c in text):
        return text
    # JSON string escaping covers quotes, backslashes and C0 controls; orjson leaves C1
    # controls and U+2028/U+2029 as they are, and those break lines too.
    return escape_controls(orjson.dumps(text).decode())


def logfmt(fields: Mapping[str, object]) -> str:
    return " ".join(f"{k}={_logfmt_value(v)}" for k, v in fields.items() if v is not None)


def json_line(fields: Mapping[str, object]) -> str:
    return escape_controls(orjson.dumps(
        {k: (v if isinstance(v, (int, float, bool)) else str(v)[:_MAX_VALUE])
         for k, v in fields.items() if v is not None}
    ).decode())


def access_fields(request: web.Request, status: int, duration_s: float) -> dict[str, object]:
    ctx = request.get(CONTEXT)
    principal = ctx.principal if ctx is not None else None
    return {
        "request_id": request.get(REQUEST_ID),
        "method": request.method,
        "path": request.rel_url.raw_path,  # as sent, percent-encoded: never decoded CR/LF
        "status": status,
        "decision": decision_of(ctx) if ctx is not None else None,
        "key_id": principal.key_id if principal else None,
        "tenant": principal.tenant if principal else None,
        "model": (ctx.model or ctx.requested_model or None) if ctx is not None else None,
        "stream": ctx.stream if ctx is not None else None,
        "duration_ms": round(duration_s * 1000.0, 2),
    }


def access_log(config: ServerConfig) -> Middleware | None:
    """The middleware, or None when the access log is off."""
    if config.access_log == "off":
        return None
    render = json_line if config.access_log == "json" else logfmt
    skipped = frozenset(config.access_log_skip_paths)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as e:  # redirects pass the error boundary as exceptions
            status = e.status
            raise
        except asyncio.CancelledError:  # the client went away before the answer
            status = 499
            raise
        finally:
            if request.path not in skipped and log.isEnabledFor(logging.INFO):
                elapsed = time.perf_counter() - started
                log.info("%s", render(access_fields(request, status, elapsed)))

    return middleware
