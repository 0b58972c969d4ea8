"""The console against a real appliance on a loopback port.

``console_app`` runs the app in-process (aiohttp test server) with the stages the console
reads switched on (decide and record; PII and risk off: they cost seconds and the console
reads their findings the same way), a fake OpenAI upstream, a private copy of the shipped
policies (approvals write into it) and one console user per role, created with the CLI.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from openai import AsyncOpenAI

from appliance.testing.console import ConsoleClient, create_users
from appliance.testing.fakes import FakeOpenAI
from appliance.testing.harness import merge, openai_upstream
from tests.conftest import Running, StartAppliance

REPO = Path(__file__).resolve().parents[2]


def console_config(fake: FakeOpenAI, policy_dir: Path, **console: Any) -> dict[str, Any]:
    return merge(
        openai_upstream("openai", fake.base_url, {"gpt-4o": "gpt-4o", "gpt-4o-mini": "gpt-4o-mini"}),
        {
            "pipeline": {"redact": False, "classify": False, "limits": False, "screen_output": False},
            "policy": {"dir": str(policy_dir), "reload_interval_s": 0.2},
            "console": {"secure_cookies": False, "audit_refresh_s": 0, **console},
        },
    )


def copy_policies(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(REPO / "policies", target)
    return target


@dataclass
class ConsoleApp:
    running: Running
    policy_dir: Path

    @property
    def url(self) -> str:
        return self.running.url

    def client(self) -> ConsoleClient:
        return ConsoleClient(self.url)

    async def chat(self, key: str | None = None, model: str = "gpt-4o", text: str = "hello") -> str:
        """One request through the appliance; returns its request id."""
        client = AsyncOpenAI(base_url=self.running.base_url, api_key=key or self.running.key, max_retries=0)
        raw = await client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": text}])
        await client.close()
        return raw.headers["x-request-id"]


@pytest.fixture
async def console_app(start_appliance: StartAppliance, fake_openai: FakeOpenAI,
                      tmp_path: Path) -> AsyncIterator[ConsoleApp]:
    policy_dir = copy_policies(tmp_path)
    running = await start_appliance(console_config(fake_openai, policy_dir))
    create_users(None, running.data_dir)
    yield ConsoleApp(running, policy_dir)


@pytest.fixture
def signed_in(console_app: ConsoleApp) -> Callable[[str], Any]:
    """``async with signed_in("aud_auditor") as c:`` a client signed in as that user."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def make(user: str) -> AsyncIterator[ConsoleClient]:
        async with console_app.client() as client:
            assert await client.sign_in(user) == 200
            yield client

    return make
