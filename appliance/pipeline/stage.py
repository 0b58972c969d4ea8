"""The protocols every pipeline stage implements.

A request stage runs before the model is called and may deny. A response stage screens
what comes back: a whole response, or a stream chunk by chunk (an async iterator in,
an async iterator out, never buffered whole). The recorder runs after every request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol, runtime_checkable

from appliance.pipeline.context import Context, Verdict

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
        """Screen (and possibly rewrite) a complete response in the canonical shape."""
        ...

    def screen_stream(self, ctx: Context, chunks: AsyncIterator[Chunk]) -> AsyncIterator[Chunk]:
        """Screen a stream of canonical chunks, yielding as early as safely possible."""
        ...


@runtime_checkable
class Recorder(Protocol):
    name: str

    async def record(self, ctx: Context) -> None:
        """Persist what happened to the request; returns once it is durable."""
        ...
