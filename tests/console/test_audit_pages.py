"""The audit trail and the overview over real traffic: search to a record's detail, its
proof, payload access with a stated reason (itself audited), a shredded tenant, and a
tenant_viewer who sees one tenant only."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from tests.console.conftest import ConsoleApp

STORE_FOR_RECORDS_DEPT = """
store_payloads if input.principal.department == "records"
"""


def cli(app: ConsoleApp, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "appliance", *args, "--data-dir", str(app.running.data_dir)],
                          capture_output=True, text=True, timeout=120)


async def test_search_detail_payload_reason_and_shred(console_app: ConsoleApp, signed_in) -> None:  # type: ignore[no-untyped-def]
    with open(console_app.policy_dir / "obligations.rego", "a") as f:
        f.write(STORE_FOR_RECORDS_DEPT)
    key = console_app.running.new_key(tenant="acme", user="rita", department="records")
    import asyncio

    for _ in range(40):  # the engine picks the edited policy up within its reload interval
        await asyncio.sleep(0.1)
    rid = await console_app.chat(key, text="Please summarise the file of Jane Example")
    await console_app.chat(text="something else")

    async with signed_in("aud_auditor") as c:
        status, html, _ = await c.get(f"/console/audit?user=rita&request_id={rid}")
        assert status == 200 and "1 matching records" in html
        link = re.search(r'href="(/console/audit/[^"]+/\d+)"', html).group(1)  # type: ignore[union-attr]
        status, html, _ = await c.get(link)
        assert status == 200
        assert 'id="verified" class="ok"' in html  # hash, link, signed checkpoint and Merkle root
        assert "Jane Example" not in html  # payloads are not shown without a reason
        status, html, _ = await c.post(link + "/payload", {"reason": "no"})
        assert status == 400
        status, html, _ = await c.post(link + "/payload", {"reason": "DSAR 2026-17 of Jane Example"})
        assert status == 200 and "Please summarise the file of Jane Example" in html

        access = [json.loads(x) for x in cli(console_app, "audit", "search", "--kind", "access", "--json").stdout.splitlines()]
        assert access and access[-1]["extra"]["reason"] == "DSAR 2026-17 of Jane Example"
        assert access[-1]["extra"]["request_ids"] == [rid] and access[-1]["user_id"] == "console:aud_auditor"

        assert cli(console_app, "audit", "shred", "--tenant", "acme").returncode == 0
        status, html, _ = await c.get(link)
        assert status == 200 and 'id="shredded"' in html and "Open the payload" not in html
        status, html, _ = await c.post(link + "/payload", {"reason": "after the shred"})
        assert status == 200 and 'id="shredded"' in html


async def test_tenant_viewer_sees_one_tenant_only(console_app: ConsoleApp, signed_in) -> None:  # type: ignore[no-untyped-def]
    acme = console_app.running.new_key(tenant="acme", user="a1")
    globex = console_app.running.new_key(tenant="globex", user="g1")
    mine = await console_app.chat(acme)
    theirs = await console_app.chat(globex)
    async with signed_in("tom_viewer") as c:
        status, html, _ = await c.get("/console/audit?tenant=globex")
        assert status == 200 and mine in html and theirs not in html
        status, html, _ = await c.get(f"/console/audit/request/{theirs}")
        assert status == 404
        status, html, _ = await c.get(f"/console/audit/request/{mine}")
        assert status == 200 and mine in html and 'id="payload-h"' in html and "Open the payload" not in html
        status, html, _ = await c.get("/console/?tenant=globex")
        assert status == 200 and "globex" not in html.split('id="by-tenant"')[1].split("</table>")[0]
    async with signed_in("aud_auditor") as c:
        status, html, _ = await c.get("/console/?period=24h")
        by_tenant = html.split('id="by-tenant"')[1].split("</table>")[0]
        assert "acme" in by_tenant and "globex" in by_tenant
        assert re.search(r'data-total="requests">(\d+)<', html).group(1) == "2"  # type: ignore[union-attr]


async def test_overview_counts_denials_by_rule(console_app: ConsoleApp, signed_in) -> None:  # type: ignore[no-untyped-def]
    intern = console_app.running.new_key(tenant="acme", user="ivan", department="interns")
    import openai
    import pytest

    with pytest.raises(openai.PermissionDeniedError):
        await console_app.chat(intern)  # interns may use local models only
    await console_app.chat()
    async with signed_in("aud_auditor") as c:
        status, html, _ = await c.get("/console/?period=24h")
        assert status == 200
        assert re.search(r'data-total="denied">(\d+)<', html).group(1) == "1"  # type: ignore[union-attr]
        rules = html.split('id="rules-h"')[1].split("</section>")[0]
        assert "access_model" in rules
        status, html, _ = await c.get("/console/audit/export.csv?decision=deny")
        assert status == 200 and html.splitlines()[0].startswith("segment_id,seq,kind")
        assert len(html.splitlines()) == 2 and ",deny," in html
