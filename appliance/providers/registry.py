"""Provider kinds, found by name: data plus a hook, never an if-ladder.

Each entry maps a config ``kind`` to ``module:factory``; modules load lazily so a
deployment that never forwards to Bedrock never imports botocore.
"""

from __future__ import annotations

import importlib
from typing import Any

import aiohttp

from appliance.providers.base import Provider, ProviderFactory

PROVIDER_KINDS: dict[str, str] = {
    "openai": "appliance.providers.openai:create",
    "azure_openai": "appliance.providers.azure_openai:create",
    "anthropic": "appliance.providers.anthropic:create",
    "bedrock": "appliance.providers.bedrock:create",
    "vertex": "appliance.providers.vertex:create",
    "hf_endpoint": "appliance.providers.hf_endpoint:create",
    "local": "appliance.providers.local:create",
}


def factory_for(kind: str) -> ProviderFactory:
    module, _, attr = PROVIDER_KINDS[kind].partition(":")
    factory: ProviderFactory = getattr(importlib.import_module(module), attr)
    return factory


def create_provider(name: str, config: Any, http: aiohttp.ClientSession) -> Provider:
    return factory_for(config.kind)(name, config, http)
