"""How a component reports its state to ``/readyz`` and ``doctor`` (one vocabulary for
the stages, the control plane and the audit archive)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Readiness:
    """What ``/readyz`` and ``doctor`` show of one component.

    ``ready`` False takes this replica out of the load balancer (it cannot serve: no
    policy loaded). ``degraded`` says a shared engine is down while the replica still
    answers: every replica is equally affected, so each stays in the balancer and
    answers in the caller's API format (503 when failing closed), and the audit log
    records it; taking them all out would only turn recorded refusals into unrecorded
    connection errors at the balancer.
    """

    name: str
    ready: bool = True
    degraded: bool = False
    detail: Mapping[str, object] = field(default_factory=dict)
