"""Configuration of AI Act risk tagging and safety screening (``[risk]``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RiskConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
