"""The OpenAI-compatible routes: chat, completions, embeddings, models."""

from __future__ import annotations

import base64
import time
from typing import Any

import numpy as np
import orjson
from aiohttp import web

from appliance.errors import ApplianceError, ModelNotFound
from appliance.core.context import Context, StateKey
from appliance.server.errors import error_response
from appliance.server.exchange import (
    api_key_of,
    exchange_json,
    failed,
    finish,
    new_context,
    read_body,
    response_headers,
)
from appliance.server.services import SERVICES
from appliance.server.validate import (
    parse_json,
    validate_chat,
    validate_completion,
    validate_embeddings,
)


def body_parser(ctx: Context, validate: Any) -> Any:
    """Parse and validate a chat or completion body into ``ctx`` (routes and batch lines)."""

    def parse(raw: bytes) -> None:
        body = parse_json(raw)
        ctx.requested_model = validate(body)
        ctx.body = body
        ctx.stream = bool(body.get("stream"))

    return parse


async def chat_completions(request: web.Request) -> web.StreamResponse:
    ctx = new_context(request, "chat.completions", "openai")
    return await exchange_json(request, ctx, body_parser(ctx, validate_chat), "chat")


async def completions(request: web.Request) -> web.StreamResponse:
    ctx = new_context(request, "completions", "openai")
    return await exchange_json(request, ctx, body_parser(ctx, validate_completion), "completions")


#: The embedding encoding the caller asked for ("float" or "base64").
ENCODING: StateKey[str] = StateKey("embeddings.encoding_format")


def embeddings_parser(ctx: Context) -> Any:
    def parse(raw: bytes) -> None:
        body = parse_json(raw)
        ctx.requested_model = validate_embeddings(body)
        # Providers always answer floats; the encoding the caller asked for is applied last.
        ctx.put(ENCODING, body.pop("encoding_format", None) or "float")
        ctx.body = body

    return parse


def encode_embeddings(ctx: Context, response: dict[str, Any]) -> dict[str, Any]:
    if ctx.get(ENCODING) != "base64":
        return response
    data = []
    for item in response.get("data", []):
        vector = item.get("embedding")
        if isinstance(vector, list):
            raw = np.asarray(vector, dtype="<f4").tobytes()
            item = {**item, "embedding": base64.b64encode(raw).decode("ascii")}
        data.append(item)
    return {**response, "data": data}


async def embeddings(request: web.Request) -> web.StreamResponse:
    ctx = new_context(request, "embeddings", "openai")
    return await exchange_json(
        request, ctx, embeddings_parser(ctx), "embeddings", render=encode_embeddings
    )


def _model_objects(request: web.Request) -> list[dict[str, Any]]:
    config = request.app[SERVICES].config
    created = int(request.app[STARTED_AT])
    out = []
    for name, spec in config.models.items():
        provider = config.providers[spec.provider]
        obj: dict[str, Any] = {
            "id": name,
            "object": "model",
            "created": created,
            "owned_by": "local" if provider.kind == "local" else spec.provider,
        }
        if spec.description:  # says e.g. that the built-in local-chat has random weights
            obj["description"] = spec.description
        out.append(obj)
    return out


async def _authenticate(request: web.Request) -> None:
    await request.app[SERVICES].authenticator.verify(api_key_of(request))


async def list_models(request: web.Request) -> web.Response:
    try:
        await _authenticate(request)
    except ApplianceError as e:
        return error_response(e)
    body = {"object": "list", "data": _model_objects(request)}
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def get_model(request: web.Request) -> web.Response:
    try:
        await _authenticate(request)
    except ApplianceError as e:
        return error_response(e)
    wanted = request.match_info["model"]
    for obj in _model_objects(request):
        if obj["id"] == wanted:
            return web.Response(body=orjson.dumps(obj), content_type="application/json")
    return error_response(ModelNotFound(f"The model '{wanted}' does not exist.", param="model"))


async def moderations(request: web.Request) -> web.StreamResponse:
    """POST /v1/moderations in the OpenAI shape; authenticated and audited like any call."""
    services = request.app[SERVICES]
    ctx = new_context(request, "moderations", "openai")
    try:
        await services.pipeline.authenticate_caller(ctx)
        ctx.body = parse_json(await read_body(request))
        ctx.requested_model = ctx.model = str(ctx.body.get("model") or "omni-moderation-latest")
        moderator = await services.ready_moderator()
        result = await moderator.moderate(ctx.body)
    except ApplianceError as e:
        reply = failed(ctx, e)
        await finish(services, ctx)
        return reply
    await finish(services, ctx)
    return web.Response(
        body=orjson.dumps(result), content_type="application/json", headers=response_headers(ctx)
    )


STARTED_AT = web.AppKey("started_at", float)


def add_routes(app: web.Application) -> None:
    app[STARTED_AT] = time.time()
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/completions", completions)
    app.router.add_post("/v1/embeddings", embeddings)
    app.router.add_post("/v1/moderations", moderations)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{model:.+}", get_model)
