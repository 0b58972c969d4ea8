"""Sign-in in a real browser: a local account, single sign-on through a real OpenID
provider (authorization code with PKCE), a provider user without a mapped group
refused, and the German console."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from playwright.sync_api import Browser, Page, expect

from tests.console.browser.conftest import Console, new_page, shot, sign_in, sign_out


def console_rows(console: Console) -> list[dict[str, object]]:
    done = subprocess.run([sys.executable, "-m", "appliance", "audit", "search", "--kind", "console", "--json",
                           "--config", str(console.config_path), "--data-dir", str(console.data_dir)],
                          capture_output=True, text=True, timeout=120)
    return [json.loads(x) for x in done.stdout.splitlines()]


def idp_sign_in(page: Page, login: str) -> None:
    """The provider's own sign-in page (and its consent page), as a user fills them in."""
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("any password")
    page.locator("button[type=submit]").click()
    page.wait_for_load_state()
    if "/console/" not in page.url:  # the consent page
        page.locator("button[type=submit]").click()
        page.wait_for_load_state()


def test_local_account_signs_in_and_out(browser: Browser, console: Console) -> None:
    page = new_page(browser)
    page.goto(console.url + "/console/audit")
    expect(page).to_have_url(re.compile(r"/console/login\?next="))
    shot(page, "login")
    sign_in(page, console, "aud_auditor", "wrong password")
    expect(page.locator("#login-error")).to_be_visible()
    sign_in(page, console, "aud_auditor")
    expect(page.get_by_role("heading", level=1)).to_have_text("Overview")
    cookie = next(c for c in page.context.cookies() if c["name"] == "appliance_console")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Lax"
    expect(page.locator("#totals")).to_contain_text("Requests")
    shot(page, "overview")
    sign_out(page)
    page.goto(console.url + "/console/audit")
    expect(page).to_have_url(re.compile(r"/console/login"))
    page.context.close()


def test_single_sign_on_through_the_organisations_provider(browser: Browser, console: Console) -> None:
    page = new_page(browser)
    page.goto(console.url + "/console/login")
    page.get_by_role("link", name="Sign in with Example IdP").click()
    assert page.url.startswith(console.issuer)  # at the provider now
    assert "code_challenge_method=S256" in page.url or "/interaction/" in page.url
    idp_sign_in(page, "olivia")
    expect(page.get_by_role("heading", level=1)).to_have_text("Overview")
    expect(page.locator("header")).to_contain_text("olivia")
    expect(page.locator("header")).to_contain_text("auditor, policy_approver")  # from her group
    page.goto(console.url + "/console/keys")
    assert page.locator("h1").inner_text().startswith("Error 403")
    sign_out(page)
    page.context.close()

    # a fresh browser: the provider still remembers olivia's session in the first one
    page = new_page(browser)
    page.goto(console.url + "/console/login")
    page.get_by_role("link", name="Sign in with Example IdP").click()
    idp_sign_in(page, "nora")  # her only group maps to no console role
    expect(page.locator("#login-error")).to_be_visible()
    page.context.close()
    rows = console_rows(console)
    signins = [r["extra"] for r in rows if r["user_id"] == "console:olivia"]  # type: ignore[index]
    assert any(r["action"] == "signin" and r["method"] == "oidc" for r in signins)  # type: ignore[index]
    refused = [r["extra"] for r in rows if r["user_id"] == "console:nora"]
    assert refused and refused[0]["reason"] == "no_mapped_group"  # type: ignore[index]


def test_the_console_in_german(browser: Browser, console: Console) -> None:
    page = new_page(browser)
    sign_in(page, console, "aud_auditor")
    page.get_by_label("Language").select_option("de")
    page.get_by_role("button", name="Switch").click()
    page.wait_for_load_state()
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page.get_by_role("heading", level=1)).to_have_text("Übersicht")
    expect(page.get_by_role("navigation")).to_contain_text("Prüfpfad")
    shot(page, "overview-de")
    page.get_by_role("link", name="Prüfpfad").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Prüfpfad")
    expect(page.locator("#match-count")).to_contain_text("passende Einträge")
    # the choice is the user's: a new browser session keeps it
    other = new_page(browser)
    sign_in(other, console, "aud_auditor")
    expect(other.locator("html")).to_have_attribute("lang", "de")
    other.get_by_label("Sprache").select_option("en")
    other.get_by_role("button", name="Wechseln").click()
    expect(other.get_by_role("heading", level=1)).to_have_text("Overview")
    page.context.close()
    other.context.close()
