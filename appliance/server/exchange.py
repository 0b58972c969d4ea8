"""One request/response exchange, shared by the OpenAI, Anthropic and WebSocket routes.

The route parses and validates, then hands a Context here. Whatever happens, the
request is recorded before the response completes: for a JSON answer before the body is
sent, for a stream before its final event. Whatever raises where (an ApplianceError, an
unexpected exception in a stage or an adapter, the caller going away), the context's
status and error say how the request ended, and it is settled and recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

import orjson
from aiohttp import web

from appliance.core.context import Context, Operation, Route
from appliance.core.decision import decision_of
from appliance.errors import (
    ApplianceError,
    AuditUnavailable,
    PayloadTooLarge,
    RequestTimeout,
    StageFailed,
)
from appliance.server.errors import error_response, sse_error_event
from appliance.server.services import SERVICES, Services

log = logging.getLogger(__name__)

Api = Literal["openai", "anthropic"]
REQUEST_ID = web.RequestKey("request_id", str)
#: The pipeline context of a request, for the access log (routes that run the pipeline).
CONTEXT = web.RequestKey("context", Context)


class SlowReader(ConnectionError):
    """The caller took no part of the stream for ``server.client_timeout_s``."""


def new_request_id() -> str:
    return "req_" + uuid.uuid4().hex


def api_key_of(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return request.headers.get("x-api-key") or request.headers.get("api-key")


async def read_body(request: web.Request) -> bytes:
    """The request's body, read within ``server.client_timeout_s``. The request limits
    read it before the route does; aiohttp keeps what ``read`` returned, so the second
    call finds the stream at its end and gets the same bytes at once."""
    try:
        if request.content.is_eof():  # all of it arrived with the head: no wait to bound
            raw: bytes = await request.read()
        else:
            async with asyncio.timeout(request.app[SERVICES].config.server.client_timeout_s):
                raw = await request.read()
    except TimeoutError:
        raise RequestTimeout("The request body did not arrive in time.") from None
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(
            f"The request body exceeds the limit of {request.app[SERVICES].config.server.max_body_bytes} bytes."
        ) from None
    return raw


def new_context(request: web.Request, route: Route, api: Api) -> Context:
    ctx = Context(
        request_id=request[REQUEST_ID],
        route=route,
        body={},
        api_key=api_key_of(request),
        api=api,
    )
    request[CONTEXT] = ctx
    return ctx


def response_headers(ctx: Context) -> dict[str, str]:
    headers = {"x-request-id": ctx.request_id, **ctx.headers}
    headers["x-appliance-decision"] = decision_of(ctx)
    return headers


def unexpected(ctx: Context, e: Exception) -> StageFailed:
    """An exception no stage translated (a bug, an adapter's): logged by type only."""
    log.error("request %s failed: %s", ctx.request_id, type(e).__name__)
    return StageFailed(f"Internal error; the request was not completed (request {ctx.request_id}).")


def failed(ctx: Context, err: ApplianceError) -> web.Response:
    ctx.status = err.status
    ctx.error = err.code or err.type
    return error_response(err, ctx.api, response_headers(ctx))


SseEncoder = Callable[[Context], Callable[[AsyncIterator[dict[str, Any]]], AsyncIterator[bytes]]]


def openai_sse(ctx: Context) -> Callable[[AsyncIterator[dict[str, Any]]], AsyncIterator[bytes]]:
    include_usage = bool((ctx.body.get("stream_options") or {}).get("include_usage"))

    async def encode(chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
        async for chunk in chunks:
            if not chunk.get("choices") and chunk.get("usage") and not include_usage:
                continue
            if not include_usage and "usage" in chunk and chunk.get("choices"):
                chunk = {k: v for k, v in chunk.items() if k != "usage"}
            yield b"data: " + orjson.dumps(chunk) + b"\n\n"

    return encode


async def exchange_json(
    request: web.Request,
    ctx: Context,
    parse: Callable[[bytes], Any],
    op: Operation,
    render: Callable[[Context, dict[str, Any]], Any] | None = None,
    encoder: SseEncoder | None = None,
    done: bytes = b"data: [DONE]\n\n",
) -> web.StreamResponse:
    """A non-streaming exchange, or hand over to :func:`exchange_stream`.

    ``parse`` validates the raw body and fills ``ctx`` (body, requested_model, stream);
    ``render`` turns the canonical answer into the caller's shape. Either may be a
    coroutine function (the Responses route reads and stores conversation state).
    """
    services = request.app[SERVICES]
    try:
        await services.pipeline.authenticate_caller(ctx)
        parsed = parse(await read_body(request))
        if parsed is not None:  # a coroutine function's coroutine
            await parsed
        if ctx.stream:
            return await exchange_stream(request, ctx, op, encoder or openai_sse, done)
        response = await services.pipeline.complete(ctx, op)
        if render is not None:
            response = render(ctx, response)
            if inspect.isawaitable(response):
                response = await response
        body = orjson.dumps(response)
    except ApplianceError as e:
        reply = failed(ctx, e)
        await finish(services, ctx)
        return reply
    except Exception as e:  # noqa: BLE001 - recorded as failed, answered 503
        reply = failed(ctx, unexpected(ctx, e))
        await finish(services, ctx)
        return reply
    except asyncio.CancelledError:  # the caller went away: still settled and recorded
        if ctx.finished_at is None:  # (a stream that ended may be recording already)
            ctx.status, ctx.error = 499, "client_disconnected"
            with contextlib.suppress(StageFailed):  # nobody is left to tell; it is logged
                await asyncio.shield(finish(services, ctx))
        raise
    await finish(services, ctx)
    return web.Response(body=body, content_type="application/json", headers=response_headers(ctx))


async def finish(services: Services, ctx: Context) -> None:
    try:
        await services.pipeline.finish(ctx)
    except AuditUnavailable:  # refused before anything happened, and still unrecordable
        raise
    except Exception as e:  # noqa: BLE001 - an unrecorded request is never acknowledged
        # The record could not be made durable: the request must not be acknowledged.
        log.error("recording request %s failed: %s", ctx.request_id, type(e).__name__)
        raise StageFailed("The request could not be recorded; it was not completed.") from None


async def exchange_stream(
    request: web.Request,
    ctx: Context,
    op: Operation,
    encoder: SseEncoder,
    done: bytes,
) -> web.StreamResponse:
    """Server-sent events: request stages first (errors still get a JSON 4xx), then the
    stream with headers already sent; a later error becomes a final error event."""
    services = request.app[SERVICES]
    pipeline = services.pipeline
    try:
        await pipeline.prepare(ctx, op)
    except ApplianceError as e:
        reply = failed(ctx, e)
        await finish(services, ctx)
        return reply
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
            **response_headers(ctx),
        }
    )
    tail = done
    write_s = services.config.server.client_timeout_s
    try:
        await response.prepare(request)
        async for data in encoder(ctx)(pipeline.stream(ctx, op)):
            # A caller that stops reading fills the socket's buffers, then write waits:
            # bounded, so a slow reader is cut off rather than held (with its upstream).
            bound = asyncio.timeout(write_s)
            try:
                async with bound:
                    await response.write(data)
            except (TimeoutError, ConnectionError):
                if bound.expired():  # (a cancelled write may surface as a reset)
                    raise SlowReader from None
                raise
    except ApplianceError as e:
        ctx.status, ctx.error = e.status, e.code or e.type
        tail = sse_error_event(e, ctx.api)
    except ConnectionError as e:
        ctx.status = 499
        ctx.error = "client_too_slow" if isinstance(e, SlowReader) else "client_disconnected"
        with contextlib.suppress(StageFailed):  # nobody is left to tell; it is logged
            # Shielded: the caller's socket closing now cancels this task.
            await asyncio.shield(finish(services, ctx))
        if request.transport is not None:  # after the record: aborting cancels this task
            request.transport.abort()
        return response
    except Exception as e:  # noqa: BLE001 - the stream ends with an error event, recorded
        err = unexpected(ctx, e)
        ctx.status, ctx.error = err.status, err.code
        tail = sse_error_event(err, ctx.api)
    except asyncio.CancelledError:  # the caller went away: still settled and recorded
        ctx.status, ctx.error = 499, "client_disconnected"
        with contextlib.suppress(StageFailed):
            await asyncio.shield(finish(services, ctx))
        raise
    try:
        await finish(services, ctx)
    except StageFailed as e:  # not recorded: the stream must not end as a success
        tail = sse_error_event(e, ctx.api)
    with contextlib.suppress(ConnectionError):
        if tail:
            await response.write(tail)
        await response.write_eof()
    return response
