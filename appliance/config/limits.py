"""Configuration of metering, budgets and rate limits (``[limits]``).

Limits come from four places and every one that applies is enforced (the tightest
wins): the tenant (its plan, overlaid by ``[limits.tenants.<tenant>]``), the department
(``[limits.departments."<tenant>/<department>"]``), the user
(``[limits.users."<tenant>/<user>"]``), the application
(``[limits.applications."<tenant>/<application>"]``) and the API key (set at
``appliance keys create --rpm --tpm --budget-usd-month --budget-usd-day``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LimitSpec(_Frozen):
    """Limits of one subject; an unset field means no limit of that kind."""

    #: Requests per minute (sliding 60-second window).
    rpm: int | None = Field(default=None, ge=0)
    #: Tokens per minute, prompt plus completion (sliding 60-second window).
    tpm: int | None = Field(default=None, ge=0)
    #: Hard budget per UTC day in USD: requests are refused with 429 once it is spent.
    budget_usd_day: float | None = Field(default=None, ge=0)
    #: Hard budget per UTC calendar month in USD.
    budget_usd_month: float | None = Field(default=None, ge=0)
    #: Soft budget per day in USD: crossing it notifies (webhook and log), once per day.
    soft_budget_usd_day: float | None = Field(default=None, ge=0)
    #: Soft budget per month in USD: crossing it notifies, once per month.
    soft_budget_usd_month: float | None = Field(default=None, ge=0)


class TenantLimits(LimitSpec):
    #: The tenant's plan (service tier) from the plans file; None: ``default_plan``.
    plan: str | None = None


class LimitsConfig(_Frozen):
    #: Enforce rate limits and hard budgets. False still meters usage, cost and metrics.
    enabled: bool = True
    #: "local": SQLite file in the data directory (one host); "redis": shared by replicas.
    backend: Literal["local", "redis"] = "local"
    #: Redis server for the "redis" backend (redis://, rediss:// or unix:// URL, no password).
    redis_url: str = "redis://127.0.0.1:6379/0"
    #: Environment variable holding the Redis password (unset: no AUTH).
    redis_password_env: str | None = "APPLIANCE_REDIS_PASSWORD"
    #: Prefix of every Redis key, so several appliances can share one Redis server.
    redis_prefix: str = "appliance"
    #: Connections to Redis per server process (requests beyond wait for one).
    redis_max_connections: int = Field(default=64, ge=1)
    #: Counter store of the "local" backend; relative paths are under the data directory.
    db_file: Path = Path("limits.db")
    #: Price table (YAML); None: the built-in ``appliance/metering/data/prices.yaml``.
    prices_file: Path | None = None
    #: Plans (service tiers, YAML); None: the built-in ``appliance/metering/data/plans.yaml``.
    plans_file: Path | None = None
    #: Plan of tenants that name none (None: such tenants have no plan).
    default_plan: str | None = None
    #: Soft budget as a fraction of the hard budget where no soft budget is set.
    soft_ratio: float = Field(default=0.8, gt=0, le=1)
    #: URL that receives soft/hard budget notifications as JSON POSTs (None: log only).
    webhook_url: str | None = None
    #: Upper bound on one webhook call, in seconds.
    webhook_timeout_s: float = Field(default=5.0, gt=0)
    #: Require the admin key (Bearer) to read GET /metrics.
    metrics_require_admin_key: bool = False
    #: Emit OpenTelemetry spans (request + one per stage) through the global tracer
    #: provider; needs opentelemetry-api (and an SDK/exporter the operator configures).
    otel_traces: bool = False
    #: How long hourly usage rows are kept for ``appliance usage``, in days.
    retention_days: int = Field(default=400, ge=1)
    #: Limits and plan per tenant: [limits.tenants.NAME] rpm, tpm, budgets, plan.
    tenants: dict[str, TenantLimits] = {}
    #: Keyed "<tenant>/<department>".
    departments: dict[str, LimitSpec] = {}
    #: Keyed "<tenant>/<user>".
    users: dict[str, LimitSpec] = {}
    #: Keyed "<tenant>/<application>".
    applications: dict[str, LimitSpec] = {}
    #: MCP tools, keyed "<server>/<tool>": the limits apply to each tenant's calls of it.
    tools: dict[str, LimitSpec] = {}

    @field_validator("tools")
    @classmethod
    def _server_and_tool(cls, v: dict[str, LimitSpec]) -> dict[str, LimitSpec]:
        for name in v:
            server, sep, tool = name.partition("/")
            if not sep or not server or not tool:
                raise ValueError(f"{name!r}: write the key as \"<server>/<tool>\"")
        return v

    @field_validator("departments", "users", "applications")
    @classmethod
    def _scoped_by_tenant(cls, v: dict[str, LimitSpec]) -> dict[str, LimitSpec]:
        for name in v:
            tenant, sep, rest = name.partition("/")
            if not sep or not tenant or not rest:
                raise ValueError(f"{name!r}: write the key as \"<tenant>/<name>\"")
        return v
