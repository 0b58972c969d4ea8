"""Browser tests: Debian's Chromium, driven by Playwright, against the real appliance.

One appliance per test session, run as a real process with every stage on (PII, risk,
policy, audit), a fake OpenAI upstream, a private copy of the policies, the console's
users created with ``appliance users create`` and a real OpenID provider (panva's
oidc-provider on Node) on loopback for single sign-on. One browser per test module.
Screenshots of every page go to ``docs/console/`` (``docs/console.md`` shows them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI
from playwright.sync_api import Browser, Page, sync_playwright

from appliance.testing.console import PASSWORD, USERS, create_users
from appliance.testing.fakes import FakeOpenAI
from appliance.testing.harness import (
    UPSTREAM_KEY_ENV,
    ServerProcess,
    create_key,
    merge,
    openai_upstream,
    serve_subprocess,
    to_toml,
)
from appliance.testing.engines import free_port

REPO = Path(__file__).resolve().parents[3]
CHROMIUM = Path("/usr/bin/chromium")
IDP_DIR = Path(__file__).resolve().parents[1] / "oidc"
SHOTS = REPO / "docs" / "console"
UPSTREAM_KEY = "sk-console-upstream"
OIDC_SECRET = "console-test-secret"
AXE = Path(__file__).resolve().parents[1] / "vendor" / "axe.min.js"


@dataclass
class Console:
    server: ServerProcess
    data_dir: Path
    config_path: Path
    policy_dir: Path
    issuer: str
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    def chat(self, key: str, text: str, model: str = "gpt-4o") -> str:
        client = OpenAI(base_url=self.url + "/v1", api_key=key, max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": text}])
        return str(raw.headers["x-request-id"])


@pytest.fixture(scope="session")
def idp_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def console(tmp_path_factory: pytest.TempPathFactory, test_models: Any, idp_port: int) -> Iterator[Console]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is not installed (.ci/run installs it)")
    if not (IDP_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.fail("the test OpenID provider is not installed: npm ci --prefix tests/console/oidc (.ci/run does)")
    work = tmp_path_factory.mktemp("console")
    policy_dir = work / "policies"
    shutil.copytree(REPO / "policies", policy_dir)
    with open(policy_dir / "obligations.rego", "a") as f:  # payloads to open in the audit trail
        f.write('\nstore_payloads if input.principal.department == "records"\n')
    port = free_port()
    issuer = f"http://127.0.0.1:{idp_port}"
    idp = subprocess.Popen(
        ["node", "provider.mjs"], cwd=IDP_DIR, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PORT": str(idp_port), "CLIENT_SECRET": OIDC_SECRET,
             "REDIRECT_URI": f"http://127.0.0.1:{port}/console/oidc/callback"},
    )
    try:
        assert idp.stdout is not None and "listening" in idp.stdout.readline()
        with FakeOpenAI(api_key=UPSTREAM_KEY).running() as fake:
            config = merge(
                openai_upstream("openai", fake.base_url, {"gpt-4o": "gpt-4o", "gpt-4o-mini": "gpt-4o-mini"},
                                region="eu"),
                {
                    "providers": {"local": {"models_dir": str(test_models.models_dir)}},
                    "policy": {"dir": str(policy_dir), "reload_interval_s": 0.2},
                    "console": {
                        "audit_refresh_s": 0,
                        "oidc": {
                            "issuer": issuer, "client_id": "console", "client_secret_env": "CONSOLE_OIDC_SECRET",
                            "scopes": ["openid", "profile", "groups"], "display_name": "Example IdP",
                            "role_mapping": {"compliance": ["auditor", "policy_approver"],
                                             "acme-readers": ["tenant_viewer"]},
                        },
                    },
                },
            )
            config_path = work / "appliance.toml"
            config_path.write_text(to_toml(config))
            data_dir = work / "data"
            data_dir.mkdir()
            create_users(config_path, data_dir, via_cli=True)
            env = {UPSTREAM_KEY_ENV: UPSTREAM_KEY, "CONSOLE_OIDC_SECRET": OIDC_SECRET}
            with serve_subprocess(config_path, data_dir, env=env, port=port) as server:
                c = Console(server, data_dir, config_path, policy_dir, issuer)
                _traffic(c)
                yield c
    finally:
        idp.terminate()
        idp.wait(10)


def _traffic(c: Console) -> None:
    """Requests of several tenants, models and kinds, with personal data, one denied."""
    c.keys["acme"] = create_key(c.data_dir, tenant="acme", user="alice", department="engineering")
    c.keys["globex"] = create_key(c.data_dir, tenant="globex", user="gustav", department="records")
    c.keys["intern"] = create_key(c.data_dir, tenant="acme", user="ivan", department="interns")
    c.keys["mallory"] = create_key(c.data_dir, tenant="acme", user="mallory")
    c.chat(c.keys["acme"], "Write a friendly reply to jane.doe@example.com about her invoice.")
    c.chat(c.keys["acme"], "Summarise the meeting notes from Tuesday.", model="gpt-4o-mini")
    c.chat(c.keys["globex"], "Bitte fasse den Vertrag von Herrn Klaus Müller, Hauptstraße 5, Berlin zusammen.")
    c.chat(c.keys["mallory"], "What is the capital of France?")
    try:
        c.chat(c.keys["intern"], "Hello")  # interns may use local models only: denied
    except Exception:  # noqa: BLE001 - the denial is the point
        pass


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-default-apps"],
        )
        yield b
        b.close()


def new_page(browser: Browser, *, bypass_csp: bool = False, locale: str = "en-US") -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=bypass_csp,
                                  locale=locale, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    return page


def sign_in(page: Page, console: Console, username: str, password: str = PASSWORD) -> None:
    page.goto(console.url + "/console/login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/console/login")


def shot(page: Page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def users() -> dict[str, Any]:
    return dict(USERS)


def wait_for(predicate: Any, timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)
