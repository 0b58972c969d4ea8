"""Configuration of the audit log (``[audit]`` in the TOML file)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class AuditConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
