"""OpenAI's Responses API: ``POST /v1/responses`` (whole and streamed), ``GET`` and
``DELETE /v1/responses/{id}``, ``GET /v1/responses/{id}/input_items``.

The request is translated into the canonical chat shape before the pipeline
(:mod:`appliance.providers.responses_format`), so every stage applies as for chat; the
answer is translated back, streams into the Responses event sequence. Conversation
state is kept by the appliance: a stored response (``store`` is true unless the caller
says false) is sealed with the tenant's data key in the state store, with the items of
its conversation, so that ``previous_response_id`` can continue it; a caller reads only
its own tenant's responses (404 otherwise). A response's id carries its request id
(``resp_<hex>`` for ``req_<hex>``), so its audit record is found from it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from appliance.core.context import Context, StateKey
from appliance.errors import ApplianceError, InvalidRequest, NotFound, UnsupportedOperation
from appliance.providers.responses_format import (
    ECHOED,
    ResponseEventWriter,
    ResponseFrame,
    chat_to_response,
    history_of,
    input_items,
    responses_request_to_chat,
    stored_input_items,
)
from appliance.server.errors import error_response
from appliance.server.exchange import exchange_json, new_context
from appliance.audit.sealed_store import SealedStore
from appliance.server.state import caller, in_store
from appliance.server.validate import parse_json, validate_chat

#: The state store's kind for stored responses.
KIND = "response"

Body = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Turn:
    """What the route needs besides the canonical body: the response frame, this turn's
    input items and the conversation before it, and whether to store the result."""

    frame: ResponseFrame
    items: list[Body]
    history: list[Body]
    store: bool


TURN: StateKey[Turn] = StateKey("responses.turn")


def response_id(ctx: Context) -> str:
    return "resp_" + ctx.request_id.removeprefix("req_")


def _echo(body: Body) -> Body:
    echo = {k: body[k] for k in ECHOED if body.get(k) is not None}
    if isinstance(body.get("text"), dict):
        echo["text"] = body["text"]
    return echo


def parser(ctx: Context, app: web.Application) -> Callable[[bytes], Coroutine[Any, Any, None]]:
    """Validate a Responses request, load its conversation, fill ``ctx`` (also for batches)."""

    async def parse(raw: bytes) -> None:
        body = parse_json(raw)
        if body.get("background"):
            raise UnsupportedOperation("background responses are not supported", param="background")
        if body.get("conversation") is not None:
            raise UnsupportedOperation(
                "conversation objects are not supported; use previous_response_id",
                param="conversation",
            )
        store = body.get("store", True)
        if not isinstance(store, bool):
            raise InvalidRequest("store: must be a boolean", param="store")
        previous = body.get("previous_response_id")
        history: list[Body] = []
        if previous is not None:
            if not isinstance(previous, str):
                raise InvalidRequest("previous_response_id: must be a string",
                                     param="previous_response_id")
            assert ctx.principal is not None  # authenticated before the body is parsed
            stored = await in_store(app, SealedStore.get_json, KIND, previous,
                                    ctx.principal.tenant)
            if stored is None:
                raise NotFound(f"Previous response with id '{previous}' not found.",
                               param="previous_response_id")
            history = history_of(stored)
        canonical = responses_request_to_chat(body, history)
        ctx.requested_model = validate_chat(canonical)
        ctx.body = canonical
        ctx.stream = bool(body.get("stream"))
        frame = ResponseFrame(response_id(ctx), ctx.requested_model, int(ctx.started_at),
                              _echo(body))
        ctx.put(TURN, Turn(frame, input_items(body["input"]), history, store))

    return parse


async def _keep(app: web.Application, ctx: Context, turn: Turn, response: Body) -> None:
    """Seal the finished response with its conversation for later turns and reads."""
    if not turn.store or ctx.principal is None:
        return
    doc = {"response": response, "input": stored_input_items(turn.items), "history": turn.history}
    await in_store(app, SealedStore.put_json, KIND, turn.frame.id,
                   ctx.principal.tenant, doc, {"request_id": ctx.request_id})


def renderer(app: web.Application) -> Callable[[Context, Body], Coroutine[Any, Any, Body]]:
    """The canonical answer as a ``response`` object, stored unless ``store`` is false."""

    async def render(ctx: Context, chat: Body) -> Body:
        turn = ctx.get(TURN)
        assert turn is not None
        response = chat_to_response(chat, turn.frame)
        await _keep(app, ctx, turn, response)
        return response

    return render


def _event(name: str, data: Body) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _sse(app: web.Application) -> Callable[
    [Context], Callable[[AsyncIterator[Body]], AsyncIterator[bytes]]
]:
    def encoder(ctx: Context) -> Callable[[AsyncIterator[Body]], AsyncIterator[bytes]]:
        async def encode(chunks: AsyncIterator[Body]) -> AsyncIterator[bytes]:
            turn = ctx.get(TURN)
            assert turn is not None
            writer = ResponseEventWriter(turn.frame)
            for name, data in writer.start():
                yield _event(name, data)
            async for chunk in chunks:
                for name, data in writer.feed(chunk):
                    yield _event(name, data)
            for name, data in writer.close_items():
                yield _event(name, data)
            response = writer.response()
            await _keep(app, ctx, turn, response)  # readable before the stream says done
            yield _event(*writer.final_event(response))

        return encode

    return encoder


async def create_response(request: web.Request) -> web.StreamResponse:
    ctx = new_context(request, "responses", "openai")
    return await exchange_json(
        request, ctx, parser(ctx, request.app), "chat",
        render=renderer(request.app), encoder=_sse(request.app), done=b"",
    )


def _json(body: Body) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def _stored(request: web.Request) -> tuple[str, str, Body]:
    principal = await caller(request)
    rid = request.match_info["response_id"]
    doc = await in_store(request.app, SealedStore.get_json, KIND, rid, principal.tenant)
    if not isinstance(doc, dict):
        raise NotFound(f"Response with id '{rid}' not found.", param="response_id")
    return principal.tenant, rid, doc


async def get_response(request: web.Request) -> web.Response:
    try:
        _, _, doc = await _stored(request)
    except ApplianceError as e:
        return error_response(e)
    return _json(doc["response"])


async def delete_response(request: web.Request) -> web.Response:
    try:
        tenant, rid, _ = await _stored(request)
        await in_store(request.app, SealedStore.delete, KIND, rid, tenant)
    except ApplianceError as e:
        return error_response(e)
    return _json({"id": rid, "object": "response", "deleted": True})


def _page(items: list[Body], request: web.Request) -> Body:
    order = request.query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequest("order: asc or desc", param="order")
    try:
        limit = int(request.query.get("limit", "20"))
    except ValueError:
        raise InvalidRequest("limit: an integer from 1 to 100", param="limit") from None
    if not 1 <= limit <= 100:
        raise InvalidRequest("limit: an integer from 1 to 100", param="limit")
    ordered = list(reversed(items)) if order == "desc" else list(items)
    after = request.query.get("after")
    if after:
        ids = [i.get("id") for i in ordered]
        ordered = ordered[ids.index(after) + 1:] if after in ids else []
    page = ordered[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(ordered) > limit,
    }


async def list_input_items(request: web.Request) -> web.Response:
    try:
        _, _, doc = await _stored(request)
        return _json(_page(list(doc.get("input") or ()), request))
    except ApplianceError as e:
        return error_response(e)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/responses", create_response)
    app.router.add_get("/v1/responses/{response_id}", get_response)
    app.router.add_delete("/v1/responses/{response_id}", delete_response)
    app.router.add_get("/v1/responses/{response_id}/input_items", list_input_items)
