from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from presidio_analyzer import AnalyzerEngine

from appliance.config import Config, load_config
from appliance.core.context import Context, Principal
from appliance.config.pii import PiiConfig
from appliance.pii.engine import build_analyzer
from appliance.pii.pool import AnalyzerPool
from appliance.pipeline.pii_detect import PiiDetect
from appliance.pipeline.pii_output import PiiOutput
from appliance.pipeline.redact import Redact


@pytest.fixture(scope="session")
def analyzer() -> AnalyzerEngine:
    """One in-process analyzer per test worker (loading it takes about a second)."""
    return build_analyzer(PiiConfig())


@pytest.fixture(scope="session")
def config() -> Config:
    return load_config(overrides={"pii": {"workers": 1}})


@pytest.fixture(scope="session")
def analyzer_pool(config: Config) -> Iterator[AnalyzerPool]:
    """One warm worker process, shared by the session.

    The process pool is not bound to an event loop, so it is started and closed with
    ``asyncio.run`` and used from each test's own loop.
    """
    pool = AnalyzerPool(config.pii)
    asyncio.run(pool.start())
    yield pool
    asyncio.run(pool.aclose())


@pytest.fixture(scope="session")
def stages(config: Config, analyzer_pool: AnalyzerPool) -> tuple[PiiDetect, Redact, PiiOutput]:
    """The real stages on the session's pool."""
    return PiiDetect(config, analyzer_pool), Redact(config), PiiOutput(config, analyzer_pool)


def make_ctx(body: dict[str, Any], route: str = "chat.completions", **obligations: Any) -> Context:
    ctx = Context(request_id="req-1", route=route, body=body, api_key=None)  # type: ignore[arg-type]
    ctx.principal = Principal(key_id="k1", tenant="t1", user="u1")
    ctx.provider = "openai"
    ctx.obligations.update(obligations)
    return ctx


@pytest.fixture
def no_env_salt(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("APPLIANCE_PII_HASH_SALT", raising=False)
    yield
