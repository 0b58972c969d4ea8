"""OpenAI adapter: the canonical shape is OpenAI's own, so requests pass through as they are.

The one change made to a request: streams always ask for ``stream_options.include_usage``
so metering gets token counts; the last chunk is then OpenAI's usage chunk (no choices).
Azure OpenAI and Hugging Face endpoints speak the same wire format and reuse this class,
overriding only how URLs and auth headers are built.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
from yarl import URL

from appliance.config import OpenAIProviderConfig, secret
from appliance.errors import ApplianceError, UpstreamError
from appliance.providers._http import (
    Upstream,
    dumps,
    guarded,
    iter_sse,
    loads_event,
    open_stream,
    post_json,
    status_error,
    transport_error,
)
from appliance.providers.base import Body
from appliance.providers.responses_format import (
    ResponsesStreamTranslator,
    chat_request_to_responses,
    responses_response_to_chat,
)


class OpenAICompatibleProvider:
    """Forwards canonical requests to any server that speaks the OpenAI REST API."""

    kind = "openai"

    def __init__(
        self,
        name: str,
        *,
        region: str,
        base_url: str,
        headers: Mapping[str, str],
        upstream: Upstream,
        http: aiohttp.ClientSession,
    ) -> None:
        self.name = name
        self.region = region
        self._base = base_url.rstrip("/")
        self._headers = {"Content-Type": "application/json", **headers}
        self._up = upstream
        self._http = http
        self._urls: dict[str, URL] = {}

    def url(self, path: str, body: Body) -> str | URL:
        """Where ``path`` (e.g. ``/chat/completions``) lives for this upstream."""
        url = self._urls.get(path)
        if url is None:  # parsed once per path: this is on every request's path
            url = self._urls[path] = URL(self._base + path)
        return url

    async def _call(self, path: str, body: Body) -> Body:
        result: Body = await post_json(
            self._http, self._up, self.url(path, body), dumps(body), self._headers
        )
        return result

    async def _stream(self, path: str, body: Body) -> AsyncIterator[Body]:
        payload = {**body, "stream": True}
        payload["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        async with open_stream(
            self._http, self._up, self.url(path, body), dumps(payload), self._headers
        ) as resp:
            async for _event, data in guarded(self._up, iter_sse(resp)):
                if data == "[DONE]":
                    return
                chunk = loads_event(self._up, data)
                if isinstance(chunk, dict) and "error" in chunk:
                    raise _stream_error(self._up, chunk)
                if self.keep_chunk(chunk):
                    yield chunk

    def keep_chunk(self, chunk: Body) -> bool:
        return True

    async def chat(self, body: Body) -> Body:
        return await self._call("/chat/completions", body)

    def stream_chat(self, body: Body) -> AsyncIterator[Body]:
        return self._stream("/chat/completions", body)

    async def completions(self, body: Body) -> Body:
        return await self._call("/completions", body)

    def stream_completions(self, body: Body) -> AsyncIterator[Body]:
        return self._stream("/completions", body)

    async def embeddings(self, body: Body) -> Body:
        """Always asks for floats: the canonical shape; the server re-encodes if asked."""
        return await self._call("/embeddings", {**body, "encoding_format": "float"})

    async def aclose(self) -> None:
        """The HTTP session belongs to the app; nothing of our own to close."""


class RespondsNatively(OpenAICompatibleProvider):
    """An upstream that also speaks the Responses API (``SpeaksResponses``): requests that
    came in on ``/v1/responses`` are forwarded to its ``/responses`` natively. OpenAI and
    Azure OpenAI do; HF endpoints, which reuse the chat adapter, go through chat."""

    async def respond(self, body: Body) -> Body:
        return responses_response_to_chat(await self._call("/responses", chat_request_to_responses(body)))

    async def stream_respond(self, body: Body) -> AsyncIterator[Body]:
        payload = chat_request_to_responses({**body, "stream": True})
        translator = ResponsesStreamTranslator()
        async with open_stream(
            self._http, self._up, self.url("/responses", body), dumps(payload), self._headers
        ) as resp:
            async for _event, data in guarded(self._up, iter_sse(resp)):
                if data == "[DONE]":
                    return
                event = loads_event(self._up, data)
                if not isinstance(event, dict):
                    continue
                for chunk in translator.feed(event):
                    yield chunk


class OpenAIProvider(RespondsNatively):
    """OpenAI itself; also runs batches (``RunsBatches``) on its Files and Batch APIs."""

    async def _request(self, method: str, path: str, data: Any = None,
                       headers: Mapping[str, str] | None = None) -> bytes:
        try:
            async with self._http.request(method, self._base + path, data=data,
                                          headers=headers or self._auth(),
                                          timeout=self._up.timeout()) as resp:
                body = await resp.read()
                if resp.status >= 400:
                    raise status_error(self._up, resp.status, body)
                return body
        except ApplianceError:
            raise
        except (aiohttp.ClientError, TimeoutError) as e:
            raise transport_error(self._up, e) from None

    def _auth(self) -> dict[str, str]:
        return {k: v for k, v in self._headers.items() if k != "Content-Type"}

    def _json(self, raw: bytes) -> Body:
        doc = loads_event(self._up, raw)
        if not isinstance(doc, dict):
            raise UpstreamError(f"{self._up.provider} upstream sent an unexpected answer")
        return doc

    async def submit_batch(self, path: str, lines: list[tuple[str, Body]]) -> str:
        jsonl = b"".join(
            dumps({"custom_id": cid, "method": "POST", "url": path, "body": body}) + b"\n"
            for cid, body in lines
        )
        form = aiohttp.FormData()
        form.add_field("purpose", "batch")
        form.add_field("file", jsonl, filename="appliance-batch.jsonl",
                       content_type="application/jsonl")
        upload = self._json(await self._request("POST", "/files", form))
        created = self._json(await self._request(
            "POST", "/batches",
            dumps({"input_file_id": upload["id"], "endpoint": path, "completion_window": "24h"}),
            self._headers,
        ))
        return str(created["id"])

    async def batch_results(self, batch_id: str) -> dict[str, tuple[int, Body]] | None:
        batch = self._json(await self._request("GET", f"/batches/{batch_id}"))
        status = batch.get("status")
        if status not in ("completed", "failed", "expired", "cancelled"):
            return None
        out: dict[str, tuple[int, Body]] = {}
        for key in ("output_file_id", "error_file_id"):
            file_id = batch.get(key)
            if not file_id:
                continue
            content = await self._request("GET", f"/files/{file_id}/content")
            for raw in content.splitlines():
                if not raw.strip():
                    continue
                line = self._json(raw)
                response = line.get("response") or {}
                body = response.get("body") if isinstance(response, dict) else None
                if isinstance(body, dict):
                    out[str(line.get("custom_id"))] = (int(response.get("status_code", 500)), body)
        return out

    async def cancel_batch(self, batch_id: str) -> None:
        await self._request("POST", f"/batches/{batch_id}/cancel")


def _stream_error(up: Upstream, chunk: Mapping[str, Any]) -> UpstreamError:
    err = chunk.get("error")
    message = err.get("message") if isinstance(err, dict) else str(err)
    return UpstreamError(
        f"{up.provider} upstream failed mid-stream: {up.scrub(str(message))}", retryable=True
    )


def create(
    name: str, config: OpenAIProviderConfig, http: aiohttp.ClientSession
) -> OpenAIProvider:
    key = secret(config.api_key_env)
    headers: dict[str, str] = {}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    if config.organization:
        headers["OpenAI-Organization"] = config.organization
    return OpenAIProvider(
        name,
        region=config.region,
        base_url=config.base_url,
        headers=headers,
        upstream=Upstream(
            name, config.timeout_s, config.connect_timeout_s, secrets=(key,) if key else ()
        ),
        http=http,
    )
