"""Who may do what: every console route names one permission, checked on the server.

Hiding a button is a courtesy; the check here is the control. A ``tenant_viewer`` is
also scoped: every query it runs is narrowed to its one tenant (see ``Viewer.tenant_scope``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from appliance.config.console import ROLES

ADMIN, AUDITOR, AUTHOR, APPROVER, TENANT_VIEWER = ROLES

#: Permission -> the roles that hold it.
PERMISSIONS: Mapping[str, frozenset[str]] = MappingProxyType({
    # every signed-in user: their own preferences, sign-out
    "account": frozenset(ROLES),
    "overview": frozenset(ROLES),
    # the audit trail and its records (a tenant_viewer: its tenant's only)
    "audit.read": frozenset({AUDITOR, TENANT_VIEWER}),
    # decrypting stored prompts and answers (with a stated reason, itself audited)
    "audit.payload": frozenset({AUDITOR}),
    # the matching records' metadata as CSV
    "audit.export": frozenset({AUDITOR}),
    "reports": frozenset({AUDITOR, TENANT_VIEWER}),
    "incidents": frozenset({AUDITOR}),
    "policy.read": frozenset({ADMIN, AUDITOR, AUTHOR, APPROVER}),
    # edit, test, replay and submit changes (and propose rollbacks)
    "policy.propose": frozenset({AUTHOR}),
    # approve or reject: never the change's own author (four eyes, checked per change)
    "policy.approve": frozenset({APPROVER}),
    "apps.read": frozenset({ADMIN, AUDITOR}),
    "apps.write": frozenset({ADMIN}),
    "keys.read": frozenset({ADMIN}),
    "keys.write": frozenset({ADMIN}),
    "settings": frozenset({ADMIN}),
})


def allowed(roles: frozenset[str] | set[str], permission: str) -> bool:
    """Whether any of ``roles`` holds ``permission`` (an unknown permission: nobody)."""
    return bool(PERMISSIONS.get(permission, frozenset()) & roles)


def scoped_to_tenant(roles: frozenset[str] | set[str]) -> bool:
    """A tenant_viewer with no broader reading role sees one tenant only."""
    return TENANT_VIEWER in roles and not ({AUDITOR, ADMIN} & roles)
