"""Configuration of the shared state of a fleet (``[state]``) and of its failure modes.

One box keeps its control plane (keys, applications) in SQLite under the data directory
and needs none of this. A fleet points every replica at one PostgreSQL database: the DSN
is a secret (it holds the password), so the file names the environment variable that
holds it, never the DSN itself.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StateConfig(_Frozen):
    #: Where keys, applications and their limits live: "sqlite" (``control.db`` in the data
    #: directory, one host) or "postgres" (shared by every replica of a fleet).
    backend: Literal["sqlite", "postgres"] = "sqlite"
    #: Environment variable holding the PostgreSQL DSN ("postgresql://user:pw@host/db").
    dsn_env: str = "APPLIANCE_STATE_DSN"
    #: Bound on connecting to PostgreSQL and on one query, in seconds.
    timeout_s: float = Field(2.0, gt=0)
    #: While PostgreSQL is unreachable, keys verified before the outage keep working for
    #: this many seconds (0: fail closed at once: every request gets 503). New or changed
    #: keys are refused either way: the database is the only place they can be checked.
    outage_grace_s: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _dsn_env_named(self) -> StateConfig:
        if self.backend == "postgres" and not self.dsn_env.strip():
            raise ValueError("backend = \"postgres\" needs dsn_env (the variable holding the DSN)")
        return self


class FleetConfig(_Frozen):
    #: Name of this replica in segment names, the archive and the audit trail (None: the
    #: host name, which is the pod name on Kubernetes). Letters, digits, '_' and '.'.
    replica: str | None = Field(None, pattern=r"^[A-Za-z0-9_.]+$")
    #: Seconds a replica keeps serving after SIGTERM while it reports unready, so the load
    #: balancer stops sending before the listener closes (a probe period or two).
    drain_unready_s: float = Field(2.0, ge=0)
    #: Upper bound on finishing in-flight requests and streams after SIGTERM, in seconds.
    drain_timeout_s: float = Field(30.0, gt=0)
    #: What a replica does when Redis (the shared counters) cannot be reached:
    #: "closed" refuses requests with 503; "open" admits them uncounted (logged, audited).
    redis_outage: Literal["closed", "open"] = "closed"
