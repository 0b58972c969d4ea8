"""Every console route for every role: the server refuses (403) exactly where the roles
of the issue say so, whatever the page would show; anonymous callers are sent to sign in.

The expectation is written out here by hand, from the issue's role definitions, not read
from the code's permission table: a route whose permission drifts fails this test."""

from __future__ import annotations

import re

from appliance.config.console import ROLES
from appliance.console.routes import all_routes
from appliance.testing.console import ROLE_USER, ConsoleClient
from tests.console.conftest import ConsoleApp

#: A value for every path parameter the routes use (none of them exists: the check must
#: come before the look-up, or a 404 would tell a forbidden user what exists).
SAMPLE = {"segment": "seg-none", "seq": "0", "request_id": "req_none", "key_id": "0000000000000000",
          "change_id": "chg-none", "revision": "000000000000", "path": "access.rego",
          "incident_id": "inc-none", "username": "nobody", "action": "disable"}


ALL = {"admin", "auditor", "policy_author", "policy_approver", "tenant_viewer"}
READERS_OF_POLICY = {"admin", "auditor", "policy_author", "policy_approver"}
#: Route name -> the roles that may use it (None: public).
EXPECTED: dict[str, set[str] | None] = {
    "login": None, "login.post": None, "login.oidc": None, "login.callback": None,
    "account.logout": ALL, "account.language": ALL, "overview": ALL,
    # auditor reads the trail and exports; a tenant_viewer reads its own tenant's records
    "audit": {"auditor", "tenant_viewer"}, "audit.request": {"auditor", "tenant_viewer"},
    "audit.record": {"auditor", "tenant_viewer"}, "audit.export": {"auditor"},
    "audit.payload": {"auditor"},
    "policies": READERS_OF_POLICY, "policies.file": READERS_OF_POLICY,
    "policies.change": READERS_OF_POLICY, "policies.revision": READERS_OF_POLICY,
    # policy_author proposes (rollbacks too); policy_approver approves or rejects
    "policies.new": {"policy_author"}, "policies.check": {"policy_author"},
    "policies.replay": {"policy_author"}, "policies.submit": {"policy_author"},
    "policies.rollback": {"policy_author"},
    "policies.approve": {"policy_approver"}, "policies.reject": {"policy_approver"},
    # admin: keys, tenants, applications, settings (auditors may read the registry)
    "applications": {"admin", "auditor"}, "applications.register": {"admin"},
    "keys": {"admin"}, "keys.create": {"admin"}, "keys.revoke": {"admin"},
    "settings": {"admin"}, "settings.user": {"admin"},
    "reports": {"auditor", "tenant_viewer"}, "reports.export": {"auditor", "tenant_viewer"},
    "incidents": {"auditor"}, "incidents.create": {"auditor"}, "incidents.report": {"auditor"},
}


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)(?::[^}]*)?\}", lambda m: SAMPLE[m.group(1)], path)


def routes_in_order() -> list[tuple[str, str, str]]:
    """(method, path, route name); signing out last, it ends the session."""
    out = [(r.method, "/console" + concrete(r.path), r.name) for r in all_routes()]
    return sorted(out, key=lambda x: x[1].endswith("/logout"))


async def request(c: ConsoleClient, method: str, path: str) -> int:
    if method == "GET":
        status, _, _ = await c.get(path, allow_redirects=False)
    else:
        status, _, _ = await c.post(path, {}, allow_redirects=False)
    return status


async def test_every_route_for_every_role(console_app: ConsoleApp) -> None:
    table = routes_in_order()
    assert {name for _, _, name in table} == set(EXPECTED), "a route without an expectation"
    wrong: list[str] = []
    for role in ROLES:
        async with console_app.client() as c:
            assert await c.sign_in(ROLE_USER[role]) == 200
            for method, path, name in table:
                status = await request(c, method, path)
                roles = EXPECTED[name]
                if roles is None:
                    ok = status != 403
                elif role in roles:
                    ok = status not in (401, 403)
                else:
                    ok = status == 403
                if not ok:
                    wrong.append(f"{role:16} {method:4} {path} ({name}) -> {status}")
    assert not wrong, "\n".join(wrong)


async def test_anonymous_callers_are_sent_to_sign_in(console_app: ConsoleApp) -> None:
    async with console_app.client() as c:
        await c.get("/console/login")  # a CSRF token for the forms, as a browser would have
        for method, path, name in routes_in_order():
            if EXPECTED[name] is None:
                continue
            status = await request(c, method, path)
            assert status == (303 if method == "GET" else 401), (method, path, status)
