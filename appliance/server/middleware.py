"""The outermost error boundary: every response gets a request id, no error a traceback."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from appliance.errors import ApplianceError, NotFound, PayloadTooLarge, StageFailed
from appliance.server.errors import error_response
from appliance.server.exchange import REQUEST_ID, new_request_id

log = logging.getLogger(__name__)

_HTTP_ERRORS: dict[int, type[ApplianceError]] = {404: NotFound, 413: PayloadTooLarge}


def _api(request: web.Request) -> str:
    return "anthropic" if request.path.startswith("/v1/messages") else "openai"


@web.middleware
async def error_boundary(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = new_request_id()
    request[REQUEST_ID] = request_id
    try:
        response = await handler(request)
    except ApplianceError as e:
        response = error_response(e, _api(request))  # type: ignore[arg-type]
    except web.HTTPException as e:
        if e.status < 400:
            raise
        cls = _HTTP_ERRORS.get(e.status, ApplianceError)
        err = cls(e.reason if e.status != 404 else f"Unknown route: {request.method} {request.path}")
        err.status = e.status
        if e.status == 405:
            err.type = "invalid_request_error"
        response = error_response(err, _api(request))  # type: ignore[arg-type]
    except Exception as e:  # noqa: BLE001 - the error boundary
        log.error("unhandled %s on %s (request %s)", type(e).__name__, request.path, request_id)
        response = error_response(
            StageFailed(f"Internal error; the request was not completed (request {request_id})."),
            _api(request),  # type: ignore[arg-type]
        )
    if not response.prepared:
        response.headers.setdefault("x-request-id", request_id)
    return response
