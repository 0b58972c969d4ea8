"""Running a batch: every line of the input file through the pipeline, as if it were its
own request.

Each line gets its own request id, is authenticated with the batch creator's key (held
in memory only, never stored: a key revoked mid-batch stops the rest), validated as its
endpoint's route validates, decided, admitted against the key's limits and budget,
redacted, answered and screened, and recorded: one audit record per line, denials and
errors reported per line in the error file. A rate-limited line waits for the limit's
``retry-after`` and is tried again (``[batch] rate_limit_retries``). At most
``[batch] concurrency`` lines run at once. The runner reports progress to the state
store, where the batch's status lives (any worker process answers ``GET``); a cancel
request, made in any process, is seen there.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from appliance.audit.sealed_store import SealedStore, new_id
from appliance.core.context import Context, Operation, Route
from appliance.providers.base import RunsBatches
from appliance.errors import (
    ApplianceError,
    InvalidRequest,
    RateLimited,
    StageFailed,
    UpstreamError,
)
from appliance.server import openai_api, responses_api
from appliance.server.errors import error_body
from appliance.server.exchange import finish, new_request_id, unexpected
from appliance.server.files_api import store_file
from appliance.server.services import SERVICES
from appliance.server.state import in_store
from appliance.server.validate import validate_chat, validate_completion

log = logging.getLogger(__name__)

KIND = "batch"
Body = dict[str, Any]
Parse = Callable[[bytes], Any]
Render = Callable[[Context, Body], Any]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """How one line of a batch for ``url`` runs: its route, operation, parser and renderer."""

    route: Route
    op: Operation
    parser: Callable[[Context, web.Application], Parse]
    renderer: Callable[[web.Application], Render | None]


def _chat_parser(ctx: Context, app: web.Application) -> Parse:
    parse: Parse = openai_api.body_parser(ctx, validate_chat)
    return parse


def _completion_parser(ctx: Context, app: web.Application) -> Parse:
    parse: Parse = openai_api.body_parser(ctx, validate_completion)
    return parse


def _embeddings_parser(ctx: Context, app: web.Application) -> Parse:
    parse: Parse = openai_api.embeddings_parser(ctx)
    return parse


ENDPOINTS: dict[str, Endpoint] = {
    "/v1/chat/completions": Endpoint("chat.completions", "chat", _chat_parser, lambda app: None),
    "/v1/responses": Endpoint("responses", "chat", responses_api.parser, responses_api.renderer),
    "/v1/embeddings": Endpoint(
        "embeddings", "embeddings", _embeddings_parser, lambda app: openai_api.encode_embeddings
    ),
    "/v1/completions": Endpoint("completions", "completions", _completion_parser, lambda app: None),
}


@dataclass(frozen=True, slots=True)
class Line:
    custom_id: str
    body: Body


def parse_input(content: bytes, endpoint: str, max_requests: int) -> tuple[list[Line], list[Body]]:
    """The lines of a batch input file, or the errors that make it invalid (with line numbers)."""
    lines: list[Line] = []
    errors: list[Body] = []
    seen: set[str] = set()
    for number, raw in enumerate(content.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            errors.append({"code": "invalid_json_line", "line": number,
                           "message": "This line is not valid JSON.", "param": None})
            continue
        if not isinstance(doc, dict):
            errors.append({"code": "invalid_request", "line": number,
                           "message": "Each line must be a JSON object.", "param": None})
            continue
        custom_id, body = doc.get("custom_id"), doc.get("body")
        problem = (
            "custom_id must be a non-empty string" if not isinstance(custom_id, str) or not custom_id
            else f"custom_id {custom_id!r} is used twice" if custom_id in seen
            else "method must be POST" if doc.get("method") != "POST"
            else f"url must be the batch's endpoint {endpoint}" if doc.get("url") != endpoint
            else "body must be an object" if not isinstance(body, dict)
            else None
        )
        if problem is not None:
            errors.append({"code": "invalid_request", "line": number, "message": problem,
                           "param": None})
            continue
        assert isinstance(custom_id, str) and isinstance(body, dict)
        seen.add(custom_id)
        lines.append(Line(custom_id, body))
    if not lines and not errors:
        errors.append({"code": "empty_file", "line": None, "message": "The input file has no requests.",
                       "param": None})
    if len(lines) > max_requests:
        errors.append({"code": "too_many_requests", "line": None, "param": None,
                       "message": f"A batch holds at most {max_requests} requests."})
    return lines, errors


@dataclass(slots=True)
class Pending:
    """A line the request stages let through, waiting for its provider's batch: its
    context (with the placeholder vault of its redaction, in memory only) and the
    redacted upstream body."""

    ctx: Context
    provider: RunsBatches
    body: Body


async def _render(app: web.Application, endpoint: Endpoint, ctx: Context, response: Body) -> Body:
    render = endpoint.renderer(app)
    if render is None:
        return response
    out = render(ctx, response)
    if asyncio.iscoroutine(out):
        out = await out
    rendered: Body = out
    return rendered


def _failed(ctx: Context, e: Exception) -> tuple[int, Body]:
    if isinstance(e, ApplianceError):
        ctx.status, ctx.error = e.status, e.code or e.type
        body = error_body(e, "openai")
        if isinstance(e, RateLimited):
            body["retry_after_s"] = e.retry_after_s
        return e.status, body
    err = unexpected(ctx, e)
    ctx.status, ctx.error = err.status, err.code
    return err.status, error_body(err, "openai")


async def _recorded(app: web.Application, ctx: Context, status: int, body: Body) -> tuple[int, Body, str]:
    try:
        await finish(app[SERVICES], ctx)
    except StageFailed as e:  # not recorded: the line must not count as answered
        status, body = e.status, error_body(e, "openai")
    return status, body, ctx.request_id


async def run_line(
    app: web.Application, api_key: str, endpoint: Endpoint, line: Line, *, defer: bool = False
) -> tuple[int, Body, str] | Pending:
    """One line through the pipeline, recorded: (HTTP status, response body, request id).

    With ``defer``, a line whose model's provider runs batches stops after the request
    stages and comes back as :class:`Pending`, to be sent in the provider's batch and
    finished by :func:`finish_line`.
    """
    pipeline = app[SERVICES].pipeline
    ctx = Context(request_id=new_request_id(), route=endpoint.route, body={}, api_key=api_key)
    status: int
    body: Body
    try:
        await pipeline.authenticate_caller(ctx)
        parsed = endpoint.parser(ctx, app)(orjson.dumps(line.body))
        if asyncio.iscoroutine(parsed):
            await parsed
        if ctx.stream:
            raise InvalidRequest("stream: requests in a batch cannot stream", param="stream")
        if defer:
            await pipeline.prepare(ctx, endpoint.op)
            target = await pipeline.router.batch_target(ctx, endpoint.op)
            if target is not None:
                return Pending(ctx, target[0], target[1])
            response = await pipeline.screen_answer(
                ctx, await pipeline.router.call(ctx, endpoint.op))
        else:
            response = await pipeline.complete(ctx, endpoint.op)
        status, body = 200, await _render(app, endpoint, ctx, response)
    except Exception as e:  # noqa: BLE001 - recorded as failed, reported in the error file
        status, body = _failed(ctx, e)
    return await _recorded(app, ctx, status, body)


async def finish_line(
    app: web.Application, endpoint: Endpoint, pending: Pending, answer: tuple[int, Body] | None,
    missing: str,
) -> tuple[int, Body, str]:
    """A deferred line's answer from the provider's batch: screened, settled, recorded.
    ``answer`` None: the provider's batch did not answer it (``missing`` says why)."""
    ctx = pending.ctx
    try:
        if answer is None:
            raise UpstreamError(missing)
        code, response = answer
        if code >= 400:
            raise UpstreamError(f"The provider's batch answered this request with HTTP {code}.",
                                upstream_status=code)
        screened = await app[SERVICES].pipeline.screen_answer(ctx, response)
        status, body = 200, await _render(app, endpoint, ctx, screened)
    except Exception as e:  # noqa: BLE001 - recorded as failed, reported in the error file
        status, body = _failed(ctx, e)
    return await _recorded(app, ctx, status, body)


class BatchRunner:
    """Runs one batch in this process; keeps its progress in the state store."""

    def __init__(self, app: web.Application, tenant: str, api_key: str, batch: Body,
                 lines: list[Line]) -> None:
        self.app = app
        self.tenant = tenant
        self._key = api_key
        self.batch = batch
        self.lines = lines
        self._results: list[tuple[Line, int, Body, str] | None] = [None] * len(lines)
        self._cancel = asyncio.Event()
        self._save_lock = asyncio.Lock()
        self._last_check = 0.0
        #: Lines waiting for a provider's batch, by index.
        self._pending: dict[int, Pending] = {}

    @property
    def id(self) -> str:
        return str(self.batch["id"])

    def cancel(self) -> None:
        self._cancel.set()

    async def save(self) -> None:
        """Write the batch's progress; a cancel another process wrote meanwhile is kept."""
        async with self._save_lock:
            stored = await in_store(self.app, SealedStore.get_json, KIND, self.id, self.tenant)
            if (isinstance(stored, dict) and stored.get("status") == "cancelling"
                    and self.batch["status"] in ("validating", "in_progress")):
                self._cancel.set()
                self.batch.update(status="cancelling", cancelling_at=stored.get("cancelling_at"))
            self.batch["heartbeat_at"] = time.time()
            await in_store(self.app, SealedStore.put_json, KIND, self.id, self.tenant,
                           self.batch, {"status": self.batch["status"]})

    async def _heartbeat(self) -> None:
        """Report now and then even while slow lines run: a silent batch counts as lost."""
        interval = self.app[SERVICES].config.batch.stale_after_s / 4
        while True:
            await asyncio.sleep(interval)
            try:
                await self.save()
            except ApplianceError as e:  # the next line's save tries again
                log.warning("batch %s could not report: %s", self.id, e.code)

    async def _cancelled(self) -> bool:
        """Cancelled here, or by a cancel request another process wrote (checked each second)."""
        if self._cancel.is_set():
            return True
        now = time.monotonic()
        if now - self._last_check >= 1.0:
            self._last_check = now
            stored = await in_store(self.app, SealedStore.get_json, KIND, self.id, self.tenant)
            if isinstance(stored, dict) and stored.get("status") == "cancelling":
                self._cancel.set()
        return self._cancel.is_set()

    async def _line(self, index: int, endpoint: Endpoint, slots: asyncio.Semaphore,
                    defer: bool) -> None:
        line = self.lines[index]
        async with slots:
            if await self._cancelled() or time.time() > self.batch["expires_at"]:
                return
            retries = self.app[SERVICES].config.batch.rate_limit_retries
            for attempt in range(retries + 1):
                outcome = await run_line(self.app, self._key, endpoint, line, defer=defer)
                if isinstance(outcome, Pending):
                    self._pending[index] = outcome
                    return
                status, body, request_id = outcome
                wait = body.get("retry_after_s") if status == 429 else None
                if wait is None or attempt == retries or await self._cancelled():
                    break
                await asyncio.sleep(min(float(wait or 1.0), 60.0))
            body.pop("retry_after_s", None)
        await self._done(index, (status, body, request_id))

    async def _done(self, index: int, result: tuple[int, Body, str]) -> None:
        status, body, request_id = result
        self._results[index] = (self.lines[index], status, body, request_id)
        counts = self.batch["request_counts"]
        counts["completed" if status < 400 else "failed"] += 1
        await self.save()

    async def _provider_batches(self, endpoint: Endpoint) -> None:
        """Send the deferred lines in one batch per provider (redacted, numbered by their
        place: the caller's custom ids never leave), poll, then finish every line."""
        groups: dict[int, tuple[RunsBatches, list[int]]] = {}
        for index, pending in sorted(self._pending.items(), key=lambda kv: kv[0]):
            groups.setdefault(id(pending.provider), (pending.provider, []))[1].append(index)
        await asyncio.gather(*(self._provider_batch(endpoint, provider, indexes)
                               for provider, indexes in groups.values()))

    async def _provider_batch(self, endpoint: Endpoint, provider: RunsBatches,
                              indexes: list[int]) -> None:
        path = self.batch["endpoint"]
        answers: dict[str, tuple[int, Body]] = {}
        missing = "The provider's batch did not answer this request."
        try:
            batch_id = await provider.submit_batch(
                path, [(str(i), self._pending[i].body) for i in indexes])
            poll = self.app[SERVICES].config.batch.poll_interval_s
            while True:
                if await self._cancelled():
                    await provider.cancel_batch(batch_id)
                    missing = "The batch was cancelled before the provider answered."
                    break
                if time.time() > self.batch["expires_at"]:
                    await provider.cancel_batch(batch_id)
                    missing = "The batch expired before the provider answered."
                    break
                found = await provider.batch_results(batch_id)
                if found is not None:
                    answers = found
                    break
                await asyncio.sleep(poll)
        except ApplianceError as e:
            missing = f"The provider's batch failed: {e.message}"
        for i in indexes:
            result = await finish_line(self.app, endpoint, self._pending.pop(i),
                                       answers.get(str(i)), missing)
            await self._done(i, result)

    async def run(self) -> None:
        try:
            await self._run()
        except Exception as e:  # noqa: BLE001 - the batch fails; the lines done stay recorded
            log.error("batch %s failed: %s", self.id, type(e).__name__)
            self.batch.update(status="failed", failed_at=int(time.time()), errors={
                "object": "list",
                "data": [{"code": "batch_failed", "message": "The batch runner failed.",
                          "line": None, "param": None}]})
            await self.save()

    async def _run(self) -> None:
        endpoint = ENDPOINTS[self.batch["endpoint"]]
        self.batch.update(status="in_progress", in_progress_at=int(time.time()))
        await self.save()
        slots = asyncio.Semaphore(self.app[SERVICES].config.batch.concurrency)
        heartbeat = asyncio.create_task(self._heartbeat())
        defer = self.app[SERVICES].config.batch.provider_batches
        try:
            await asyncio.gather(*(self._line(i, endpoint, slots, defer)
                                   for i in range(len(self.lines))))
            if self._pending:
                await self._provider_batches(endpoint)
        finally:
            heartbeat.cancel()
        cancelled = await self._cancelled()
        expired = not cancelled and any(r is None for r in self._results)
        self.batch.update(status="finalizing", finalizing_at=int(time.time()))
        await self.save()
        await self._write_files()
        now = int(time.time())
        if cancelled:
            self.batch.update(status="cancelled", cancelled_at=now)
        elif expired:
            self.batch.update(status="expired", expired_at=now)
        else:
            self.batch.update(status="completed", completed_at=now)
        await self.save()

    async def _write_files(self) -> None:
        ok: list[bytes] = []
        failed: list[bytes] = []
        for result in self._results:
            if result is None:
                continue
            line, status, body, request_id = result
            out = {"id": new_id("batch_req"), "custom_id": line.custom_id,
                   "response": {"status_code": status, "request_id": request_id, "body": body},
                   "error": None}
            (ok if status < 400 else failed).append(orjson.dumps(out))
        for rows, field, name in ((ok, "output_file_id", "output"), (failed, "error_file_id", "error")):
            if rows:
                info = await store_file(self.app, self.tenant, b"\n".join(rows) + b"\n",
                                        f"{self.id}_{name}.jsonl", "batch_output")
                self.batch[field] = info.id


class Runners:
    """The batches this process runs, each a task with a kept reference (cancelled at close)."""

    def __init__(self) -> None:
        self.running: dict[str, BatchRunner] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, runner: BatchRunner) -> None:
        self.running[runner.id] = runner
        task = asyncio.create_task(runner.run(), name=f"batch-{runner.id}")
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            self.running.pop(runner.id, None)

        task.add_done_callback(done)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
