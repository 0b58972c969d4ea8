"""Local sign-in: argon2 accounts, CSRF on the form, lock-out, timeouts, all audited."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

from appliance.testing.console import PASSWORD
from tests.console.conftest import ConsoleApp


def audit_rows(app: ConsoleApp, *extra: str) -> list[dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-m", "appliance", "audit", "search", "--kind", "console", "--json",
         "--data-dir", str(app.running.data_dir), *extra],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


async def test_sign_in_and_out_are_audited(console_app: ConsoleApp) -> None:
    async with console_app.client() as c:
        status, _, r = await c.get("/console/audit", allow_redirects=False)
        assert status == 303 and r.headers["Location"].startswith("/console/login?next=")
        await c.get("/console/login")
        status, _, r = await c.post("/console/login", {"username": "aud_auditor", "password": PASSWORD},
                                    allow_redirects=False)
        assert status == 303
        cookie = next(h for h in r.headers.getall("Set-Cookie") if h.startswith("appliance_console="))
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/console" in cookie
        status, html, _ = await c.get("/console/audit")
        assert status == 200 and "Audit trail" in html
        status, _, _ = await c.post("/console/logout")
        assert status == 200
        status, _, _ = await c.get("/console/audit", allow_redirects=False)
        assert status == 303
    actions = [(r["user_id"], r["extra"]["action"]) for r in audit_rows(console_app)]  # type: ignore[index]
    assert ("console:aud_auditor", "signin") in actions
    assert ("console:aud_auditor", "signout") in actions


async def test_wrong_password_locks_the_account_after_repeated_failures(console_app: ConsoleApp) -> None:
    async with console_app.client() as c:
        for _ in range(5):
            assert await c.sign_in("pat_author", "wrong password 123") == 401
        # now even the right password is refused, with the same message
        assert await c.sign_in("pat_author", PASSWORD) == 401
        assert await c.sign_in("nobody-at-all", PASSWORD) == 401
    rows = audit_rows(console_app)
    reasons = [r["extra"]["reason"] for r in rows if r["extra"]["action"] == "signin_failed"]  # type: ignore[index]
    assert reasons.count("bad_password") == 5 and "locked" in reasons and "unknown_user" in reasons
    assert any(r["extra"]["action"] == "account_locked" for r in rows)  # type: ignore[index]
    assert not any(PASSWORD in json.dumps(r) or "wrong password" in json.dumps(r) for r in rows)


async def test_every_form_needs_its_csrf_token(console_app: ConsoleApp) -> None:
    async with console_app.client() as c:
        await c.get("/console/login")
        status, html, _ = await c.post("/console/login", {"username": "aud_auditor", "password": PASSWORD},
                                       csrf="forged")
        assert status == 403 and "could not be verified" in html
        assert await c.sign_in("ada_admin") == 200
        status, _, _ = await c.post("/console/keys", {"tenant": "acme", "user": "x"}, csrf="forged")
        assert status == 403
        status, _, _ = await c.post("/console/keys", {"tenant": "acme", "user": "x"},
                                    headers={"Origin": "http://evil.example"})
        assert status == 403
        status, html, _ = await c.post("/console/keys", {"tenant": "acme", "user": "x"})
        assert status == 201 and 'id="new-key"' in html


async def test_idle_and_absolute_timeouts_end_the_session(start_appliance, fake_openai, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from appliance.testing.console import ConsoleClient, create_users
    from tests.console.conftest import console_config, copy_policies

    running = await start_appliance(console_config(fake_openai, copy_policies(tmp_path),
                                                   idle_timeout_s=1, absolute_timeout_s=3))
    create_users(None, running.data_dir, {"aud_auditor": (("auditor",), None)})
    async with ConsoleClient(running.url) as c:
        assert await c.sign_in("aud_auditor") == 200
        await asyncio.sleep(1.3)
        status, _, _ = await c.get("/console/audit", allow_redirects=False)
        assert status == 303  # idle too long
        assert await c.sign_in("aud_auditor") == 200
        for _ in range(4):  # active all the time, yet the absolute limit ends it
            await asyncio.sleep(0.8)
            status, _, _ = await c.get("/console/audit", allow_redirects=False)
        assert status == 303


async def test_security_headers_and_no_traceback(console_app: ConsoleApp, signed_in) -> None:  # type: ignore[no-untyped-def]
    async with signed_in("aud_auditor") as c:
        status, html, r = await c.get("/console/audit/nosuchsegment/notanumber")
        assert status == 404 and "Traceback" not in html
        assert "script-src 'self'" in r.headers["Content-Security-Policy"]
        assert r.headers["X-Frame-Options"] == "DENY"
        status, html, _ = await c.get("/console/audit?since=yesterday")
        assert status == 400 and "YYYY-MM-DD" in html
