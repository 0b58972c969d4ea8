"""What travels with one request through the pipeline, and what each stage leaves behind."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Route = Literal["chat.completions", "completions", "embeddings", "messages", "moderations"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: resolved from the API key by the authenticate stage."""

    key_id: str
    tenant: str
    user: str
    department: str | None = None
    roles: tuple[str, ...] = ()
    application: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one stage decided, and why. The audit record is built from these.

    ``facts`` never holds raw values (no prompt text, no PII, no keys): only counts,
    types, scores, identifiers and revisions.
    """

    stage: str
    outcome: Literal["continue", "deny"] = "continue"
    reasons: tuple[str, ...] = ()
    facts: Mapping[str, object] = field(default_factory=dict)
    duration_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True)
class Context:
    """One request's state. Stages read and amend it; only the pipeline creates it.

    ``body`` is the request in the canonical (OpenAI) shape; the Anthropic route
    translates into it on the way in and out of it on the way back. Stages that rewrite
    content (redaction) rewrite ``body`` in place.
    """

    request_id: str
    route: Route
    body: dict[str, Any]
    api_key: str | None
    stream: bool = False
    #: Which API shape the caller used ("openai" or "anthropic"): decides error rendering.
    api: Literal["openai", "anthropic"] = "openai"
    started_at: float = field(default_factory=time.time)
    principal: Principal | None = None
    #: Model the caller asked for, and the one finally used (after policy or fallback).
    requested_model: str = ""
    model: str = ""
    provider: str = ""
    provider_region: str = ""
    verdicts: list[Verdict] = field(default_factory=list)
    #: Obligations set by the policy decision, obeyed by later stages.
    obligations: dict[str, Any] = field(default_factory=dict)
    #: The policy's cap on answer tokens when the caller asked for none: the router applies
    #: it per model, clamped to what that model's context leaves (never an error).
    output_ceiling: int | None = None
    #: Per-request state owned by individual stages (e.g. the PII placeholder vault).
    #: Keyed by stage name; never shared across requests.
    state: dict[str, Any] = field(default_factory=dict)
    usage: Usage = Usage()
    cost_usd: float = 0.0
    #: Extra response headers set by stages (x-appliance-risk, disclosure, rate limits).
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200
    error: str | None = None
    finished_at: float | None = None

    def fact(self, stage: str, name: str, default: object = None) -> object:
        """The named fact of the latest verdict of ``stage``."""
        for v in reversed(self.verdicts):
            if v.stage == stage:
                return v.facts.get(name, default)
        return default
