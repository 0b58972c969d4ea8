"""Fake upstream providers: real aiohttp servers on loopback that speak each wire format.

Shipped in the package so every test suite and benchmark can reuse them::

    async with FakeOpenAI() as fake:          # in async code
        ... fake.base_url, fake.requests, fake.fail_next(503, times=2)

    with FakeOpenAI().running() as fake:      # from sync code: a background thread
        ...

The classes are imported lazily (``FakeBedrock`` pulls in botocore, ``FakeVertex``
google-auth) so that using one fake never imports the others' dependencies.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "FakeProvider": "_server",
    "RecordedRequest": "_server",
    "stalled_listener": "_server",
    "FakeOpenAI": "openai",
    "FakeAzureOpenAI": "openai",
    "FakeHFEndpoint": "openai",
    "FakeAnthropic": "anthropic",
    "FakeBedrock": "bedrock",
    "FakeVertex": "vertex",
}

__all__ = [
    "FakeAnthropic",
    "FakeAzureOpenAI",
    "FakeBedrock",
    "FakeHFEndpoint",
    "FakeOpenAI",
    "FakeProvider",
    "FakeVertex",
    "RecordedRequest",
    "stalled_listener",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(name)
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
