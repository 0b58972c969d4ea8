"""The declared purpose of the calling application, cached (the app table changes rarely).

Besides the purpose (and so the AI Act class it fixes) the registry holds the GDPR Art.
9(2) legal bases the deployer registered for the application; the policy reads them to
decide whether special-category data may go to an external provider.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class DeclaredPurpose:
    name: str
    risk_class: str
    areas: tuple[dict[str, Any], ...]
    #: Special category (or "*") -> Art. 9(2) basis name, as registered.
    art9_basis: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


class AppDirectory:
    """Looks applications up in the control plane, caching each for ``ttl_s`` seconds.

    Opened lazily: a deployment without a control plane (or a test without one) simply
    has no declared purposes.
    """

    def __init__(self, db_path: Path, ttl_s: float) -> None:
        self._path = db_path
        self._ttl = ttl_s
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], tuple[float, DeclaredPurpose | None]] = {}
        self._control: Any = None

    def _open(self) -> Any:
        if self._control is None:
            from appliance.keys.store import ControlPlane

            self._control = ControlPlane.open(self._path)
        return self._control

    def lookup(self, tenant: str, name: str) -> DeclaredPurpose | None:
        now = time.monotonic()
        key = (tenant, name)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and now - hit[0] < self._ttl:
                return hit[1]
            if not self._path.exists():
                return None
            app = self._open().get_app(tenant, name)
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
            self._cache[key] = (now, found)
            return found

    def close(self) -> None:
        with self._lock:
            if self._control is not None:
                self._control.close()
                self._control = None
