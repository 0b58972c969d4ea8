"""Plans (service tiers) as data: a tenant's limits, discount and included volume."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from appliance.errors import ConfigError
from appliance.config.limits import LimitsConfig, LimitSpec
from appliance.metering.prices import load_checked


class Plan(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    description: str = ""
    limits: LimitSpec = LimitSpec()
    #: Fraction taken off list prices.
    discount: float = Field(default=0.0, ge=0, lt=1)
    #: Tokens included each calendar month; usage beyond is overage.
    included_tokens_month: int = Field(default=0, ge=0)


class PlanFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    plans: dict[str, Plan] = {}


class Plans:
    def __init__(self, data: PlanFile, config: LimitsConfig) -> None:
        self.data = data
        self._config = config
        named = {t.plan for t in config.tenants.values() if t.plan} | (
            {config.default_plan} if config.default_plan else set()
        )
        unknown = sorted(n for n in named if n not in data.plans)
        if unknown:
            raise ConfigError(
                f"limits: unknown plan(s) {', '.join(unknown)} "
                f"(the plans file defines: {', '.join(sorted(data.plans)) or 'none'})"
            )

    @classmethod
    def load(cls, path: Path | None, config: LimitsConfig) -> Plans:
        return cls(load_checked(PlanFile, path, "plans.yaml"), config)

    def plan_name(self, tenant: str) -> str | None:
        own = self._config.tenants.get(tenant)
        return (own.plan if own and own.plan else None) or self._config.default_plan

    def of(self, tenant: str) -> Plan | None:
        name = self.plan_name(tenant)
        return self.data.plans.get(name) if name else None
