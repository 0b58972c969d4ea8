"""Anthropic adapter: canonical chat requests to the Messages API and back.

The translation itself lives in :mod:`appliance.providers.anthropic_format` (shared with
the appliance's own ``/v1/messages`` route); this module adds the wire: URL, headers,
SSE events. Legacy completions are served by a chat call; embeddings are not offered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp

from appliance.config import AnthropicProviderConfig, secret
from appliance.errors import UnsupportedOperation
from appliance.providers._completions import chat_as_completion, stream_chat_as_completion
from appliance.providers._http import (
    Upstream,
    dumps,
    ended_early,
    guarded,
    iter_sse,
    loads_event,
    open_stream,
    post_json,
)
from appliance.providers.anthropic_format import (
    AnthropicStreamTranslator,
    anthropic_response_to_openai,
    openai_request_to_anthropic,
)
from appliance.providers.base import Body


class AnthropicProvider:
    kind = "anthropic"

    def __init__(
        self, name: str, config: AnthropicProviderConfig, http: aiohttp.ClientSession
    ) -> None:
        self.name = name
        self.region = config.region
        self._config = config
        self._http = http
        self._url = config.base_url.rstrip("/") + "/v1/messages"
        key = secret(config.api_key_env)
        self._headers = {
            "Content-Type": "application/json",
            "anthropic-version": config.anthropic_version,
        }
        if key:
            self._headers["x-api-key"] = key
        self._up = Upstream.of(name, config, secrets=(key,) if key else ())

    def _request(self, body: Body, *, stream: bool) -> bytes:
        payload = openai_request_to_anthropic(
            {**body, "stream": stream}, default_max_tokens=self._config.default_max_tokens
        )
        return dumps(payload)

    async def chat(self, body: Body) -> Body:
        resp = await post_json(
            self._http, self._up, self._url, self._request(body, stream=False), self._headers
        )
        return anthropic_response_to_openai(resp)

    async def stream_chat(self, body: Body) -> AsyncIterator[Body]:
        translator = AnthropicStreamTranslator()
        async with open_stream(
            self._http, self._up, self._url, self._request(body, stream=True), self._headers
        ) as resp:
            ended = False
            async for event, data in guarded(self._up, iter_sse(resp)):
                parsed = loads_event(self._up, data)
                ended = ended or event == "message_stop" or (
                    isinstance(parsed, dict) and parsed.get("type") == "message_stop"
                )
                for chunk in translator.feed(event, parsed):
                    yield chunk
            if not ended:
                raise ended_early(self._up)

    async def completions(self, body: Body) -> Body:
        return await chat_as_completion(self.chat, body)

    def stream_completions(self, body: Body) -> AsyncIterator[Body]:
        return stream_chat_as_completion(self.stream_chat, body)

    async def embeddings(self, body: Body) -> Body:
        raise UnsupportedOperation("Anthropic models do not offer embeddings", param="model")

    async def aclose(self) -> None:
        """The HTTP session belongs to the app."""


def create(
    name: str, config: AnthropicProviderConfig, http: aiohttp.ClientSession
) -> AnthropicProvider:
    return AnthropicProvider(name, config, http)
