"""Shared fixtures: one aiohttp session per test and the secret the fakes expect."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

KEY_ENV = "APPLIANCE_TEST_PROVIDER_KEY"
KEY = "test-key"


@pytest.fixture
def provider_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, KEY)
    return KEY_ENV


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
