"""Every console route, in one table: the role-matrix test walks this same table."""

from __future__ import annotations

from appliance.console.app import Route
from appliance.console.pages import (
    applications,
    audit,
    auth,
    incidents,
    keys,
    overview,
    policies,
    reports,
    settings,
)


def all_routes() -> tuple[Route, ...]:
    return (
        *auth.ROUTES,
        *overview.ROUTES,
        *audit.ROUTES,
        *policies.ROUTES,
        *applications.ROUTES,
        *keys.ROUTES,
        *reports.ROUTES,
        *incidents.ROUTES,
        *settings.ROUTES,
    )
