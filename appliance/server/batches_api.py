"""OpenAI's Batch API: ``/v1/batches`` (create, retrieve, list, cancel).

A batch of chat, responses, completions or embeddings requests runs in this appliance,
line by line through the pipeline (:mod:`.batch_runner`): each line its own request,
audit record and decision, within the key's limits and budget. The batch object lives
sealed in the state store, so any worker process answers for it; its output and error
files are files of the caller's tenant (``/v1/files/{id}/content``). A batch whose
runner stopped reporting (its process ended) is reported as failed.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from aiohttp import web

from appliance.audit.sealed_store import SealedStore, new_id
from appliance.core.context import Principal
from appliance.errors import ApplianceError, InvalidRequest, NotFound
from appliance.server.batch_runner import ENDPOINTS, KIND, BatchRunner, Runners, parse_input
from appliance.server.errors import error_response
from appliance.server.exchange import api_key_of, read_body
from appliance.server.files_api import read_file
from appliance.server.services import SERVICES
from appliance.server.state import caller, in_store
from appliance.server.validate import parse_json

RUNNERS = web.AppKey("batch_runners", Runners)
#: The part of the stored batch that is the caller's batch object (the rest is runner state).
_INTERNAL = ("heartbeat_at",)
_OPEN = ("validating", "in_progress", "finalizing", "cancelling")

Body = dict[str, Any]


def _public(batch: Body) -> Body:
    return {k: v for k, v in batch.items() if k not in _INTERNAL}


def _json(body: Body) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def new_batch(body: Body, endpoint: str, file_id: str) -> Body:
    now = int(time.time())
    return {
        "id": new_id("batch"),
        "object": "batch",
        "endpoint": endpoint,
        "errors": None,
        "input_file_id": file_id,
        "completion_window": "24h",
        "status": "validating",
        "output_file_id": None,
        "error_file_id": None,
        "created_at": now,
        "in_progress_at": None,
        "expires_at": now + 24 * 3600,
        "finalizing_at": None,
        "completed_at": None,
        "failed_at": None,
        "expired_at": None,
        "cancelling_at": None,
        "cancelled_at": None,
        "request_counts": {"total": 0, "completed": 0, "failed": 0},
        "metadata": body.get("metadata"),
        "heartbeat_at": time.time(),
    }


def _validate(body: Body) -> tuple[str, str]:
    endpoint, file_id = body.get("endpoint"), body.get("input_file_id")
    if endpoint not in ENDPOINTS:
        raise InvalidRequest(f"endpoint: one of {', '.join(ENDPOINTS)}", param="endpoint")
    if not isinstance(file_id, str):
        raise InvalidRequest("input_file_id: field required", param="input_file_id")
    if body.get("completion_window") != "24h":
        raise InvalidRequest("completion_window: only 24h is supported", param="completion_window")
    metadata = body.get("metadata")
    if metadata is not None and not (
        isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())
    ):
        raise InvalidRequest("metadata: an object of strings", param="metadata")
    assert isinstance(endpoint, str)
    return endpoint, file_id


async def create_batch(request: web.Request) -> web.Response:
    app = request.app
    try:
        principal = await caller(request)
        body = parse_json(await read_body(request))
        endpoint, file_id = _validate(body)
        content = await read_file(app, principal.tenant, file_id)
        lines, errors = parse_input(content, endpoint, app[SERVICES].config.batch.max_requests)
        batch = new_batch(body, endpoint, file_id)
        if errors:
            batch.update(status="failed", failed_at=int(time.time()),
                         errors={"object": "list", "data": errors[:100]})
        batch["request_counts"]["total"] = len(lines)
        await _save(app, principal, batch)
    except ApplianceError as e:
        return error_response(e)
    if not errors:
        key = api_key_of(request)
        assert key is not None  # the caller was authenticated with it
        app[RUNNERS].start(BatchRunner(app, principal.tenant, key, batch, lines))
    return _json(_public(batch))


async def _save(app: web.Application, principal: Principal, batch: Body) -> None:
    await in_store(app, SealedStore.put_json, KIND, batch["id"], principal.tenant, batch,
                   {"status": batch["status"]})


def _stale(app: web.Application, batch: Body) -> Body:
    """A batch left open by a runner that stopped reporting (its process ended) is failed."""
    limit = app[SERVICES].config.batch.stale_after_s
    if batch.get("status") in _OPEN and time.time() - float(batch.get("heartbeat_at") or 0) > limit:
        batch = {**batch, "status": "failed", "failed_at": int(time.time()), "errors": {
            "object": "list", "data": [{"code": "runner_lost", "line": None, "param": None,
                                        "message": "The process running this batch stopped."}]}}
    return batch


async def _load(request: web.Request) -> tuple[Principal, Body]:
    principal = await caller(request)
    batch_id = request.match_info["batch_id"]
    batch = await in_store(request.app, SealedStore.get_json, KIND, batch_id, principal.tenant)
    if not isinstance(batch, dict):
        raise NotFound(f"No batch found with id '{batch_id}'.", param="batch_id")
    return principal, _stale(request.app, batch)


async def retrieve_batch(request: web.Request) -> web.Response:
    try:
        _, batch = await _load(request)
    except ApplianceError as e:
        return error_response(e)
    return _json(_public(batch))


async def cancel_batch(request: web.Request) -> web.Response:
    try:
        principal, batch = await _load(request)
        if batch["status"] in ("validating", "in_progress"):
            batch.update(status="cancelling", cancelling_at=int(time.time()))
            runner = request.app[RUNNERS].running.get(batch["id"])
            if runner is not None:  # here; else its process sees the stored status
                runner.cancel()
                runner.batch.update(status="cancelling", cancelling_at=batch["cancelling_at"])
                await runner.save()
            else:
                await _save(request.app, principal, batch)
    except ApplianceError as e:
        return error_response(e)
    return _json(_public(batch))


async def list_batches(request: web.Request) -> web.Response:
    try:
        principal = await caller(request)
        infos = await in_store(request.app, SealedStore.list, KIND, principal.tenant, 100)
        docs = [await in_store(request.app, SealedStore.get_json, KIND, i.id, principal.tenant)
                for i in infos]
    except ApplianceError as e:
        return error_response(e)
    data = [_public(_stale(request.app, d)) for d in docs if isinstance(d, dict)]
    return _json({"object": "list", "data": data, "has_more": False,
                  "first_id": data[0]["id"] if data else None,
                  "last_id": data[-1]["id"] if data else None})


async def _runners(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[RUNNERS].aclose()


def add_routes(app: web.Application) -> None:
    app[RUNNERS] = Runners()
    # Registered after the services' and state's contexts: batches stop before they close.
    app.cleanup_ctx.append(_runners)
    app.router.add_post("/v1/batches", create_batch)
    app.router.add_get("/v1/batches", list_batches)
    app.router.add_get("/v1/batches/{batch_id}", retrieve_batch)
    app.router.add_post("/v1/batches/{batch_id}/cancel", cancel_batch)
