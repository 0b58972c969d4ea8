"""The protocols of the pipeline: what a stage is, and the hooks it may also offer.

A request stage runs before the model is called and may deny. A response stage screens
what comes back: a whole response, or a stream chunk by chunk (an async iterator in,
an async iterator out, never buffered whole). The recorder runs after every request.
Besides its one protocol, a component may implement the optional hooks below; the
pipeline sorts its components by them once, when it is built (``isinstance`` against
these runtime-checkable protocols), so a misspelt hook is found at start, not ignored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol, runtime_checkable

from appliance.core.context import Context
from appliance.core.findings import Verdict
from appliance.core.readiness import Readiness

Chunk = dict[str, Any]


@runtime_checkable
class RequestStage(Protocol):
    name: str

    async def run(self, ctx: Context) -> Verdict:
        """Inspect or amend ``ctx`` before the model is called; deny by returning
        ``Verdict(outcome="deny", reasons=...)`` or raising an ApplianceError."""
        ...


@runtime_checkable
class ResponseStage(Protocol):
    name: str

    async def screen(self, ctx: Context, response: dict[str, Any]) -> dict[str, Any]:
        """Screen (and possibly rewrite) a complete response in the canonical shape;
        append the stage's verdict to ``ctx.verdicts``."""
        ...

    def screen_stream(self, ctx: Context, chunks: AsyncIterator[Chunk]) -> AsyncIterator[Chunk]:
        """Screen a stream of canonical chunks, yielding as early as safely possible;
        append the stage's verdict once the stream has ended."""
        ...


@runtime_checkable
class Recorder(Protocol):
    name: str

    async def record(self, ctx: Context) -> None:
        """Persist what happened to the request; returns once it is durable."""
        ...


@runtime_checkable
class Gate(Protocol):
    """A part without which no request may go ahead (the audit log): asked before the
    request stages, so a request it could not serve is refused before anything goes
    upstream."""

    def unready(self) -> str | None:
        """Why requests must be refused now (never request content), or None. Cheap:
        asked on every request."""
        ...


@runtime_checkable
class AdminRecorder(Protocol):
    """A recorder that also chains administrative acts (console sign-ins and actions)
    into this process's audit segment; returns once the row is durable."""

    async def record_admin(self, row: dict[str, Any]) -> None: ...


@runtime_checkable
class Lifecycle(Protocol):
    """Owns resources (processes, ONNX sessions, connections): opened before the first
    request, closed after the last, in reverse order."""

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Settler(Protocol):
    """Accounts for what a request consumed; runs before the record is written, so that
    the record carries the cost."""

    name: str

    async def settle(self, ctx: Context) -> None:
        """Book the request's real usage and cost (once per request)."""
        ...

    async def settle_failure(self, ctx: Context) -> None:
        """The answer failed after its usage was booked: count it as failed."""
        ...


@runtime_checkable
class Observer(Protocol):
    """Watches finished requests (metrics, traces), after their record; never fails one."""

    name: str

    def observe(self, ctx: Context) -> None: ...


@runtime_checkable
class Reporter(Protocol):
    """Reports its readiness (shared engines, loaded policy, the audit archive)."""

    async def readiness(self) -> Readiness: ...
