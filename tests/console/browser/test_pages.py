"""The console's pages in a real browser: the role matrix, audit search to a record's
detail, the policy flow from edit to a request decided by the new revision, a report
downloaded and opened, and an axe-core scan of every page (no serious or critical
violation). Each page visited is photographed for ``docs/console.md``."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import openai
import pytest
from playwright.sync_api import Browser, Page, expect

from appliance.config.console import ROLES
from appliance.testing.console import ROLE_USER
from tests.console.browser.conftest import AXE, Console, new_page, shot, sign_in, sign_out, wait_for
from tests.console.test_role_matrix import EXPECTED, routes_in_order

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
#: The impacts the bar forbids.
FORBIDDEN_IMPACTS = ("serious", "critical")
#: Pages scanned so far (name -> violations), for the final tally.
SCANNED: dict[str, list[dict[str, Any]]] = {}


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 A/AA and best-practice rules on the page as shown now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=AXE.read_text())
    result = page.evaluate(
        """async () => {
            const r = await axe.run(document, {runOnly: {type: 'tag',
                values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
        }"""
    )
    return list(result)


def check(page: Page, name: str) -> None:
    """Scan the page with axe, photograph it, and fail on a serious or critical violation."""
    page.wait_for_load_state("networkidle")
    violations = axe_violations(page)
    SCANNED[name] = violations
    shot(page, name)
    bad = [v for v in violations if v["impact"] in FORBIDDEN_IMPACTS]
    assert not bad, f"{name}: " + json.dumps(bad, indent=1)


def scanning_page(browser: Browser, **kw: Any) -> Page:
    # axe is injected as a script: the console's CSP (own files only) would refuse it
    return new_page(browser, bypass_csp=True, **kw)


def csrf_of(page: Page) -> str:
    return page.locator("input[name=csrf_token]").first.get_attribute("value") or ""


def test_every_route_for_every_role_in_the_browser(browser: Browser, console: Console) -> None:
    """The browser's own session (its cookies, its CSRF token): 403 exactly where the
    issue's roles say so, for every route and every role."""
    wrong: list[str] = []
    for role in ROLES:
        page = new_page(browser)
        sign_in(page, console, ROLE_USER[role])
        token = csrf_of(page)  # the session's token, as every form of the page carries it
        for method, path, name in routes_in_order():
            if name == "audit.export":  # a download: the browser does not navigate to it
                status = page.request.get(console.url + path, max_redirects=0).status
            elif method == "GET":
                response = page.goto(console.url + path)
                assert response is not None
                status = response.status
            else:
                status = page.request.post(console.url + path, form={"csrf_token": token},
                                           headers={"Origin": console.url}, max_redirects=0).status
            roles = EXPECTED[name]
            if roles is None:
                ok = status != 403
            elif role in roles:
                ok = status not in (401, 403)
            else:
                ok = status == 403
            if not ok:
                wrong.append(f"{role:16} {method:4} {path} ({name}) -> {status}")
        page.context.close()
    assert not wrong, "\n".join(wrong)


def test_audit_search_to_a_records_detail(browser: Browser, console: Console) -> None:
    page = scanning_page(browser)
    sign_in(page, console, "aud_auditor")
    check(page, "overview")
    page.get_by_role("link", name="Audit trail").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit trail")
    page.get_by_label("Tenant").select_option("globex")
    page.get_by_label("Kind").select_option("request")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"tenant=globex"))  # htmx pushed the filtered address
    expect(page.locator("#match-count")).to_contain_text("1 matching")
    rows = page.locator("#records tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("gustav")
    check(page, "audit")
    rows.first.get_by_role("link").click()
    expect(page.locator("#verified")).to_have_class("ok")
    expect(page.locator("#pii-counts")).to_contain_text("PERSON")
    expect(page.locator("#policy-revision")).not_to_have_text("–")
    expect(page.locator("#stages")).to_contain_text("redact")
    check(page, "audit-record")
    page.get_by_label("Reason for opening the payload").fill("Complaint 2026-114: the data subject asked what was sent")
    page.get_by_role("button", name="Open the payload").click()
    expect(page.locator("#payload")).to_contain_text("Vertrag")
    check(page, "audit-payload")
    page.context.close()


def test_policy_flow_edit_test_replay_submit_approve_then_live(browser: Browser, console: Console) -> None:
    author = scanning_page(browser)
    sign_in(author, console, "pat_author")
    author.get_by_role("link", name="Policies").click()
    check(author, "policies")
    author.get_by_role("link", name="access.rego", exact=True).click()
    expect(author.locator("#rules-meta")).to_contain_text("GDPR")  # the articles cited
    check(author, "policy-file")
    author.get_by_label("Title of the change").fill("Suspend mallory")
    author.get_by_role("button", name="Propose a change to this file").click()
    editor = author.locator("textarea[name='file:access.rego']")
    original = editor.input_value()

    editor.fill(original + BROKEN)
    author.locator("#check").click()
    expect(author.locator("#compile-error")).to_be_visible()
    expect(author.locator("#error-line")).to_be_visible()  # the line, marked in the listing
    check(author, "policy-compile-error")

    author.locator("textarea[name='file:access.rego']").fill(original + RULE)
    author.locator("#check").click()
    expect(author.locator("#test-summary")).to_contain_text(" 0 failed")
    author.get_by_label("Days of recorded decisions").fill("1")
    author.locator("#replay").click()
    summary = author.locator("#replay-summary")
    expect(summary).to_contain_text("1 would flip")  # mallory's one recorded request
    expect(author.locator("#flips-allow_to_deny")).to_contain_text("suspended_user")
    author.locator("#submit").click()
    expect(author.locator("#change-status")).to_have_text("waiting for approval")
    expect(author.locator("#approve")).to_have_count(0)  # the author sees no approval button
    change_url = author.url
    sign_out(author)
    author.context.close()

    approver = scanning_page(browser)
    sign_in(approver, console, "apu_approver")
    approver.goto(change_url)
    expect(approver.locator("#diff-1")).to_contain_text("suspended_user")
    expect(approver.locator("#test-summary")).to_contain_text(" 0 failed")
    expect(approver.locator("#replay-summary")).to_contain_text("1 would flip")
    check(approver, "policy-change")
    approver.get_by_label("Note (optional)").fill("Reviewed with the DPO")
    approver.locator("#approve").click()
    expect(approver.locator("#change-status")).to_have_text("approved and live")
    revision = approver.locator("#applied-revision").inner_text()
    approver.get_by_role("link", name="Policies").click()
    approver.get_by_role("link", name=revision).click()
    expect(approver.locator("h1")).to_contain_text(revision)
    check(approver, "policy-revision")
    approver.context.close()

    def denied() -> str | None:
        try:
            console.chat(console.keys["mallory"], "What is the capital of Spain?")
        except openai.PermissionDeniedError as e:
            return str(e)
        return None

    reason = wait_for(denied, timeout_s=20)
    assert reason and "mallory is suspended" in reason, "the approved policy never decided a request"


def test_a_report_is_downloaded_and_opened(browser: Browser, console: Console, tmp_path: Path) -> None:
    page = scanning_page(browser)
    sign_in(page, console, "aud_auditor")
    page.get_by_role("link", name="Reports").click()
    check(page, "reports")
    page.get_by_label("Kind").select_option("usage")
    page.get_by_label("Format").select_option("json")
    with page.expect_download() as got:
        page.get_by_role("button", name="Download report").click()
    saved = tmp_path / got.value.suggested_filename
    got.value.save_as(saved)
    usage = json.loads(saved.read_text())
    assert saved.name.startswith("usage-") and usage["basis"]["records"] >= 5 and "acme" in json.dumps(usage)

    page.get_by_label("Kind").select_option("art12")
    page.get_by_label("Format").select_option("pdf")
    with page.expect_download() as got:
        page.get_by_role("button", name="Download report").click()
    pdf = tmp_path / got.value.suggested_filename
    got.value.save_as(pdf)
    assert pdf.read_bytes().startswith(b"%PDF")
    if shutil.which("pdftotext") is None:
        pytest.fail("pdftotext (poppler-utils) is not installed: .ci/run installs it")
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "Art. 12" in text or "Article 12" in text
    page.context.close()


def test_every_other_page_passes_axe_and_is_photographed(browser: Browser, console: Console) -> None:
    page = scanning_page(browser)
    page.goto(console.url + "/console/login")
    page.keyboard.press("Tab")  # the first stop is the skip link: the page is usable by keyboard
    assert page.evaluate("document.activeElement.className") == "skip"
    check(page, "login")
    sign_in(page, console, "ada_admin")
    for name, link in (("keys", "Keys"), ("applications", "Applications"), ("settings", "Settings")):
        page.get_by_role("navigation").get_by_role("link", name=link).click()
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        check(page, name)
    page.get_by_role("navigation").get_by_role("link", name="Keys").click()
    page.get_by_label("Tenant").fill("acme")
    page.get_by_label("User", exact=True).fill("quinn")
    page.get_by_role("button", name="Create key").click()
    expect(page.locator("#new-key")).to_contain_text("ak-")
    check(page, "keys-created")
    page.goto(console.url + "/console/incidents")
    expect(page.locator("h1")).to_have_text(re.compile(r"^Error 403"))
    check(page, "error-403")
    sign_out(page)

    sign_in(page, console, "aud_auditor")
    page.get_by_role("link", name="Incidents").click()
    page.get_by_label("Title", exact=True).fill("Wrong dosage advice")
    page.get_by_role("button", name="Create draft").click()
    expect(page.locator("#incidents .countdown").first).to_contain_text(" d ")
    check(page, "incidents")
    page.get_by_label("Language").select_option("de")
    page.get_by_role("button", name="Switch").click()
    expect(page.locator("html")).to_have_attribute("lang", "de")
    check(page, "incidents-de")
    page.goto(console.url + "/console/audit?kind=request")
    check(page, "audit-de")
    page.get_by_label("Sprache").select_option("en")
    page.get_by_role("button", name="Wechseln").click()
    sign_out(page)

    sign_in(page, console, "tom_viewer")
    expect(page.locator("header")).to_contain_text("acme")
    check(page, "overview-tenant-viewer")
    page.context.close()
    serious = {n: [v["id"] for v in vs if v["impact"] in FORBIDDEN_IMPACTS] for n, vs in SCANNED.items()}
    assert not any(serious.values()), serious
