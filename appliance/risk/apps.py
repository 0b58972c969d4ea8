"""Applications and their declared purposes: registering one fixes its baseline AI Act
class; the classify stage looks them up (cached: the table changes rarely).

Besides the purpose (and so the AI Act class it fixes) the registry holds the GDPR Art.
9(2) legal bases the deployer registered for the application; the policy reads them to
decide whether special-category data may go to an external provider.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from appliance.keys.store import ControlPlane


@dataclass(frozen=True, slots=True)
class DeclaredPurpose:
    name: str
    risk_class: str
    areas: tuple[dict[str, Any], ...]
    #: Special category (or "*") -> Art. 9(2) basis name, as registered.
    art9_basis: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


def register_application(
    control: ControlPlane,
    *,
    tenant: str,
    name: str,
    purpose: str,
    annex_iii: str | None,
    classifier: Any = None,
    art9_basis: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Classify the declared purpose and store the application (idempotent per name).

    Pass the running classifier to read the purpose with its model, not the rules alone.
    ``art9_basis`` None keeps the bases already registered. The one path for the CLI and
    the admin API.
    """
    from appliance.risk.purpose import baseline_class

    risk_class, areas = baseline_class(purpose, annex_iii, classifier=classifier)
    return control.register_app(tenant, name, purpose, annex_iii, risk_class, areas, art9_basis)


class AppDirectory:
    """Looks applications up in the process's control plane, caching each for ``ttl_s``
    seconds; the query runs on a thread, never on the event loop."""

    def __init__(self, control: ControlPlane, ttl_s: float) -> None:
        self._control = control
        self._ttl = ttl_s
        self._cache: dict[tuple[str, str], tuple[float, DeclaredPurpose | None]] = {}

    async def lookup(self, tenant: str, name: str) -> DeclaredPurpose | None:
        key = (tenant, name)
        hit = self._cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < self._ttl:
            return hit[1]
        app = await asyncio.to_thread(self._control.get_app, tenant, name)
        found = (
            None
            if app is None
            else DeclaredPurpose(
                name=name,
                risk_class=str(app.get("risk_class") or "minimal"),
                areas=tuple(a for a in app.get("areas") or () if isinstance(a, dict)),
                art9_basis=MappingProxyType(
                    {str(k): str(v) for k, v in (app.get("art9_basis") or {}).items()}
                ),
            )
        )
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (time.monotonic(), found)
        return found
