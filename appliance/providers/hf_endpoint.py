"""Hugging Face Inference Endpoints adapter.

Text-generation endpoints (TGI, vLLM) serve the OpenAI-compatible API under ``/v1``, so
chat and completions reuse the OpenAI adapter. Embedding endpoints (TEI, or the default
inference toolkit) answer the ``feature-extraction`` task at the endpoint's root:
``{"inputs": [...]}`` in, one vector per input out (or one vector per token, which is
mean-pooled here). That route reports no token counts, so usage is zero.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from appliance.config import HFEndpointProviderConfig, secret
from appliance.errors import UpstreamError
from appliance.providers._http import Upstream, dumps, post_json
from appliance.providers.base import Body
from appliance.providers.openai import OpenAICompatibleProvider


def _pooled(vector: Any) -> list[float]:
    """A sentence vector from either a vector or a list of token vectors (mean pooling)."""
    if vector and isinstance(vector[0], list):
        if vector[0] and isinstance(vector[0][0], list):  # batch of one: [[[...]]]
            vector = vector[0]
        width = len(vector[0])
        return [sum(tok[i] for tok in vector) / len(vector) for i in range(width)]
    return [float(v) for v in vector]


class HFEndpointProvider(OpenAICompatibleProvider):
    kind = "hf_endpoint"

    def __init__(
        self, name: str, config: HFEndpointProviderConfig, http: aiohttp.ClientSession
    ) -> None:
        key = secret(config.api_key_env)
        super().__init__(
            name,
            region=config.region,
            base_url=config.base_url.rstrip("/") + "/v1",
            headers={"Authorization": f"Bearer {key}"} if key else {},
            upstream=Upstream.of(name, config, secrets=(key,) if key else ()),
            http=http,
        )
        self._root = config.base_url.rstrip("/")

    async def embeddings(self, body: Body) -> Body:
        inputs = body.get("input", "")
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        result = await post_json(
            self._http, self._up, self._root + "/", dumps({"inputs": texts}), self._headers
        )
        if not isinstance(result, list) or len(result) != len(texts):
            raise UpstreamError(
                f"{self.name} upstream sent an unexpected feature-extraction answer"
            )
        data = [
            {"object": "embedding", "index": i, "embedding": _pooled(vec)}
            for i, vec in enumerate(result)
        ]
        return {
            "object": "list",
            "data": data,
            "model": body.get("model", ""),
            "usage": {"prompt_tokens": 0, "total_tokens": 0},
        }


def create(
    name: str, config: HFEndpointProviderConfig, http: aiohttp.ClientSession
) -> HFEndpointProvider:
    return HFEndpointProvider(name, config, http)
