"""Registering an application: its declared purpose fixes its baseline AI Act class."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from appliance.keys.store import ControlPlane


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
    """
    from appliance.risk.purpose import baseline_class

    risk_class, areas = baseline_class(purpose, annex_iii, classifier=classifier)
    return control.register_app(tenant, name, purpose, annex_iii, risk_class, areas, art9_basis)
