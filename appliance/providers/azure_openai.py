"""Azure OpenAI adapter: the OpenAI wire format behind deployment URLs.

Differences from OpenAI, and all that this module handles: the URL names the deployment
(``/openai/deployments/{deployment}/chat/completions?api-version=...``, the deployment
being the model's ``upstream_model``), the key travels in an ``api-key`` header, and
streams start with a content-filter chunk that carries no choices (dropped here, so every
chunk the pipeline sees has the canonical shape). The Responses API lives on Azure's v1
API (``/openai/v1/responses``, the deployment named as the body's model).
"""

from __future__ import annotations

from urllib.parse import quote

import aiohttp

from appliance.config import AzureOpenAIProviderConfig, secret
from appliance.providers._http import Upstream
from appliance.providers.base import Body
from appliance.providers.openai import RespondsNatively


class AzureOpenAIProvider(RespondsNatively):
    kind = "azure_openai"

    def __init__(
        self, name: str, config: AzureOpenAIProviderConfig, http: aiohttp.ClientSession
    ) -> None:
        key = secret(config.api_key_env)
        super().__init__(
            name,
            region=config.region,
            base_url=config.base_url,
            headers={"api-key": key} if key else {},
            upstream=Upstream(
                name, config.timeout_s, config.connect_timeout_s, secrets=(key,) if key else ()
            ),
            http=http,
        )
        self._api_version = quote(config.api_version, safe="")

    def url(self, path: str, body: Body) -> str:
        if path == "/responses":  # Azure's v1 API: the deployment is the body's model
            return f"{self._base}/openai/v1/responses"
        deployment = quote(str(body.get("model", "")), safe="")
        return f"{self._base}/openai/deployments/{deployment}{path}?api-version={self._api_version}"

    def keep_chunk(self, chunk: Body) -> bool:
        return bool(chunk.get("choices")) or bool(chunk.get("usage"))


def create(
    name: str, config: AzureOpenAIProviderConfig, http: aiohttp.ClientSession
) -> AzureOpenAIProvider:
    return AzureOpenAIProvider(name, config, http)
