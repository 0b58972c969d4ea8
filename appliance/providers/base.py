"""The provider protocol: one adapter per upstream wire format.

Requests and responses are in the canonical OpenAI shape (dicts, exactly as the OpenAI
REST API defines them); each adapter translates to and from its provider's wire format.
``body["model"]`` already holds the upstream model name. Streams yield OpenAI
``chat.completion.chunk`` (or ``text_completion``) dicts; the last chunk carries
``usage`` whenever the provider reports it. Adapters raise only ApplianceErrors:
``UpstreamError(retryable=True)`` for 429/5xx/connection failures, ``UpstreamTimeout``
for timeouts, ``UnsupportedOperation`` for what the provider cannot do. Retries with
back-off and fallback to the next model are done by the router, not by adapters.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol, runtime_checkable

import aiohttp

Body = dict[str, Any]


class Provider(Protocol):
    name: str
    kind: str
    region: str

    async def chat(self, body: Body) -> Body:
        """POST /chat/completions without streaming: a ``chat.completion`` object."""
        ...

    def stream_chat(self, body: Body) -> AsyncIterator[Body]:
        """Streaming chat: ``chat.completion.chunk`` objects, usage on the last."""
        ...

    async def completions(self, body: Body) -> Body:
        """Legacy POST /completions: a ``text_completion`` object."""
        ...

    def stream_completions(self, body: Body) -> AsyncIterator[Body]:
        ...

    async def embeddings(self, body: Body) -> Body:
        """POST /embeddings: a ``list`` object of ``embedding`` items, floats."""
        ...

    async def aclose(self) -> None:
        ...


@runtime_checkable
class KnowsOutputRoom(Protocol):
    """A provider that knows exactly how many answer tokens a request's context leaves
    (local models count with their own tokenizer); others are estimated by the router."""

    async def output_room(self, body: Body) -> int | None:
        """Context tokens left after the prompt; None when the body cannot be measured."""
        ...


@runtime_checkable
class SpeaksResponses(Protocol):
    """A provider whose API has OpenAI's Responses endpoint (``/responses``): requests that
    came in on ``/v1/responses`` go to it natively instead of through chat. Both methods
    take the canonical chat body (redacted, as every stage left it) and give canonical
    answers back, so the response stages see one shape; the adapter translates."""

    async def respond(self, body: Body) -> Body:
        """POST /responses (``store: false``): a ``chat.completion`` object."""
        ...

    def stream_respond(self, body: Body) -> AsyncIterator[Body]:
        """Streaming POST /responses: ``chat.completion.chunk`` objects, usage on the last."""
        ...


@runtime_checkable
class RunsBatches(Protocol):
    """A provider with a batch API (OpenAI's ``/files`` + ``/batches``): the appliance's
    batches send it the lines the request stages let through, redacted, in one batch of
    its own, and screen and record each answer when the provider's batch is done."""

    async def submit_batch(self, path: str, lines: list[tuple[str, Body]]) -> str:
        """Upload the lines (custom id, upstream body) for ``path`` (e.g.
        ``/v1/chat/completions``) and start a batch; the provider's batch id."""
        ...

    async def batch_results(self, batch_id: str) -> dict[str, tuple[int, Body]] | None:
        """None while the batch runs; then custom id -> (HTTP status, response body), for
        the lines the provider answered (a failed or expired batch answers none)."""
        ...

    async def cancel_batch(self, batch_id: str) -> None:
        ...


class ProviderFactory(Protocol):
    def __call__(self, name: str, config: Any, http: aiohttp.ClientSession) -> Provider: ...
