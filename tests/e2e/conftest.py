"""One appliance with every stage on, run as a real process for the whole test session.

Starting the full pipeline costs seconds (Presidio worker processes, ONNX sessions, the
Rego bundle), so the e2e tests share one server per pytest worker, with the built-in
local models built once per run and shared by every worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from appliance.testing.fakes import FakeAnthropic, FakeOpenAI
from appliance.testing.harness import (
    UPSTREAM_KEY_ENV,
    ServerProcess,
    create_key,
    merge,
    openai_upstream,
    serve_subprocess,
    to_toml,
)

UPSTREAM_KEY = "sk-e2e-upstream"
ADMIN_KEY = "admin-e2e"


@dataclass
class FullAppliance:
    server: ServerProcess
    data_dir: Path
    config_path: Path
    openai: FakeOpenAI
    anthropic: FakeAnthropic
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def base_url(self) -> str:
        return self.server.url + "/v1"

    def key(self, **kw: Any) -> str:
        return create_key(self.data_dir, **kw)


@pytest.fixture(scope="session")
def full_appliance(tmp_path_factory: pytest.TempPathFactory, test_models: Any) -> Iterator[FullAppliance]:
    work = tmp_path_factory.mktemp("full")
    with (
        FakeOpenAI(api_key=UPSTREAM_KEY).running() as fake_openai,
        FakeAnthropic(api_key=UPSTREAM_KEY).running() as fake_anthropic,
    ):
        config = merge(
            openai_upstream("openai", fake_openai.base_url, {"gpt-4o": "gpt-4o"}, region="us"),
            openai_upstream("openai-eu", fake_openai.base_url, {"gpt-4o-eu": "gpt-4o"}, region="eu"),
            {
                "providers": {
                    "anthropic": {
                        "kind": "anthropic",
                        "base_url": fake_anthropic.base_url,
                        "api_key_env": UPSTREAM_KEY_ENV,
                        "region": "eu",
                    },
                    "local": {"models_dir": str(test_models.models_dir)},
                },
                "models": {"claude": {"provider": "anthropic", "upstream_model": "claude-sonnet-4-5"}},
                "policy": {"dir": str(Path(__file__).resolve().parents[2] / "policies")},
            },
        )
        config_path = work / "appliance.toml"
        config_path.write_text(to_toml(config))
        data_dir = work / "data"
        env = {UPSTREAM_KEY_ENV: UPSTREAM_KEY, "APPLIANCE_ADMIN_KEY": ADMIN_KEY}
        with serve_subprocess(config_path, data_dir, env=env) as server:
            yield FullAppliance(server, data_dir, config_path, fake_openai, fake_anthropic)
