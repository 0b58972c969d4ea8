"""Fixtures shared by every test: fake upstreams and the appliance, run for real."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from appliance.config import Config, load_config
from appliance.server.app import create_app
from appliance.testing.fakes import FakeAnthropic, FakeOpenAI
from appliance.testing.harness import (
    PASS_THROUGH,
    UPSTREAM_KEY_ENV,
    create_key,
    merge,
    openai_upstream,
)
from appliance.testing.models import TestModels, ensure_test_models

FAKE_KEY = "sk-upstream-test"

#: Every log line of the session, in this process and in the servers it starts, is
#: checked for the secrets and PII values the tests plant.
pytest_plugins = ["tests.log_canaries"]


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The parent of the per-worker base temp is shared by every xdist worker of this run.
    root = tmp_path_factory.getbasetemp()
    shared = root.parent if root.name.startswith("popen-gw") else root
    return shared / "appliance-models"


@pytest.fixture(scope="session", autouse=True)
def german_tagger() -> Path:
    """The German PII tagger, built once per machine (file lock) before any test runs.

    A server started by a test would otherwise build it on its first start: about three
    minutes on two cores that the other test worker keeps busy, past the harness's
    start-up timeout (a clean CI run failed that way).
    """
    from appliance.pii.de.build import ensure_model

    return ensure_model()


@pytest.fixture(scope="session")
def test_models(model_cache: Path) -> TestModels:
    """The built-in local models, built once per run and shared by xdist workers (file lock)."""
    return ensure_test_models(model_cache)


@pytest.fixture
async def fake_openai(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeOpenAI]:
    monkeypatch.setenv(UPSTREAM_KEY_ENV, FAKE_KEY)
    async with FakeOpenAI(api_key=FAKE_KEY) as fake:
        yield fake


@pytest.fixture
async def fake_anthropic(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeAnthropic]:
    monkeypatch.setenv("APPLIANCE_TEST_ANTHROPIC_KEY", FAKE_KEY)
    async with FakeAnthropic(api_key=FAKE_KEY) as fake:
        yield fake


@dataclass
class Running:
    server: TestServer
    config: Config
    data_dir: Path
    key: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def new_key(self, **kw: Any) -> str:
        return create_key(self.data_dir, **kw)


StartAppliance = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start_appliance(
    aiohttp_server: Callable[..., Awaitable[TestServer]], tmp_path: Path
) -> StartAppliance:
    """Start the real app on a loopback port with the given config overrides."""

    async def start(*parts: dict[str, Any], key_kw: dict[str, Any] | None = None) -> Running:
        data_dir = tmp_path / "data"
        config = load_config(None, data_dir=data_dir, overrides=merge(*parts))
        data_dir.mkdir(parents=True, exist_ok=True)
        key = create_key(data_dir, **(key_kw or {}))
        app: web.Application = create_app(config)
        server = await aiohttp_server(app)
        return Running(server, config, data_dir, key)

    return start


@pytest.fixture
def openai_models(fake_openai: FakeOpenAI) -> dict[str, Any]:
    """Config: models gpt-4o and text-embedding-3-small served by the fake OpenAI, with
    the compliance stages off (the wire protocol is under test; tests/e2e runs them all)."""
    return merge(
        openai_upstream(
            "openai",
            fake_openai.base_url,
            {"gpt-4o": "gpt-4o-2024-08-06", "text-embedding-3-small": "text-embedding-3-small"},
            region="us",
        ),
        {"models": {"text-embedding-3-small": {"task": "embedding"}}},
        PASS_THROUGH,
    )
