"""Configuration of the PII stage (``[pii]`` in the TOML file)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class PiiConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
