"""What travels with one request through the pipeline, and what each stage leaves behind."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from appliance.core.findings import Findings, Verdict

Route = Literal[
    "chat.completions",
    "completions",
    "embeddings",
    "messages",
    "moderations",
    #: OpenAI's Responses API (``/v1/responses``), translated to chat for the stages.
    "responses",
    #: One MCP ``tools/call`` through the gateway (``/mcp/NAME``).
    "mcp.tools/call",
]
#: What the model is asked to do (an Anthropic message is a chat).
Operation = Literal["chat", "completions", "embeddings"]

F = TypeVar("F", bound=Findings)
T = TypeVar("T")


class StateKey(Generic[T]):
    """A typed slot of one request's private state (as aiohttp's ``AppKey``): the module
    that owns a piece of per-request state declares its key once, and every reader gets
    its type back."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"StateKey({self.name!r})"


@dataclass(frozen=True, slots=True)
class Payload:
    """The prompt and answer kept (encrypted) in the audit record when the policy says so."""

    request: dict[str, Any]
    response: str


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: resolved from the API key by the authenticate stage."""

    key_id: str
    tenant: str
    user: str
    department: str | None = None
    roles: tuple[str, ...] = ()
    application: str | None = None
    #: Limits set on the key itself (rate, tokens, budget), over the tenant's and plan's.
    limits: Mapping[str, Any] = field(default_factory=dict)


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
    #: What the model is asked to do; set when the pipeline prepares the request.
    operation: Operation = "chat"
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
    #: Per-request state owned by individual stages (e.g. the PII placeholder vault),
    #: under typed keys (``get``/``put``/``pop``); never shared across requests.
    state: dict[StateKey[Any], Any] = field(default_factory=dict)
    #: Prompt and answer for the audit record, when the policy asks to store payloads.
    payload: Payload | None = None
    usage: Usage = Usage()
    cost_usd: float = 0.0
    #: Extra response headers set by stages (x-appliance-risk, disclosure, rate limits).
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200
    error: str | None = None
    finished_at: float | None = None

    def get(self, key: StateKey[T]) -> T | None:
        value: T | None = self.state.get(key)
        return value

    def put(self, key: StateKey[T], value: T) -> None:
        self.state[key] = value

    def pop(self, key: StateKey[T]) -> T | None:
        value: T | None = self.state.pop(key, None)
        return value

    def findings(self, kind: type[F]) -> F | None:
        """The latest findings of this type (each stage's findings have their own type)."""
        for v in reversed(self.verdicts):
            if isinstance(v.findings, kind):
                return v.findings
        return None
