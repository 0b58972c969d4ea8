"""The policy flow over HTTP: edit -> compile error at its line -> tests -> replay on
recorded traffic -> submit -> four eyes -> live, and a request decided by the new revision."""

from __future__ import annotations

import asyncio
import re

import openai
import pytest

from tests.console.conftest import ConsoleApp

RULE = '''
# METADATA
# title: Mallory is suspended
# description: Requests of the suspended user mallory are refused.
# custom:
#   id: suspended_user
#   article: GDPR Art. 32(4)
deny contains {"rule": "suspended_user", "reason": "user mallory is suspended"} if {
	input.principal.user == "mallory"
}
'''
BROKEN = "\ndeny contains {\"rule\": \"x\" if {\n\tinput.principal.user ==\n}\n"


def change_id(html: str) -> str:
    found = re.search(r'action="/console/policies/changes/(chg-[0-9a-f]+)/check"', html)
    assert found, html[-3000:]
    return found.group(1)


async def test_edit_test_replay_submit_approve_then_live(console_app: ConsoleApp, signed_in) -> None:  # type: ignore[no-untyped-def]
    mallory = console_app.running.new_key(tenant="acme", user="mallory")
    recorded = [await console_app.chat(mallory) for _ in range(3)] + [await console_app.chat()]

    async with signed_in("pat_author") as author:
        status, html, _ = await author.get("/console/policies/file/access.rego")
        assert status == 200 and "access_model" in html and "GDPR Art. 32(4)" in html  # METADATA
        original = (console_app.policy_dir / "access.rego").read_text()
        status, html, _ = await author.post("/console/policies/changes",
                                            {"file": "access.rego", "title": "Suspend mallory"})
        assert status == 200
        cid = change_id(html)

        broken = original + BROKEN
        status, html, _ = await author.post(f"/console/policies/changes/{cid}/check", {"file:access.rego": broken})
        assert status == 422 and 'id="compile-error"' in html
        error_line = len(original.splitlines()) + 2  # the line of the unfinished object
        marked = re.search(r'<li class="errline" id="error-line">([^<]*)</li>', html)
        assert marked is not None
        assert re.search(r"access\.rego:(\d+)", html).group(1) in {str(error_line), str(error_line + 1), str(error_line + 2)}  # type: ignore[union-attr]

        status, html, _ = await author.post(f"/console/policies/changes/{cid}/submit")
        assert status == 409  # failing checks cannot be submitted

        status, html, _ = await author.post(f"/console/policies/changes/{cid}/check", {"file:access.rego": original + RULE})
        assert status == 200 and 'id="compiled"' in html
        summary = re.search(r'id="test-summary" class="ok">([^<]*)<', html)
        assert summary and " 0 failed" in summary.group(1), html[-4000:]

        status, html, _ = await author.post(f"/console/policies/changes/{cid}/replay", {"days": "1"})
        assert status == 200
        replay = re.search(r'id="replay-summary">([^<]*)<', html)
        assert replay and "4 recorded decisions" in replay.group(1) and "3 would flip" in replay.group(1), replay
        for rid in recorded[:3]:
            assert rid in html  # the examples name the requests that would flip
        assert recorded[3] not in html

        status, html, _ = await author.post(f"/console/policies/changes/{cid}/submit")
        assert status == 200 and "waiting for approval" in html
        status, html, _ = await author.post(f"/console/policies/changes/{cid}/approve")
        assert status == 403  # an author never approves (and is not an approver)

    async with signed_in("apu_approver") as approver:
        status, html, _ = await approver.get(f"/console/policies/changes/{cid}")
        assert status == 200 and "suspended_user" in html and 'id="approve"' in html  # the diff
        status, html, _ = await approver.post(f"/console/policies/changes/{cid}/approve", {"note": "ok"})
        assert status == 200 and "approved and live" in html
        revision = re.search(r'id="applied-revision">([0-9a-f]+)<', html).group(1)  # type: ignore[union-attr]

    assert "suspended_user" in (console_app.policy_dir / "access.rego").read_text()
    # The engine reloads the directory: mallory's next request is denied by the new revision.
    for _ in range(50):
        try:
            await console_app.chat(mallory)
        except openai.PermissionDeniedError as e:
            assert "mallory is suspended" in str(e)
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("the approved policy never decided a request")
    async with signed_in("aud_auditor") as auditor:
        status, html, _ = await auditor.get("/console/audit?decision=deny&user=mallory")
        link = re.search(r'href="(/console/audit/[^"]+/\d+)"', html)
        assert link
        status, html, _ = await auditor.get(link.group(1))
        assert f'id="policy-revision">{revision}' in html and "suspended_user" in html
        assert "Mallory is suspended" in html and "GDPR Art. 32(4)" in html  # the rule's METADATA


async def test_the_author_cannot_approve_even_holding_the_approver_role(console_app: ConsoleApp) -> None:
    from appliance.testing.console import create_users

    create_users(None, console_app.running.data_dir, {"both": (("policy_author", "policy_approver"), None)})
    async with console_app.client() as c:
        assert await c.sign_in("both") == 200
        original = (console_app.policy_dir / "access.rego").read_text()
        _, html, _ = await c.post("/console/policies/changes", {"file": "access.rego"})
        cid = change_id(html)
        await c.post(f"/console/policies/changes/{cid}/check", {"file:access.rego": original + RULE})
        await c.post(f"/console/policies/changes/{cid}/replay", {"days": "1"})
        status, _, _ = await c.post(f"/console/policies/changes/{cid}/submit")
        assert status == 200
        status, html, _ = await c.post(f"/console/policies/changes/{cid}/approve")
        assert status == 403 and "four eyes" in html
    assert "suspended_user" not in (console_app.policy_dir / "access.rego").read_text()


async def test_rollback_is_a_change_that_needs_approval(console_app: ConsoleApp, signed_in) -> None:  # type: ignore[no-untyped-def]
    original = (console_app.policy_dir / "access.rego").read_text()
    async with signed_in("pat_author") as author:
        _, html, _ = await author.get("/console/policies")
        first = re.search(r'id="live-revision">([0-9a-f]+)<', html).group(1)  # type: ignore[union-attr]
        _, html, _ = await author.post("/console/policies/changes", {"file": "access.rego"})
        cid = change_id(html)
        await author.post(f"/console/policies/changes/{cid}/check", {"file:access.rego": original + RULE})
        await author.post(f"/console/policies/changes/{cid}/replay", {"days": "1"})
        await author.post(f"/console/policies/changes/{cid}/submit")
    async with signed_in("apu_approver") as approver:
        status, _, _ = await approver.post(f"/console/policies/changes/{cid}/approve")
        assert status == 200
    assert "suspended_user" in (console_app.policy_dir / "access.rego").read_text()
    async with signed_in("pat_author") as author:
        status, html, _ = await author.get(f"/console/policies/revisions/{first}")
        assert status == 200 and 'id="rollback"' in html
        status, html, _ = await author.post(f"/console/policies/revisions/{first}/rollback")
        assert status == 200 and "Roll back to revision" in html
        assert (console_app.policy_dir / "access.rego").read_text() != original  # not yet
        cid = change_id(html)
        await author.post(f"/console/policies/changes/{cid}/check")
        await author.post(f"/console/policies/changes/{cid}/replay", {"days": "1"})
        status, _, _ = await author.post(f"/console/policies/changes/{cid}/submit")
        assert status == 200
    async with signed_in("apu_approver") as approver:
        status, html, _ = await approver.post(f"/console/policies/changes/{cid}/approve")
        assert status == 200 and f'id="applied-revision">{first}<' in html
    assert (console_app.policy_dir / "access.rego").read_text() == original


async def test_a_fleet_whose_policy_is_a_signed_bundle_changes_it_where_it_is_built(
    start_appliance, fake_openai, tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    """With ``[policy] bundle_url`` every replica runs the signed bundle: the console shows
    the policy but refuses to write files no replica runs (409, with the reason)."""
    import subprocess
    import sys

    from appliance.testing.console import create_users
    from tests.console.conftest import console_config, copy_policies

    policy_dir = copy_policies(tmp_path)

    def cli(*args: str) -> None:
        done = subprocess.run([sys.executable, "-m", "appliance", "policy", "bundle", *args],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr

    cli("keygen", "--private", str(tmp_path / "bundle.key"), "--public", str(tmp_path / "bundle.pub"))
    cli("build", "--dir", str(policy_dir), "--signing-key", str(tmp_path / "bundle.key"),
        "--out", str(tmp_path / "policy.tar.gz"))
    config = console_config(fake_openai, policy_dir)
    config["policy"].update({"bundle_url": str(tmp_path / "policy.tar.gz"),
                             "bundle_public_key_file": str(tmp_path / "bundle.pub")})
    running = await start_appliance(config)
    create_users(None, running.data_dir)
    from appliance.testing.console import ConsoleClient

    async with ConsoleClient(running.url) as author:
        assert await author.sign_in("pat_author") == 200
        status, html, _ = await author.get("/console/policies")
        assert status == 200 and 'id="from-bundle"' in html
        status, html, _ = await author.post("/console/policies/changes", {"file": "access.rego"})
        assert status == 409 and "signed bundle" in html
    async with ConsoleClient(running.url) as approver:
        assert await approver.sign_in("apu_approver") == 200
        status, _, _ = await approver.post("/console/policies/changes/chg-none/approve")
        assert status == 409
