"""Policies: the Rego files with their METADATA, changes with four-eyes approval, history.

An author (``policy_author``) edits a file in a draft, checks it (compile errors at the
line, the policy tests with coverage) and replays it on recorded traffic, then submits
it. An approver (``policy_approver``) who is not the author sees the diff, the tests and
the replay, and approves (the files go live, the revision is recorded) or rejects. A
rollback to an earlier revision is itself a change that needs approval.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from aiohttp import web

from appliance.console import policy_flow as flow
from appliance.console.app import ConsoleError, Page, Route, redirect
from appliance.console.store import Change
from appliance.policy.rego_source import parse_module
from appliance.policy.source import PolicyLoadError


def _live_files(page: Page) -> dict[str, str]:
    return flow.policy_files(page.deps.config.policy.directory)


def _live_revision(page: Page) -> str:
    return str(page.deps.policy_status().get("revision") or "")


async def _remember_live(page: Page) -> tuple[dict[str, str], str]:
    """The live files and revision; a revision the console has not seen is recorded, so
    that history (and rollback) reaches back to the files as they were found."""
    files = await asyncio.to_thread(_live_files, page)
    try:
        revision = (await asyncio.to_thread(flow.load_files, files)).revision
    except PolicyLoadError:
        revision = _live_revision(page)
    store = page.deps.store
    if revision and await asyncio.to_thread(store.revision_files, revision) is None:
        await asyncio.to_thread(store.record_revision, revision, files, None, "found on disk")
    return files, revision


def _rules(path: str, text: str) -> list[dict[str, Any]]:
    if not path.endswith(".rego"):
        return []
    try:
        module = parse_module(path, text)
    except (ValueError, IndexError):
        return []
    out = []
    for rule in module.rules:
        custom = rule.annotations.get("custom") or {}
        if rule.annotations:
            out.append({
                "name": rule.name, "line": rule.line,
                "title": rule.annotations.get("title", ""),
                "description": rule.annotations.get("description", ""),
                "id": custom.get("id", "") if isinstance(custom, dict) else "",
                "article": custom.get("article", "") if isinstance(custom, dict) else "",
            })
    return out


async def policies(page: Page) -> web.StreamResponse:
    files, revision = await _remember_live(page)
    store = page.deps.store
    changes = await asyncio.to_thread(store.list_changes, None)
    history = await asyncio.to_thread(store.revisions)
    listing = [{"path": p, "rules": _rules(p, text), "test": p.endswith("_test.rego")} for p, text in files.items()]
    return page.render("policies.html", files=listing, revision=revision, engine=page.deps.policy_status(),
                       changes=changes, history=history,
                       bundle_url=page.deps.config.policy.bundle_url)


def _not_from_bundle(page: Page) -> None:
    """A fleet whose policy is a signed bundle changes it where the bundle is built: the
    files this replica's console would write are not what any replica runs."""
    url = page.deps.config.policy.bundle_url
    if url is not None:
        raise ConsoleError(409, "policies.from_bundle", url=url)


def _path(page: Page) -> str:
    path = page.request.match_info.get("path") or page.field("file")
    if not flow.valid_path(path):
        raise ConsoleError(404, "error.not_found")
    return path


async def policy_file(page: Page) -> web.StreamResponse:
    path = _path(page)
    files = await asyncio.to_thread(_live_files, page)
    if path not in files:
        raise ConsoleError(404, "error.not_found")
    return page.render("policy_file.html", path=path, text=files[path], rules=_rules(path, files[path]),
                       lines=files[path].splitlines())


async def new_change(page: Page) -> web.StreamResponse:
    _not_from_bundle(page)
    path = _path(page)
    files, revision = await _remember_live(page)
    if path not in files:
        raise ConsoleError(404, "error.not_found")
    title = page.field("title") or page.t("policies.default_title", path=path)
    change = await asyncio.to_thread(
        page.deps.store.create_change, kind="edit", title=title[:200], author=page.username,
        base_revision=revision, files={path: files[path]},
    )
    await page.audit("policy_draft", {"change": change.id, "files": [path], "base_revision": revision})
    raise redirect(f"/policies/changes/{change.id}")


async def _change(page: Page) -> Change:
    change = await asyncio.to_thread(page.deps.store.get_change, page.request.match_info["change_id"])
    if change is None:
        raise ConsoleError(404, "error.not_found")
    return change


async def change_page(page: Page, change: Change | None = None, status: int = 200) -> web.StreamResponse:
    change = change or await _change(page)
    base = await asyncio.to_thread(page.deps.store.revision_files, change.base_revision) or {}
    live = _live_revision(page)
    return page.render(
        "policy_change.html",
        status=status,
        change=change,
        diff=flow.diff(base, change.files),
        live_revision=live,
        stale=bool(change.base_revision and live and change.base_revision != live and change.status != "applied"),
        is_author=change.author == page.username,
        may_edit=change.status == "draft" and change.author == page.username and page.can("policy.propose"),
        may_decide=change.status == "submitted" and page.can("policy.approve") and change.author != page.username,
        checks_ok=flow.check_passed(change.checks),
        listings=_error_listings(change),
        when=lambda ts: dt.datetime.fromtimestamp(ts, dt.UTC) if ts else None,
    )


def _error_listings(change: Change) -> list[dict[str, Any]]:
    """The source of each file a compile or test error points at, with that line marked."""
    checks = change.checks or {}
    at = list(checks.get("at") or []) + list(((checks.get("tests") or {}).get("at")) or [])
    out = []
    for place in at:
        text = change.files.get(place["file"])
        if text is not None:
            out.append({"file": place["file"], "line": place["line"], "lines": text.splitlines()})
    return out


def _edited(page: Page, change: Change) -> dict[str, str | None]:
    files = dict(change.files)
    for path in change.files:
        text = page.field(f"file:{path}", default="\x00")
        if text != "\x00":
            files[path] = text.replace("\r\n", "\n") + ("" if text.endswith("\n") else "\n")
    return files


async def _own_draft(page: Page) -> Change:
    change = await _change(page)
    if change.author != page.username:
        raise ConsoleError(403, "policies.not_your_change")
    if change.status != "draft":
        raise ConsoleError(409, "policies.not_a_draft")
    return change


async def save_and_check(page: Page) -> web.StreamResponse:
    """Save the edited text, compile it and run the policy's tests with coverage."""
    change = await _own_draft(page)
    files = _edited(page, change)
    store = page.deps.store
    await asyncio.to_thread(store.update_draft, change.id, page.username, files, change.title)
    base = await asyncio.to_thread(store.revision_files, change.base_revision) or {}
    checks = await asyncio.to_thread(flow.check, page.deps.config, flow.merged(base, files))
    await asyncio.to_thread(store.save_results, change.id, checks=checks)
    tests = checks.get("tests") or {}
    await page.audit("policy_check", {"change": change.id, "compiled": checks["compiled"],
                                      "tests_passed": tests.get("passed"), "tests_failed": tests.get("failed")})
    updated = await _change(page)
    return await change_page(page, updated, status=200 if checks["compiled"] else 422)


async def run_replay(page: Page) -> web.StreamResponse:
    """Evaluate the recorded decision inputs under the live and the proposed policy."""
    change = await _own_draft(page)
    deps = page.deps
    cfg = deps.config.console
    try:
        days = min(max(1, int(page.field("days") or cfg.replay_days)), 400)
    except ValueError:
        raise ConsoleError(400, "error.bad_request") from None
    base = await asyncio.to_thread(deps.store.revision_files, change.base_revision) or {}
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    inputs, missing = await asyncio.to_thread(
        deps.view.policy_inputs, since, cfg.replay_max_records, max_age_s=cfg.audit_refresh_s
    )
    try:
        old = await asyncio.to_thread(flow.load_files, base)
        new = await asyncio.to_thread(flow.load_files, flow.merged(base, change.files))
        result = await asyncio.to_thread(flow.replay, deps.config, old, new, inputs, missing, days)
    except PolicyLoadError:
        raise ConsoleError(422, "policies.replay_needs_compile") from None
    await asyncio.to_thread(deps.store.save_results, change.id, replay=result)
    await page.audit("policy_replay", {"change": change.id, "days": days, "evaluated": result["evaluated"],
                                       "flipped": result["flipped"]})
    return await change_page(page, await _change(page))


async def submit(page: Page) -> web.StreamResponse:
    change = await _own_draft(page)
    if not flow.check_passed(change.checks):
        raise ConsoleError(409, "policies.check_first")
    if change.replay is None:
        raise ConsoleError(409, "policies.replay_first")
    await asyncio.to_thread(page.deps.store.transition, change.id, from_status="draft", to_status="submitted")
    await page.audit("policy_submit", {"change": change.id, "base_revision": change.base_revision,
                                       "files": sorted(change.files), "flipped": change.replay.get("flipped")})
    raise redirect(f"/policies/changes/{change.id}")


async def _decidable(page: Page) -> Change:
    change = await _change(page)
    if change.author == page.username:
        raise ConsoleError(403, "policies.four_eyes")
    if change.status != "submitted":
        raise ConsoleError(409, "policies.not_submitted")
    return change


async def approve(page: Page) -> web.StreamResponse:
    """Four eyes: another person approves; the files go live and the revision is recorded."""
    _not_from_bundle(page)
    change = await _decidable(page)
    deps = page.deps
    store = deps.store
    files, live = await _remember_live(page)
    if change.base_revision != live:
        raise ConsoleError(409, "policies.stale", base=change.base_revision, live=live)
    proposed = flow.merged(files, change.files)
    checks = await asyncio.to_thread(flow.check, deps.config, proposed)  # never trust a stored result
    if not flow.check_passed(checks):
        raise ConsoleError(409, "policies.check_failed_now")
    if not await asyncio.to_thread(store.transition, change.id, from_status="submitted", to_status="applying"):
        raise ConsoleError(409, "policies.not_submitted")
    try:
        revision = await asyncio.to_thread(flow.apply, deps.config, change.files)
    except (OSError, ValueError, PolicyLoadError):
        await asyncio.to_thread(store.transition, change.id, from_status="applying", to_status="submitted")
        raise ConsoleError(500, "policies.apply_failed") from None
    await asyncio.to_thread(store.record_revision, revision, proposed, change.id, page.username)
    await asyncio.to_thread(store.transition, change.id, from_status="applying", to_status="applied",
                            by=page.username, note=page.field("note")[:1000] or None, applied_revision=revision)
    await page.audit("policy_approve", {
        "change": change.id, "author": change.author, "approver": page.username,
        "before": {"revision": live}, "after": {"revision": revision},
        "files": sorted(change.files), "kind": change.kind, "rollback_to": change.rollback_to,
    })
    raise redirect(f"/policies/changes/{change.id}")


async def reject(page: Page) -> web.StreamResponse:
    change = await _decidable(page)
    note = page.field("note")[:1000] or None
    await asyncio.to_thread(page.deps.store.transition, change.id, from_status="submitted",
                            to_status="rejected", by=page.username, note=note)
    await page.audit("policy_reject", {"change": change.id, "author": change.author, "note": note})
    raise redirect(f"/policies/changes/{change.id}")


async def revision_page(page: Page) -> web.StreamResponse:
    rev = page.request.match_info["revision"]
    store = page.deps.store
    files = await asyncio.to_thread(store.revision_files, rev)
    if files is None:
        raise ConsoleError(404, "error.not_found")
    history = await asyncio.to_thread(store.revisions)
    older = [h for h in history if h["applied_at"] < next(x["applied_at"] for x in history if x["revision"] == rev)]
    previous = await asyncio.to_thread(store.revision_files, older[0]["revision"]) if older else {}
    changes: dict[str, str | None] = dict(files)
    changes.update({p: None for p in (previous or {}) if p not in files})
    return page.render("policy_revision.html", revision=rev, live_revision=_live_revision(page),
                       previous=older[0]["revision"] if older else None,
                       diff=flow.diff(previous or {}, changes), info=next(h for h in history if h["revision"] == rev))


async def rollback(page: Page) -> web.StreamResponse:
    """Propose going back to an earlier revision: a change like any other (needs approval)."""
    _not_from_bundle(page)
    rev = page.request.match_info["revision"]
    store = page.deps.store
    target = await asyncio.to_thread(store.revision_files, rev)
    if target is None:
        raise ConsoleError(404, "error.not_found")
    files, live = await _remember_live(page)
    if rev == live:
        raise ConsoleError(409, "policies.already_live")
    changes: dict[str, str | None] = {p: t for p, t in target.items() if files.get(p) != t}
    changes.update({p: None for p in files if p not in target})
    change = await asyncio.to_thread(
        store.create_change, kind="rollback", title=page.t("policies.rollback_title", rev=rev),
        author=page.username, base_revision=live, files=changes, rollback_to=rev,
    )
    await page.audit("policy_rollback_draft", {"change": change.id, "to_revision": rev, "from_revision": live})
    raise redirect(f"/policies/changes/{change.id}")


ROUTES = (
    Route("GET", "/policies", policies, "policy.read", "policies"),
    Route("GET", "/policies/file/{path:.+}", policy_file, "policy.read", "policies.file"),
    Route("POST", "/policies/changes", new_change, "policy.propose", "policies.new"),
    Route("GET", "/policies/changes/{change_id}", change_page, "policy.read", "policies.change"),
    Route("POST", "/policies/changes/{change_id}/check", save_and_check, "policy.propose", "policies.check"),
    Route("POST", "/policies/changes/{change_id}/replay", run_replay, "policy.propose", "policies.replay"),
    Route("POST", "/policies/changes/{change_id}/submit", submit, "policy.propose", "policies.submit"),
    Route("POST", "/policies/changes/{change_id}/approve", approve, "policy.approve", "policies.approve"),
    Route("POST", "/policies/changes/{change_id}/reject", reject, "policy.approve", "policies.reject"),
    Route("GET", "/policies/revisions/{revision}", revision_page, "policy.read", "policies.revision"),
    Route("POST", "/policies/revisions/{revision}/rollback", rollback, "policy.propose", "policies.rollback"),
)
