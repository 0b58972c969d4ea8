"""Stages 5 and 6: pick the model's provider, call it, retry with back-off, fall back.

Retries happen only on retryable upstream failures (429, 5xx, connection errors,
timeouts) and, for streams, only before the first chunk reached the caller. When a
model's retries are spent, the next model in its ``fallbacks`` is tried.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from appliance.config import Config, ModelConfig
from appliance.errors import (
    ApplianceError,
    InvalidRequest,
    ModelNotFound,
    UnsupportedOperation,
    UpstreamError,
)
from appliance.core.context import Context, Operation
from appliance.core.tokens import estimate_prompt
from appliance.providers.base import KnowsOutputRoom, Provider, RunsBatches, SpeaksResponses

log = logging.getLogger(__name__)

#: The request fields that cap the answer's tokens (OpenAI's older and newer name).
OUTPUT_FIELDS = ("max_tokens", "max_completion_tokens")

#: Which model tasks can serve which operation.
_TASKS: dict[Operation, frozenset[str]] = {
    "chat": frozenset({"chat"}),
    "completions": frozenset({"chat", "completion"}),
    "embeddings": frozenset({"embedding"}),
}


class Router:
    def __init__(self, config: Config, providers: dict[str, Provider]) -> None:
        self._config = config
        self._providers = providers

    @property
    def providers(self) -> dict[str, Provider]:
        return self._providers

    def resolve(self, ctx: Context, model: str, op: Operation) -> ModelConfig:
        """Set ctx.model/provider/region for ``model``; 404 if unknown, 400 if wrong task."""
        spec = self._config.models.get(model)
        if spec is None or spec.provider not in self._providers:
            raise ModelNotFound(
                f"The model '{model}' does not exist or is not served by this appliance.",
                param="model",
            )
        if spec.task not in _TASKS[op]:
            raise UnsupportedOperation(
                f"The model '{model}' is a {spec.task} model and cannot serve {op}.",
                param="model",
            )
        provider = self._providers[spec.provider]
        ctx.model = model
        ctx.provider = spec.provider
        ctx.provider_region = provider.region
        return spec

    def _attempts(self, ctx: Context, op: Operation) -> list[tuple[str, ModelConfig]]:
        spec = self._config.models[ctx.model]
        chain = [(ctx.model, spec)]
        for name in spec.fallbacks:
            fb = self._config.models[name]
            if fb.task in _TASKS[op] and fb.provider in self._providers:
                chain.append((name, fb))
        return chain

    async def _upstream_body(
        self, ctx: Context, name: str, spec: ModelConfig, provider: Provider
    ) -> dict[str, Any]:
        body = dict(ctx.body)
        body["model"] = spec.upstream_model or name
        cap = spec.max_output_tokens
        if cap is not None:
            for field in OUTPUT_FIELDS:
                if isinstance(body.get(field), int) and body[field] > cap:
                    raise InvalidRequest(
                        f"{field} is {body[field]}, above this model's limit of {cap}.",
                        param=field,
                    )
        if ctx.output_ceiling is not None:
            fitted = await _fit_ceiling(ctx.output_ceiling, spec, provider, body)
            if fitted is not None:
                body["max_tokens"] = fitted
        return body

    def _switch(self, ctx: Context, name: str, spec: ModelConfig) -> Provider:
        provider = self._providers[spec.provider]
        ctx.model, ctx.provider, ctx.provider_region = name, spec.provider, provider.region
        return provider

    async def call(self, ctx: Context, op: Operation) -> dict[str, Any]:
        last: UpstreamError | None = None
        for name, spec in self._attempts(ctx, op):
            provider = self._switch(ctx, name, spec)
            body = await self._upstream_body(ctx, name, spec, provider)
            cfg = self._config.providers[spec.provider]
            for attempt in range(cfg.max_retries + 1):
                try:
                    if op == "chat":
                        if ctx.route == "responses" and isinstance(provider, SpeaksResponses):
                            return await provider.respond(body)
                        return await provider.chat(body)
                    if op == "completions":
                        return await provider.completions(body)
                    return await provider.embeddings(body)
                except UpstreamError as e:
                    if not e.retryable:
                        raise _client_error(e) from None
                    last = e
                    await _back_off(spec.provider, cfg, attempt, e)
        assert last is not None
        raise last

    async def batch_target(
        self, ctx: Context, op: Operation
    ) -> tuple[RunsBatches, dict[str, Any]] | None:
        """Where a prepared batch line can go in a provider batch: the model's provider,
        when it runs batches, and the upstream body (no retries nor fallbacks there: a
        line the provider fails is reported failed). None: the line is called directly."""
        if op == "completions" or ctx.route == "responses":
            return None
        spec = self._config.models[ctx.model]
        provider = self._switch(ctx, ctx.model, spec)
        if not isinstance(provider, RunsBatches):
            return None
        return provider, await self._upstream_body(ctx, ctx.model, spec, provider)

    async def stream(self, ctx: Context, op: Operation) -> AsyncIterator[dict[str, Any]]:
        """Yield canonical chunks; retries and fallbacks only before the first chunk."""
        last: UpstreamError | None = None
        for name, spec in self._attempts(ctx, op):
            provider = self._switch(ctx, name, spec)
            body = await self._upstream_body(ctx, name, spec, provider)
            body["stream"] = True
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
            cfg = self._config.providers[spec.provider]
            for attempt in range(cfg.max_retries + 1):
                started = False
                try:
                    source = (
                        provider.stream_completions(body)
                        if op != "chat"
                        else provider.stream_respond(body)
                        if ctx.route == "responses" and isinstance(provider, SpeaksResponses)
                        else provider.stream_chat(body)
                    )
                    async for chunk in source:
                        started = True
                        yield chunk
                    return
                except UpstreamError as e:
                    if started or not e.retryable:
                        raise _client_error(e) from None
                    last = e
                    await _back_off(spec.provider, cfg, attempt, e)
        assert last is not None
        raise last


async def _fit_ceiling(
    ceiling: int, spec: ModelConfig, provider: Provider, body: dict[str, Any]
) -> int | None:
    """The policy's answer cap fitted to this model: never above its output limit, nor
    above the room its context leaves after the prompt (counted exactly where the provider
    can, else estimated). None leaves the body without a cap: the prompt alone fills the
    context, and the provider's own error then says so."""
    cap = min(ceiling, spec.max_output_tokens or ceiling)
    if isinstance(provider, KnowsOutputRoom):
        room = await provider.output_room(body)
    elif spec.context_length is not None:
        room = spec.context_length - estimate_prompt(body)
    else:
        room = None
    if room is None:
        return cap
    return min(cap, room) if room >= 1 else None


async def _back_off(provider: str, cfg: Any, attempt: int, e: UpstreamError) -> None:
    """Log a retryable failure; sleep (exponentially longer) unless retries are spent."""
    log.warning("upstream %s failed (%s), attempt %d", provider, e.code, attempt + 1)
    if attempt < cfg.max_retries:
        await asyncio.sleep(cfg.retry_backoff_s * (2**attempt))


def _client_error(e: UpstreamError) -> ApplianceError:
    """An upstream 400/404/413/422 is the caller's mistake: say so with a 4xx."""
    if not e.retryable and e.upstream_status in (400, 404, 413, 422):
        return InvalidRequest(f"The upstream provider rejected the request: {e.message}")
    return e
