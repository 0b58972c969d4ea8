"""Helpers for driving the console as a browser would, over plain HTTP (tests, benchmarks).

``ConsoleClient`` keeps cookies, reads the CSRF token from each page it loads and sends
it with every form, exactly as the console's own forms do. The browser tests use a real
Chromium instead; this client is for the many checks that need no rendering.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp

from appliance.config.console import ROLES

PASSWORD = "correct horse battery staple"
#: One user per role (and one with two roles), as the tests and the benchmark create them.
USERS: Mapping[str, tuple[tuple[str, ...], str | None]] = {
    "ada_admin": (("admin",), None),
    "aud_auditor": (("auditor",), None),
    "pat_author": (("policy_author",), None),
    "apu_approver": (("policy_approver",), None),
    "tom_viewer": (("tenant_viewer",), "acme"),
}
ROLE_USER = {roles[0]: name for name, (roles, _) in USERS.items()}
assert set(ROLE_USER) == set(ROLES)

_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def create_users(config_path: Path | None, data_dir: Path,
                 users: Mapping[str, tuple[tuple[str, ...], str | None]] = USERS,
                 password: str = PASSWORD, *, via_cli: bool = False) -> None:
    """Create console users: through ``appliance users create`` (the password on stdin)
    with ``via_cli``, else straight into the control plane (the same store, faster)."""
    if not via_cli:
        from appliance.console.passwords import hash_password
        from appliance.console.store import ConsoleStore
        from appliance.keys.store import ControlPlane, control_plane_path

        control = ControlPlane.open(control_plane_path(data_dir))
        try:
            store = ConsoleStore(control.backend)
            hashed = hash_password(password)
            for name, (roles, tenant) in users.items():
                store.create_user(name, roles=roles, password_hash=hashed, tenant=tenant)
        finally:
            control.close()
        return
    for name, (roles, tenant) in users.items():
        args = [sys.executable, "-m", "appliance", "users", "create", "--username", name,
                "--data-dir", str(data_dir)]
        if config_path is not None:
            args += ["--config", str(config_path)]
        for role in roles:
            args += ["--role", role]
        if tenant:
            args += ["--tenant", tenant]
        done = subprocess.run(args, input=password + "\n", capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"users create {name} failed: {done.stderr}")


class ConsoleClient:
    """One signed-in (or not yet signed-in) user of the console."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/")
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""

    async def __aenter__(self) -> ConsoleClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.close()

    def _remember(self, text: str) -> None:
        found = _CSRF.search(text)
        if found and found.group(1):
            self.csrf = found.group(1)

    async def get(self, path: str, **kw: Any) -> tuple[int, str, aiohttp.ClientResponse]:
        async with self.http.get(self.base + path, allow_redirects=kw.pop("allow_redirects", True), **kw) as r:
            text = await r.text(errors="replace")
            self._remember(text)
            return r.status, text, r

    async def post(self, path: str, data: Mapping[str, str] | None = None, *, csrf: str | None = None,
                   **kw: Any) -> tuple[int, str, aiohttp.ClientResponse]:
        form = {"csrf_token": self.csrf if csrf is None else csrf, **(data or {})}
        headers = {"Origin": self.base, **kw.pop("headers", {})}
        async with self.http.post(self.base + path, data=form, headers=headers,
                                  allow_redirects=kw.pop("allow_redirects", True), **kw) as r:
            body = await r.read()
            text = body.decode("utf-8", "replace")
            self._remember(text)
            r.body = body  # type: ignore[attr-defined]
            return r.status, text, r

    async def sign_in(self, username: str, password: str = PASSWORD) -> int:
        await self.get("/console/login")
        status, _, _ = await self.post("/console/login", {"username": username, "password": password})
        await self.get("/console/")
        return status
