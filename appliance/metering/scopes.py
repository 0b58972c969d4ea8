"""Who a request is counted against, and which limits apply to each of them."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from appliance.config.limits import LimitsConfig, LimitSpec
from appliance.metering.plans import Plans
from appliance.core.context import Principal

Kind = Literal["tenant", "department", "user", "application", "key", "tool"]


@dataclass(frozen=True, slots=True)
class Scope:
    kind: Kind
    #: "acme" for a tenant, "acme/finance" for a department, the key id for a key.
    subject: str
    limits: LimitSpec

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.subject}"

    def described(self) -> str:
        """For messages to the caller: names what it may know, never ids of others."""
        if self.kind == "key":
            return "this API key"
        if self.kind == "user":
            return "your user"
        name = self.subject.partition("/")[2] if self.kind != "tenant" else self.subject
        return f"{self.kind} '{name}'"

    def logged(self) -> str:
        """For logs: users are pseudonymised, key ids shortened."""
        if self.kind == "user":
            digest = hashlib.sha256(self.subject.encode()).hexdigest()[:10]
            return f"user #{digest}"
        if self.kind == "key":
            return f"key {self.subject[:6]}…"
        return f"{self.kind} {self.subject}"


def _overlay(base: LimitSpec | None, over: LimitSpec | None) -> LimitSpec:
    if base is None:
        return over if over is not None else LimitSpec()
    if over is None:
        return base
    merged = base.model_dump()
    merged.update({f: getattr(over, f) for f in over.model_fields_set if f in LimitSpec.model_fields})
    return LimitSpec.model_validate(merged)


def key_spec(raw: Mapping[str, Any] | None) -> LimitSpec:
    """The limits stored with an API key (``appliance keys create --rpm ...``)."""
    fields = {k: v for k, v in (raw or {}).items() if k in LimitSpec.model_fields and v is not None}
    return LimitSpec.model_validate(fields)


def scopes_of(
    principal: Principal,
    key_limits: Mapping[str, Any] | None,
    config: LimitsConfig,
    plans: Plans,
    tool: str | None = None,
) -> list[Scope]:
    """Every subject the request counts against, each with its effective limits.

    ``tool`` ("<server>/<tool>") is the MCP tool a tool call asks for: a tool with limits
    of its own (``[limits.tools]``) is counted per tenant as one more scope."""
    t = principal.tenant
    plan = plans.of(t)
    scopes = [
        Scope("tenant", t, _overlay(plan.limits if plan else None, config.tenants.get(t))),
    ]
    if principal.department:
        sub = f"{t}/{principal.department}"
        scopes.append(Scope("department", sub, config.departments.get(sub) or LimitSpec()))
    sub = f"{t}/{principal.user}"
    scopes.append(Scope("user", sub, config.users.get(sub) or LimitSpec()))
    if principal.application:
        sub = f"{t}/{principal.application}"
        scopes.append(Scope("application", sub, config.applications.get(sub) or LimitSpec()))
    scopes.append(Scope("key", principal.key_id, key_spec(key_limits)))
    if tool is not None and tool in config.tools:
        scopes.append(Scope("tool", f"{t}/{tool}", config.tools[tool]))
    return scopes
