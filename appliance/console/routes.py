"""Every console route, in one table: the role-matrix test walks this same table."""

from __future__ import annotations

from appliance.console.app import Route
from appliance.console.pages import audit, auth, overview


def all_routes() -> tuple[Route, ...]:
    return (*auth.ROUTES, *overview.ROUTES, *audit.ROUTES)
