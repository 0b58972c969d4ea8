"""The ordered pipeline. Reading the three lists below tells what happens to a request.

Request stages run in order before the model is called; any of them may deny.
Response stages screen what comes back, whole or chunk by chunk. The recorder runs
after every request, whatever happened. Each entry names the ``[pipeline]`` switch that
turns it off (None: always on) and where its class lives; classes load lazily so a
switched-off stage costs nothing, not even its imports.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from appliance.config import Config
from appliance.errors import ApplianceError, PermissionDenied, StageFailed
from appliance.pipeline.context import Context, Usage
from appliance.pipeline.router import Operation, Router
from appliance.pipeline.stage import Chunk, Recorder, RequestStage, ResponseStage
from appliance.risk.text import choice_texts, delta_texts

log = logging.getLogger(__name__)

#: ``ctx.state`` key of the settlement ``complete`` starts while the answer is screened.
_SETTLING = "pipeline.settling"
#: Settlements in flight (the event loop keeps only weak references to tasks).
_RUNNING: set[asyncio.Future[int]] = set()

#: (stage name, [pipeline] switch or None, "module:Class"). Order is the pipeline order.
REQUEST_STAGES: tuple[tuple[str, str | None, str], ...] = (
    ("pii_detect", "redact", "appliance.pipeline.pii_detect:PiiDetect"),
    ("classify", "classify", "appliance.pipeline.classify:ClassifyStage"),
    ("decide", "decide", "appliance.pipeline.decide:DecideStage"),
    ("limits", "limits", "appliance.pipeline.limits:LimitsStage"),
    ("redact", "redact", "appliance.pipeline.redact:Redact"),
)
#: Request stages that only read the request and so run together with the stage before
#: them (PII analysis in its worker processes while the risk model runs in a thread).
RUNS_WITH_PREVIOUS = frozenset({"classify"})
RESPONSE_STAGES: tuple[tuple[str, str | None, str], ...] = (
    ("pii_output", "redact", "appliance.pipeline.pii_output:PiiOutput"),
    ("safety_output", "screen_output", "appliance.pipeline.safety_output:SafetyOutputStage"),
    ("disclosure", "screen_output", "appliance.pipeline.disclosure:DisclosureStage"),
)
RECORDER: tuple[str, str | None, str] = (
    "record",
    "record",
    "appliance.pipeline.record:RecordStage",
)


#: Read-only components that one stage loads and a later stage reuses (one Presidio worker
#: pool, one classifier model): stage -> (the stage that loads it, its attribute).
SHARED_FROM: dict[str, tuple[str, str]] = {
    "pii_output": ("pii_detect", "pool"),
    "safety_output": ("classify", "classifier"),
}


async def start_stages(stages: list[Any]) -> None:
    """Start the stages, handing shared components to the stages reusing them.

    Stages that load their own components start together: the PII worker processes, the
    risk model (in a thread) and the policy engine load side by side, not one after the
    other (on two cores that halves a start). Stages reusing a component start after its
    owner. Every start runs to its end before the first failure is raised, so the
    caller's cleanup never closes a stage that is still starting.
    """
    by_name = {stage.name: stage for stage in stages}
    reusing = [s for s in stages if SHARED_FROM.get(s.name, ("",))[0] in by_name]
    owning = [s for s in stages if s not in reusing]
    outcomes = await asyncio.gather(*(s.start() for s in owning), return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    for stage in reusing:
        owner, attribute = SHARED_FROM[stage.name]
        await stage.start(getattr(by_name[owner], attribute))


def _enabled(config: Config, switch: str | None) -> bool:
    return switch is None or bool(getattr(config.pipeline, switch))


def _instantiate(spec: str, config: Config) -> Any:
    module, _, cls = spec.partition(":")
    return getattr(importlib.import_module(module), cls)(config)


def build_stages(config: Config) -> tuple[list[Any], list[Any], Any | None]:
    """Instantiate the switched-on stages (cheap constructors; ``start`` loads them)."""
    request = [
        _instantiate(spec, config) for _, sw, spec in REQUEST_STAGES if _enabled(config, sw)
    ]
    response = [
        _instantiate(spec, config) for _, sw, spec in RESPONSE_STAGES if _enabled(config, sw)
    ]
    recorder = _instantiate(RECORDER[2], config) if _enabled(config, RECORDER[1]) else None
    return request, response, recorder


@dataclass(frozen=True)
class Pipeline:
    authenticate: RequestStage
    request_stages: tuple[RequestStage, ...]
    response_stages: tuple[ResponseStage, ...]
    recorder: Recorder | None
    router: Router

    async def authenticate_caller(self, ctx: Context) -> None:
        """Stage 1, run before the body is even parsed: no key, no further work."""
        await self._run_stage(self.authenticate, ctx)

    async def prepare(self, ctx: Context, op: Operation) -> None:
        """Resolve the model and run every request stage; raise on deny."""
        if ctx.principal is None:
            await self.authenticate_caller(ctx)
        self.router.resolve(ctx, ctx.requested_model, op)
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
        self._obey(ctx, op)

    @cached_property
    def request_steps(self) -> tuple[tuple[RequestStage, ...], ...]:
        """Request stages grouped into steps; the stages of one step run concurrently."""
        steps: list[list[RequestStage]] = []
        for stage in self.request_stages:
            if steps and stage.name in RUNS_WITH_PREVIOUS:
                steps[-1].append(stage)
            else:
                steps.append([stage])
        return tuple(tuple(step) for step in steps)

    async def _run_stage(self, stage: RequestStage, ctx: Context) -> None:
        t0 = time.perf_counter()
        try:
            verdict = await stage.run(ctx)
        except ApplianceError:
            raise
        except Exception as e:  # noqa: BLE001 - fail closed: a broken control never lets a request through
            log.error("stage %s failed: %s", stage.name, type(e).__name__)
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

    def _obey(self, ctx: Context, op: Operation) -> None:
        """Apply routing obligations set by the policy decision."""
        ob = ctx.obligations
        forced = ob.get("force_local_model")
        if forced and forced != ctx.model:
            self.router.resolve(ctx, str(forced), op)
        cap = ob.get("max_tokens")
        if isinstance(cap, int) and op != "embeddings":
            for field in ("max_tokens", "max_completion_tokens"):
                if field in ctx.body and isinstance(ctx.body[field], int):
                    ctx.body[field] = min(ctx.body[field], cap)
            if "max_tokens" not in ctx.body and "max_completion_tokens" not in ctx.body:
                ctx.body["max_tokens"] = cap
        if ctx.stream and ob.get("deny_streaming"):
            raise PermissionDenied(
                "Request denied by policy: streaming is not allowed for this request; "
                "retry with stream=false.",
                reasons=("streaming denied",),
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
            settling = ctx.state[_SETTLING] = asyncio.ensure_future(self._settle(ctx))
            _RUNNING.add(settling)  # held until done, even if the caller goes away
            settling.add_done_callback(_RUNNING.discard)
        for stage in self.response_stages:
            response = await self._screen(stage, ctx, response)
        if ctx.obligations.get("store_payloads"):
            ctx.state["payload"] = {"request": upstream_body, "response": answer_text(response)}
        return response

    async def _screen(
        self, stage: ResponseStage, ctx: Context, response: dict[str, Any]
    ) -> dict[str, Any]:
        try:
            return await stage.screen(ctx, response)
        except ApplianceError:
            raise
        except Exception as e:  # noqa: BLE001 - fail closed: the answer is withheld
            log.error("stage %s failed: %s", stage.name, type(e).__name__)
            raise StageFailed(f"The {stage.name} stage failed; the answer was withheld.") from None

    def stream(self, ctx: Context, op: Operation) -> AsyncIterator[Chunk]:
        """Chunks from upstream through every response stage; call after ``prepare``."""
        chunks: AsyncIterator[Chunk] = self._metered(ctx, self.router.stream(ctx, op))
        for stage in self.response_stages:
            chunks = stage.screen_stream(ctx, chunks)
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
        ctx.state["payload"] = {"request": request, "response": "".join(parts)}

    async def _metered(self, ctx: Context, chunks: AsyncIterator[Chunk]) -> AsyncIterator[Chunk]:
        async for chunk in chunks:
            if chunk.get("usage"):
                ctx.usage = usage_of(chunk["usage"])
            yield chunk

    async def finish(self, ctx: Context) -> None:
        """Settle usage and cost, then record the request, whatever happened to it.

        Stages that account for what a request consumed implement ``settle(ctx)`` (it runs
        before the record is written, so that the record carries the cost; ``complete``
        starts it early), ``settle_failure(ctx)`` (the answer failed after its usage was
        booked) and ``observe(ctx)`` (metrics, once the request is recorded).
        """
        ctx.finished_at = time.time()
        early: asyncio.Future[int] | None = ctx.state.pop(_SETTLING, None)
        if early is None:
            await self._settle(ctx)
        elif await early < 400 <= ctx.status:
            await self._settle(ctx, failure=True)
        try:
            if self.recorder is not None:
                await self.recorder.record(ctx)
        finally:  # a request that could not be recorded still counts in the metrics
            self._observe(ctx)

    async def _settle(self, ctx: Context, *, failure: bool = False) -> int:
        """Every settler's ``settle`` (or ``settle_failure``); the status it booked."""
        status = ctx.status
        for stage in self.settlers:
            try:
                await (stage.settle_failure(ctx) if failure else stage.settle(ctx))
            except Exception as e:  # noqa: BLE001 - accounting must never cost the audit record
                log.error("settling in %s failed: %s", stage.name, type(e).__name__)
        return status

    def _observe(self, ctx: Context) -> None:
        for stage in self.observers:
            try:
                stage.observe(ctx)
            except Exception as e:  # noqa: BLE001 - metrics never fail a request
                log.error("observing in %s failed: %s", stage.name, type(e).__name__)

    @cached_property
    def settlers(self) -> tuple[Any, ...]:
        return tuple(s for s in self.request_stages if hasattr(s, "settle"))

    @cached_property
    def observers(self) -> tuple[Any, ...]:
        return tuple(s for s in self.request_stages if hasattr(s, "observe"))


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

