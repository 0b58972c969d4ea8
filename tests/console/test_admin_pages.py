"""Keys, applications, reports and incidents from the console: the same functions as the
CLI and the admin API, every change audited with before and after."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from openai import AsyncOpenAI

from tests.console.conftest import ConsoleApp


def console_rows(app: ConsoleApp) -> list[dict[str, object]]:
    done = subprocess.run([sys.executable, "-m", "appliance", "audit", "search", "--kind", "console", "--json",
                           "--data-dir", str(app.running.data_dir)], capture_output=True, text=True, timeout=120)
    return [json.loads(x) for x in done.stdout.splitlines()]


async def test_keys_created_shown_once_used_and_revoked(console_app: ConsoleApp, signed_in) -> None:  # type: ignore[no-untyped-def]
    async with signed_in("ada_admin") as c:
        status, html, _ = await c.post("/console/keys", {"tenant": "acme", "user": "bob", "rpm": "abc"})
        assert status == 400
        status, html, _ = await c.post("/console/keys", {"tenant": "acme", "user": "bob", "rpm": "60",
                                                          "budget_usd_month": "12.5", "roles": "dev, ops"})
        assert status == 201
        key = re.search(r'id="new-key">([^<]+)<', html).group(1)  # type: ignore[union-attr]
        key_id = key.split("-")[1]
        status, html, _ = await c.get("/console/keys")
        assert key_id in html and key not in html  # the secret is never shown again
        assert "budget_usd_month=12.5" in html and "rpm=60" in html
        client = AsyncOpenAI(base_url=console_app.running.base_url, api_key=key, max_retries=0)
        await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        status, _, _ = await c.post(f"/console/keys/{key_id}/revoke")
        assert status == 200
        import openai
        import pytest

        import asyncio

        await asyncio.sleep(1.1)  # revocations take effect within a second (the key cache)
        with pytest.raises(openai.AuthenticationError):
            await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        await client.close()
    rows = [r["extra"] for r in console_rows(console_app)]
    created = next(r for r in rows if r["action"] == "key_create")  # type: ignore[index]
    revoked = next(r for r in rows if r["action"] == "key_revoke")  # type: ignore[index]
    assert created["after"]["limits"] == {"rpm": 60, "budget_usd_month": 12.5}  # type: ignore[index]
    assert revoked["before"]["revoked"] is False and revoked["after"]["revoked"] is True  # type: ignore[index]
    assert key.split("-", 2)[2] not in json.dumps(rows)


async def test_application_registration_sets_the_risk_class(console_app: ConsoleApp, signed_in) -> None:  # type: ignore[no-untyped-def]
    async with signed_in("ada_admin") as c:
        status, html, _ = await c.post("/console/applications", {
            "tenant": "acme", "name": "cv-screener", "purpose": "Ranks job applicants' CVs for recruiters",
            "annex_iii": "employment"})
        assert status == 201 and "risk class high" in html
    async with signed_in("aud_auditor") as c:
        status, html, _ = await c.get("/console/applications")
        assert status == 200 and "cv-screener" in html and "Register" not in html.split("</table>")[1]
    app = next(r["extra"] for r in console_rows(console_app) if r["extra"]["action"] == "app_register")  # type: ignore[index]
    assert app["before"] is None and app["after"]["risk_class"] == "high"  # type: ignore[index]


async def test_reports_download_in_every_format_and_incident_deadlines(console_app: ConsoleApp, signed_in) -> None:  # type: ignore[no-untyped-def]
    rid = await console_app.chat()
    async with signed_in("aud_auditor") as c:
        import datetime as dt

        today = dt.date.today().isoformat()
        status, body, r = await c.post("/console/reports", {"kind": "usage", "format": "json", "from": today, "to": today})
        assert status == 200, body[-2000:]
        assert r.headers["Content-Disposition"].startswith("attachment; filename=\"usage-")
        doc = json.loads(body)
        assert doc["basis"]["records"] >= 1
        status, _, r = await c.post("/console/reports", {"kind": "art12", "format": "pdf", "from": today, "to": today})
        assert status == 200 and r.body.startswith(b"%PDF")  # type: ignore[attr-defined]
        status, html, _ = await c.post("/console/reports", {"kind": "usage", "format": "csv", "from": "2026-13-01", "to": today})
        assert status == 400

        aware = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
        status, html, _ = await c.post("/console/incidents", {"title": "Wrong advice", "severity": "death",
                                                               "aware_at": aware, "request_ids": rid,
                                                               "description": "Described for the authority"})
        assert status == 200 and "Wrong advice" in html
        left = re.search(r'data-deadline="([^"]+)"[^>]*>([^<]+)<', html)
        assert left and left.group(2).startswith("8 d ")  # Art. 73(4): 10 days from awareness
        inc = re.search(r'action="/console/incidents/(inc-[0-9a-f]+)/report"', html).group(1)  # type: ignore[union-attr]
        status, body, r = await c.post(f"/console/incidents/{inc}/report", {"format": "json"})
        assert status == 200
        doc = json.loads(body)
        assert doc["statements"]["severity"] == "death" and doc["statements"]["description"] == "Described for the authority"
