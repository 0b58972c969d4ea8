"""The ordered pipeline. Reading the three lists below tells what happens to a request.

Request stages run in order before the model is called; any of them may deny.
Response stages screen what comes back, whole or chunk by chunk. The recorder runs
after every request, whatever happened. Each entry names the ``[pipeline]`` switch that
turns it off (None: always on) and a factory that imports its class only when it is on,
so a switched-off stage costs nothing, not even its imports.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from appliance.config import Config
from appliance.core.context import Context, Operation, Payload, StateKey, Usage
from appliance.core.findings import StageOutcome, Verdict
from appliance.errors import ApplianceError, PermissionDenied, StageFailed, UpstreamError
from appliance.pipeline.components import Components
from appliance.pipeline.router import Router
from appliance.pipeline.stage import (
    Chunk,
    Lifecycle,
    Observer,
    Recorder,
    Reporter,
    RequestStage,
    ResponseStage,
    Settler,
)
from appliance.risk.text import choice_texts, delta_texts

log = logging.getLogger(__name__)

#: The settlement ``complete`` starts while the answer is screened (``finish`` awaits it).
_SETTLING: StateKey[asyncio.Future[int]] = StateKey("pipeline.settling")
#: Settlements in flight (the event loop keeps only weak references to tasks).
_RUNNING: set[asyncio.Future[int]] = set()

S = TypeVar("S")


@dataclass(frozen=True)
class StageEntry(Generic[S]):
    """One place in the pipeline: the stage's name, the ``[pipeline]`` switch that turns
    it off (None: always on), and the factory that builds it from the configuration and
    the process's shared components."""

    name: str
    switch: str | None
    build: Callable[[Config, Components], S]
    #: Runs together with the stage before it (it only reads the request).
    with_previous: bool = False


# -- factories: each imports its stage only when the stage is on ---------------------------


def _pii_detect(config: Config, parts: Components) -> RequestStage:
    from appliance.pipeline.pii_detect import PiiDetect

    return PiiDetect(config, parts.analyzer)


def _classify(config: Config, parts: Components) -> RequestStage:
    from appliance.pipeline.classify import ClassifyStage

    return ClassifyStage(config, parts.classifier, parts.apps)


def _decide(config: Config, parts: Components) -> RequestStage:
    from appliance.pipeline.decide import DecideStage

    return DecideStage(config)


def _obligations(config: Config, parts: Components) -> RequestStage:
    from appliance.pipeline.obligations import ObligationsStage

    return ObligationsStage(parts.router)


def _limits(config: Config, parts: Components) -> RequestStage:
    from appliance.pipeline.limits import LimitsStage

    return LimitsStage(config, parts.metrics)


def _redact(config: Config, parts: Components) -> RequestStage:
    from appliance.pipeline.redact import Redact

    return Redact(config)


def _pii_output(config: Config, parts: Components) -> ResponseStage:
    from appliance.pipeline.pii_output import PiiOutput

    return PiiOutput(config, parts.analyzer)


def _safety_output(config: Config, parts: Components) -> ResponseStage:
    from appliance.pipeline.safety_output import SafetyOutputStage

    return SafetyOutputStage(config, parts.classifier)


def _disclosure(config: Config, parts: Components) -> ResponseStage:
    from appliance.pipeline.disclosure import DisclosureStage

    return DisclosureStage(config)


def _record(config: Config, parts: Components) -> Recorder:
    from appliance.pipeline.record import RecordStage

    return RecordStage(config)


REQUEST_STAGES: tuple[StageEntry[RequestStage], ...] = (
    StageEntry("pii_detect", "redact", _pii_detect),
    # PII analysis runs in its worker processes while the risk model runs in a thread.
    StageEntry("classify", "classify", _classify, with_previous=True),
    StageEntry("decide", "decide", _decide),
    # Routing obligations (force a local model, cap the answer, no streaming), applied
    # before anything else looks at where the request goes.
    StageEntry("obligations", "decide", _obligations),
    StageEntry("limits", "limits", _limits),
    StageEntry("redact", "redact", _redact),
)
RESPONSE_STAGES: tuple[StageEntry[ResponseStage], ...] = (
    StageEntry("pii_output", "redact", _pii_output),
    StageEntry("safety_output", "screen_output", _safety_output),
    StageEntry("disclosure", "screen_output", _disclosure),
)
RECORDER: StageEntry[Recorder] = StageEntry("record", "record", _record)


def enabled(config: Config, entry: StageEntry[Any]) -> bool:
    return entry.switch is None or bool(getattr(config.pipeline, entry.switch))


def _checked(entry: StageEntry[S], stage: S, protocol: type) -> S:
    """A stage that does not implement its protocol fails the start, not a request."""
    if not isinstance(stage, protocol) or getattr(stage, "name", None) != entry.name:
        raise TypeError(f"stage {entry.name!r} does not implement {protocol.__name__}")
    return stage


@dataclass(frozen=True)
class Pipeline:
    authenticate: RequestStage
    #: Request stages grouped into steps; the stages of one step run concurrently.
    request_steps: tuple[tuple[RequestStage, ...], ...]
    response_stages: tuple[ResponseStage, ...]
    recorder: Recorder | None
    router: Router
    settlers: tuple[Settler, ...] = ()
    observers: tuple[Observer, ...] = ()
    reporters: tuple[Reporter, ...] = ()

    @property
    def request_stages(self) -> tuple[RequestStage, ...]:
        return tuple(s for step in self.request_steps for s in step)

    async def authenticate_caller(self, ctx: Context) -> None:
        """Stage 1, run before the body is even parsed: no key, no further work."""
        await self._run_stage(self.authenticate, ctx)

    async def prepare(self, ctx: Context, op: Operation) -> None:
        """Resolve the model and run every request stage; raise on deny."""
        ctx.operation = op
        if ctx.principal is None:
            await self.authenticate_caller(ctx)
        self.router.resolve(ctx, ctx.requested_model, op)
        await self._request_steps(ctx)

    async def _request_steps(self, ctx: Context) -> None:
        for step in self.request_steps:
            if len(step) == 1:
                await self._run_stage(step[0], ctx)
                continue
            outcomes = await asyncio.gather(
                *(self._run_stage(stage, ctx) for stage in step), return_exceptions=True
            )
            for outcome in outcomes:  # every stage of the step has left its verdict
                if isinstance(outcome, BaseException):
                    raise outcome

    async def _run_stage(self, stage: RequestStage, ctx: Context) -> None:
        t0 = time.perf_counter()
        try:
            verdict = await stage.run(ctx)
        except ApplianceError as e:
            ctx.verdicts.append(_failed_verdict(stage.name, e, time.perf_counter() - t0))
            raise
        except Exception as e:  # noqa: BLE001 - fail closed: a broken control never lets a request through
            log.error("stage %s failed: %s", stage.name, type(e).__name__)
            ctx.verdicts.append(_error_verdict(stage.name, e, time.perf_counter() - t0))
            raise StageFailed(
                f"The {stage.name} stage failed; the request was not forwarded."
            ) from None
        verdict = replace(verdict, duration_s=time.perf_counter() - t0)
        ctx.verdicts.append(verdict)
        if verdict.outcome == "deny":
            reasons = verdict.reasons or (f"denied by {stage.name}",)
            raise PermissionDenied(
                "Request denied by policy: " + "; ".join(reasons), reasons=tuple(reasons)
            )

    async def complete(self, ctx: Context, op: Operation) -> dict[str, Any]:
        """A whole response: prepare, call upstream, screen the answer."""
        await self.prepare(ctx, op)
        upstream_body = dict(ctx.body)
        response = await self.router.call(ctx, op)
        ctx.usage = usage_of(response.get("usage"))
        if self.settlers:
            # The usage is known and no screen changes it: book it while the answer is
            # screened rather than after (``finish`` waits for it).
            settling = asyncio.ensure_future(self._settle(ctx))
            ctx.put(_SETTLING, settling)
            _RUNNING.add(settling)  # held until done, even if the caller goes away
            settling.add_done_callback(_RUNNING.discard)
        for stage in self.response_stages:
            response = await self._screen(stage, ctx, response)
        if ctx.obligations.get("store_payloads"):
            ctx.payload = Payload(upstream_body, answer_text(response))
        return response

    async def screen_answer(self, ctx: Context, response: dict[str, Any]) -> dict[str, Any]:
        """A whole answer that arrived later than its request (a provider batch's line,
        after ``prepare``): its usage is taken and every response stage screens it."""
        upstream_body = dict(ctx.body)
        ctx.usage = usage_of(response.get("usage"))
        for stage in self.response_stages:
            response = await self._screen(stage, ctx, response)
        if ctx.obligations.get("store_payloads"):
            ctx.payload = Payload(upstream_body, answer_text(response))
        return response

    async def complete_tool(
        self, ctx: Context, invoke: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
    ) -> dict[str, Any]:
        """One MCP tool call through the same stages as a chat request.

        ``ctx.body`` holds the call in the canonical shape (an assistant turn with one
        tool call) and ``ctx.model``/``provider``/``provider_region`` name the MCP server,
        so there is no model to resolve: the request stages run (PII found and redacted
        in the arguments, decided, admitted), ``invoke`` calls the upstream with the body
        they left, and the response stages screen its result, given in the canonical
        answer shape.
        """
        if ctx.principal is None:
            await self.authenticate_caller(ctx)
        await self._request_steps(ctx)
        upstream_body = dict(ctx.body)
        response = await invoke(ctx.body)
        for stage in self.response_stages:
            response = await self._screen(stage, ctx, response)
        if ctx.obligations.get("store_payloads"):
            ctx.payload = Payload(upstream_body, answer_text(response))
        return response

    async def _screen(
        self, stage: ResponseStage, ctx: Context, response: dict[str, Any]
    ) -> dict[str, Any]:
        t0 = time.perf_counter()
        try:
            return await stage.screen(ctx, response)
        except ApplianceError as e:
            ctx.verdicts.append(_failed_verdict(stage.name, e, time.perf_counter() - t0))
            raise
        except Exception as e:  # noqa: BLE001 - fail closed: the answer is withheld
            log.error("stage %s failed: %s", stage.name, type(e).__name__)
            ctx.verdicts.append(_error_verdict(stage.name, e, time.perf_counter() - t0))
            raise StageFailed(f"The {stage.name} stage failed; the answer was withheld.") from None

    def stream(self, ctx: Context, op: Operation) -> AsyncIterator[Chunk]:
        """Chunks from upstream through every response stage; call after ``prepare``.

        Whatever a stage raises while the stream runs reaches the caller as an
        ApplianceError (unexpected ones as StageFailed, with an "error" verdict naming the
        stage), so the exchange always knows how the stream ended and records it.
        """
        told: set[int] = set()  # errors already attributed, by id (one stream's worth)
        chunks: AsyncIterator[Chunk] = _from_provider(
            told, self._metered(ctx, self.router.stream(ctx, op))
        )
        for stage in self.response_stages:
            chunks = _guarded(ctx, stage, stage.screen_stream(ctx, chunks), told)
        if ctx.obligations.get("store_payloads"):
            chunks = self._captured(ctx, dict(ctx.body), chunks)
        return chunks

    async def _captured(
        self, ctx: Context, request: dict[str, Any], chunks: AsyncIterator[Chunk]
    ) -> AsyncIterator[Chunk]:
        """Keep the streamed answer for the audit payload (the policy asked for it)."""
        parts: list[str] = []
        async for chunk in chunks:
            parts.append(answer_text(chunk, chunk=True))
            yield chunk
        ctx.payload = Payload(request, "".join(parts))

    async def _metered(self, ctx: Context, chunks: AsyncIterator[Chunk]) -> AsyncIterator[Chunk]:
        async for chunk in chunks:
            if chunk.get("usage"):
                ctx.usage = usage_of(chunk["usage"])
            yield chunk

    async def finish(self, ctx: Context) -> None:
        """Settle usage and cost, record the request, then observe it; whatever happened.

        Settlers run before the record is written, so that the record carries the cost
        (``complete`` starts them early); ``settle_failure`` when the answer failed after
        its usage was booked. Observers (metrics, traces) run once the request is recorded,
        and also when it could not be.
        """
        ctx.finished_at = time.time()
        early = ctx.pop(_SETTLING)
        if early is None:
            await self._settle(ctx)
        elif await early < 400 <= ctx.status:
            await self._settle(ctx, failure=True)
        try:
            if self.recorder is not None:
                await self.recorder.record(ctx)
        finally:
            self._observe(ctx)

    async def _settle(self, ctx: Context, *, failure: bool = False) -> int:
        """Every settler's ``settle`` (or ``settle_failure``); the status it booked."""
        status = ctx.status
        for settler in self.settlers:
            try:
                await (settler.settle_failure(ctx) if failure else settler.settle(ctx))
            except Exception as e:  # noqa: BLE001 - accounting must never cost the audit record
                log.error("settling in %s failed: %s", settler.name, type(e).__name__)
        return status

    def _observe(self, ctx: Context) -> None:
        for observer in self.observers:
            try:
                observer.observe(ctx)
            except Exception as e:  # noqa: BLE001 - metrics never fail a request
                log.error("observing in %s failed: %s", observer.name, type(e).__name__)


async def _from_provider(told: set[int], chunks: AsyncIterator[Chunk]) -> AsyncIterator[Chunk]:
    """The provider's chunks; an adapter's unexpected error becomes an UpstreamError, and
    no response stage above takes the blame for what broke below it."""
    try:
        async for chunk in chunks:
            yield chunk
    except ApplianceError as e:
        told.add(id(e))
        raise
    except Exception as e:  # noqa: BLE001 - the answer broke off: the caller gets an error event
        log.error("the provider's stream failed: %s", type(e).__name__)
        err = UpstreamError("The provider's answer broke off; the rest of it was withheld.")
        told.add(id(err))
        raise err from None


async def _guarded(
    ctx: Context, stage: ResponseStage, chunks: AsyncIterator[Chunk], told: set[int]
) -> AsyncIterator[Chunk]:
    """A stage's screened stream: what the stage itself raises is attributed to it (a
    verdict naming it), unexpected errors becoming StageFailed; errors from below pass."""
    t0 = time.perf_counter()
    try:
        async for chunk in chunks:
            yield chunk
    except ApplianceError as e:
        if id(e) not in told:
            told.add(id(e))
            ctx.verdicts.append(_failed_verdict(stage.name, e, time.perf_counter() - t0))
        raise
    except Exception as e:  # noqa: BLE001 - fail closed: the rest of the answer is withheld
        log.error("stage %s failed while streaming: %s", stage.name, type(e).__name__)
        ctx.verdicts.append(_error_verdict(stage.name, e, time.perf_counter() - t0))
        err = StageFailed(f"The {stage.name} stage failed; the rest of the answer was withheld.")
        told.add(id(err))
        raise err from None


def _failed_verdict(stage: str, e: ApplianceError, duration_s: float) -> Verdict:
    """A stage ended the request with an ApplianceError: a refusal (401/403/429) or a
    failure, with the error's own reasons (policy texts, never request content)."""
    outcome: StageOutcome = "deny" if e.status in (401, 403, 429) else "error"
    reasons = e.reasons or ((e.code or e.type),)
    return Verdict(stage, outcome, reasons, duration_s=duration_s)


def _error_verdict(stage: str, e: Exception, duration_s: float) -> Verdict:
    """A stage raised something unexpected: the record names the stage and the error's
    type (never its message, which may quote content)."""
    return Verdict(stage, "error", (f"stage_failed:{type(e).__name__}",), duration_s=duration_s)


def build_pipeline(
    config: Config, parts: Components, authenticate: RequestStage
) -> tuple[Pipeline, list[Lifecycle]]:
    """The pipeline of the switched-on stages, and what of them must be started and closed.

    Every stage is checked against its protocol here, and its optional hooks (settle,
    observe, start/aclose) are found by protocol, once, so that a stage that lacks what
    it claims fails the start rather than a request.
    """
    steps: list[list[RequestStage]] = []
    for entry in REQUEST_STAGES:
        if not enabled(config, entry):
            continue
        stage = _checked(entry, entry.build(config, parts), RequestStage)
        if steps and entry.with_previous:
            steps[-1].append(stage)
        else:
            steps.append([stage])
    response = tuple(
        _checked(entry, entry.build(config, parts), ResponseStage)
        for entry in RESPONSE_STAGES
        if enabled(config, entry)
    )
    recorder = (
        _checked(RECORDER, RECORDER.build(config, parts), Recorder)
        if enabled(config, RECORDER)
        else None
    )
    request = [s for step in steps for s in step]
    everything: list[object] = [*request, *response, recorder, *parts.observers]
    pipeline = Pipeline(
        authenticate=authenticate,
        request_steps=tuple(tuple(step) for step in steps),
        response_stages=response,
        recorder=recorder,
        router=parts.router,
        settlers=tuple(o for o in everything if isinstance(o, Settler)),
        observers=tuple(o for o in everything if isinstance(o, Observer)),
        reporters=tuple(o for o in everything if isinstance(o, Reporter)),
    )
    owned: list[object] = [*request, *response, recorder]
    return pipeline, [o for o in owned if isinstance(o, Lifecycle)]


def answer_text(obj: dict[str, Any], *, chunk: bool = False) -> str:
    """The text of a whole response, or of one stream chunk (content, tool arguments)."""
    return "".join(text for _, text in (delta_texts(obj) if chunk else choice_texts(obj)))


def usage_of(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    return Usage(
        prompt_tokens=int(raw.get("prompt_tokens") or 0),
        completion_tokens=int(raw.get("completion_tokens") or 0),
    )
