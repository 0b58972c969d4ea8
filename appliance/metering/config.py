"""Configuration of metering, budgets and rate limits (``[limits]``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class LimitsConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
