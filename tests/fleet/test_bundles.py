"""Policies as signed OPA bundles: a signed change goes live on every replica; a bundle
with a bad signature or a failing test is refused by every replica, the old one kept."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from appliance.policy.bundle import build, new_signing_key
from appliance.policy.source import load_source
from tests.fleet.conftest import ROOT, RunningFleet, chat, create_key


def _edited_policies(tmp: Path, *, deny_gpt: bool, failing_test: bool = False) -> Path:
    d = tmp / f"policies-{time.monotonic_ns()}"
    shutil.copytree(ROOT / "policies", d)
    if deny_gpt:  # the change: department "frozen" may use local models only
        access = d / "data" / "access.yaml"
        text = access.read_text()
        old = "  departments:\n"
        assert old in text
        access.write_text(text.replace(
            old, old + '    frozen:\n      models: ["local-*"]\n      providers: ["local"]\n', 1))
    if failing_test:
        (d / "fleet_test.rego").write_text(
            "package appliance.main_test\n\nimport rego.v1\n\ntest_this_bundle_is_broken if {\n\tfalse\n}\n")
    return d


async def _policy(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with session.get(f"{url}/readyz") as r:
        policy: dict[str, Any] = (await r.json())["checks"]["policy"]
        return policy


async def _until(check: Any, within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not await check():
        assert time.monotonic() < deadline, f"not within {within_s} s: {what}"
        await asyncio.sleep(0.1)


@pytest.mark.timeout(600)
async def test_signed_change_goes_live_everywhere_bad_ones_are_refused_everywhere(
    running_fleet: RunningFleet, tmp_path: Path
) -> None:
    bundles = running_fleet.bundles
    urls = running_fleet.urls()
    async with aiohttp.ClientSession() as session:
        key = (await create_key(session, urls[0], user="policy-watcher", department="frozen"))["key"]
        assert {(await chat(session, u, key)).status for u in urls} == {200}

        change, revision = build(load_source(_edited_policies(tmp_path, deny_gpt=True)), bundles.private)
        bundles.publish(change)

        async def all_on(rev: str) -> bool:
            states = [await _policy(session, u) for u in urls]
            return all(s["revision"] == rev for s in states)

        await _until(lambda: all_on(revision), 30, f"revision {revision} live on all replicas")
        assert {(await chat(session, u, key)).status for u in urls} == {403}

        # Signed with a key the replicas do not trust (and it would allow gpt-4o again).
        other_private, _ = new_signing_key()
        forged, _ = build(load_source(ROOT / "policies"), other_private, revision="forged")
        before = [(await _policy(session, u))["rejections"] for u in urls]
        bundles.publish(forged)

        async def all_refused(n: list[int], why: str) -> bool:
            states = [await _policy(session, u) for u in urls]
            return all(s["rejections"] > b and why in (s["last_error"] or "")
                       for s, b in zip(states, n, strict=True))

        await _until(lambda: all_refused(before, "signature"), 30, "forged bundle refused")
        assert await all_on(revision)
        assert {(await chat(session, u, key)).status for u in urls} == {403}

        # Signed by the trusted key, but one of its tests fails.
        broken, _ = build(load_source(_edited_policies(tmp_path, deny_gpt=False, failing_test=True)),
                          bundles.private, revision="broken")
        before = [(await _policy(session, u))["rejections"] for u in urls]
        bundles.publish(broken)
        await _until(lambda: all_refused(before, "test_this_bundle_is_broken"), 30, "failing bundle refused")
        assert await all_on(revision)
        for u in urls:  # the refusal is a metric too
            async with session.get(f"{u}/metrics") as r:
                scraped = await r.text()
            assert "appliance_policy_last_change_refused 1.0" in scraped, scraped[-2000:]
            assert "appliance_policy_bundle_rejections 2.0" in scraped
        assert {(await chat(session, u, key)).status for u in urls} == {403}

        # Put the shipped policy back for the other tests.
        first, _ = build(load_source(ROOT / "policies"), bundles.private)
        bundles.publish(first)
        await _until(lambda: all_on(bundles.first_revision), 30, "shipped policy restored")
