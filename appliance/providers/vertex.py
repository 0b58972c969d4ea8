"""Google Vertex AI adapter for Gemini models (generateContent, streamGenerateContent).

Credentials come from google-auth: a service-account file (the path named by
``credentials_file_env``), Application Default Credentials, or a static token
(``access_token_env``). Token refresh is a blocking HTTP call inside google-auth, so it
runs in a worker thread, once for all concurrent requests (a lock is held only while a
refresh is due, never around the upstream call itself).
"""

from __future__ import annotations

import asyncio
import mimetypes
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from appliance.config import VertexProviderConfig, secret
from appliance.errors import InvalidRequest, UnsupportedOperation, UpstreamError
from appliance.providers._completions import chat_as_completion, stream_chat_as_completion
from appliance.providers._http import (
    Upstream,
    dumps,
    guarded,
    iter_sse,
    loads_event,
    open_stream,
    post_json,
    reads_upstream,
    rejects_malformed,
)
from appliance.providers._translate import append_turn, tool_arguments
from appliance.providers.base import Body

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"

#: Gemini ``finishReason`` -> OpenAI ``finish_reason`` (unlisted reasons map to "stop").
FINISH_REASONS: dict[str, str] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}

#: JSON-Schema keywords Gemini's OpenAPI-subset schema rejects.
_UNSUPPORTED_SCHEMA_KEYS = frozenset(
    {"$schema", "additionalProperties", "$id", "$defs", "definitions", "strict"}
)


# ------------------------------------------------------------------ credentials


class AccessTokens:
    """Bearer tokens for Vertex: static, or minted and refreshed by google-auth off the loop."""

    def __init__(self, config: VertexProviderConfig) -> None:
        self._config = config
        self._static = secret(config.access_token_env)
        self._credentials: Any = None
        self._lock = asyncio.Lock()

    def _load(self) -> Any:
        path = secret(self._config.credentials_file_env)
        if path:
            from google.oauth2 import service_account

            return service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
                path, scopes=[CLOUD_PLATFORM_SCOPE]
            )
        import google.auth

        credentials, _project = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
        return credentials

    @staticmethod
    def _refresh(credentials: Any) -> None:
        import google.auth.transport.requests

        credentials.refresh(google.auth.transport.requests.Request())

    async def token(self) -> str:
        if self._static:
            return self._static
        credentials = self._credentials
        if credentials is None or not credentials.valid:
            async with self._lock:
                import google.auth.exceptions

                try:
                    if self._credentials is None:
                        self._credentials = await asyncio.to_thread(self._load)
                    if not self._credentials.valid:
                        await asyncio.to_thread(self._refresh, self._credentials)
                except google.auth.exceptions.TransportError:
                    raise UpstreamError(
                        "vertex: the token endpoint is unreachable", retryable=True
                    ) from None
                except (google.auth.exceptions.GoogleAuthError, OSError, ValueError) as e:
                    raise UpstreamError(
                        f"vertex: could not obtain an access token ({type(e).__name__})"
                    ) from None
            credentials = self._credentials
        return str(credentials.token)


# ------------------------------------------------------------- OpenAI -> Gemini


def _schema(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _schema(v) for k, v in schema.items() if k not in _UNSUPPORTED_SCHEMA_KEYS}
    if isinstance(schema, list):
        return [_schema(v) for v in schema]
    return schema


def _parts(content: Any) -> list[Body]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[Body] = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            parts.append({"text": part.get("text", "")})
        elif kind == "image_url":
            image = part.get("image_url") or {}
            url = image.get("url", "") if isinstance(image, dict) else str(image)
            if url.startswith("data:"):
                header, _, data = url.partition(",")
                parts.append({"inlineData": {"mimeType": header[5:].split(";")[0], "data": data}})
            else:
                mime = mimetypes.guess_type(url)[0] or "image/jpeg"
                parts.append({"fileData": {"mimeType": mime, "fileUri": url}})
        else:
            raise UnsupportedOperation(
                f"content part type {kind!r} is not supported by Gemini", param="messages"
            )
    return parts


def _function_response(content: Any) -> Body:
    text = (
        content
        if isinstance(content, str)
        else "".join(p.get("text", "") for p in content or [] if isinstance(p, dict))
    )
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = None
    return value if isinstance(value, dict) else {"content": text}


@rejects_malformed
def openai_to_gemini(body: Body) -> Body:
    """A canonical chat request as a Gemini ``generateContent`` body."""
    system: list[Body] = []
    contents: list[Body] = []
    names: dict[str, str] = {}  # tool call id -> function name (Gemini answers by name)
    for message in body.get("messages") or []:
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_parts(message.get("content")))
            continue
        if role == "tool":
            call_id = message.get("tool_call_id", "")
            role = "user"
            parts = [
                {
                    "functionResponse": {
                        "name": names.get(call_id, call_id),
                        "response": _function_response(message.get("content")),
                    }
                }
            ]
        elif role == "assistant":
            role = "model"
            parts = _parts(message.get("content"))
            for call in message.get("tool_calls") or []:
                fn = call.get("function") or {}
                names[call.get("id", "")] = fn.get("name", "")
                args = tool_arguments(fn.get("arguments"))
                parts.append({"functionCall": {"name": fn.get("name", ""), "args": args}})
        elif role == "user":
            parts = _parts(message.get("content"))
        else:
            raise InvalidRequest(f"unsupported message role {role!r}", param="messages")
        append_turn(contents, role, parts, "parts")

    out: Body = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": system}
    generation: Body = {}
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens:
        generation["maxOutputTokens"] = int(max_tokens)
    for ours, theirs in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("seed", "seed"),
        ("n", "candidateCount"),
    ):
        if body.get(ours) is not None:
            generation[theirs] = body[ours]
    stop = body.get("stop")
    if stop:
        generation["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    if (body.get("response_format") or {}).get("type") in ("json_object", "json_schema"):
        generation["responseMimeType"] = "application/json"
    if generation:
        out["generationConfig"] = generation
    tools = body.get("tools")
    if tools:
        out["tools"] = [
            {
                "functionDeclarations": [
                    {
                        "name": t["function"]["name"],
                        "description": t["function"].get("description", ""),
                        **(
                            {"parameters": _schema(t["function"]["parameters"])}
                            if t["function"].get("parameters")
                            else {}
                        ),
                    }
                    for t in tools
                    if t.get("type", "function") == "function"
                ]
            }
        ]
        choice = body.get("tool_choice")
        config: Body | None = None
        if choice == "required":
            config = {"mode": "ANY"}
        elif choice == "none":
            config = {"mode": "NONE"}
        elif isinstance(choice, dict):
            config = {"mode": "ANY", "allowedFunctionNames": [choice["function"]["name"]]}
        if config is not None:
            out["toolConfig"] = {"functionCallingConfig": config}
    return out


# ------------------------------------------------------------- Gemini -> OpenAI


def _usage(meta: Body | None) -> Body:
    meta = meta or {}
    prompt = int(meta.get("promptTokenCount") or 0)
    completion = int(meta.get("candidatesTokenCount") or 0) + int(
        meta.get("thoughtsTokenCount") or 0
    )
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _finish(reason: str | None, has_calls: bool) -> str:
    finish = FINISH_REASONS.get(reason or "STOP", "stop")
    return "tool_calls" if has_calls and finish == "stop" else finish


def _call(part: Body, fallback_id: str) -> Body:
    fn = part["functionCall"]
    return {
        "id": fn.get("id") or fallback_id,
        "type": "function",
        "function": {
            "name": fn.get("name", ""),
            "arguments": orjson.dumps(fn.get("args") or {}).decode(),
        },
    }


@reads_upstream
def gemini_to_openai(resp: Body, model: str) -> Body:
    choices = []
    candidates = resp.get("candidates") or []
    for i, candidate in enumerate(candidates):
        texts: list[str] = []
        calls: list[Body] = []
        for part in (candidate.get("content") or {}).get("parts") or []:
            if part.get("thought"):
                continue
            if "text" in part:
                texts.append(part["text"])
            elif "functionCall" in part:
                calls.append(_call(part, f"call_{i}_{len(calls)}"))
        message: Body = {
            "role": "assistant",
            "content": "".join(texts) if texts or not calls else None,
        }
        if calls:
            message["tool_calls"] = calls
        choices.append(
            {
                "index": candidate.get("index", i),
                "message": message,
                "finish_reason": _finish(candidate.get("finishReason"), bool(calls)),
                "logprobs": None,
            }
        )
    if not choices:  # the prompt itself was blocked (promptFeedback.blockReason)
        choices.append(
            {
                "index": 0,
                "message": {"role": "assistant", "content": ""},
                "finish_reason": "content_filter",
                "logprobs": None,
            }
        )
    return {
        "id": f"chatcmpl-{resp.get('responseId') or uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": _usage(resp.get("usageMetadata")),
    }


class GeminiStreamTranslator:
    """Each streamed ``GenerateContentResponse`` as OpenAI chunks; usage after the last."""

    def __init__(self, model: str) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.model = model
        self.created = int(time.time())
        self.usage: Body | None = None
        self._started: set[int] = set()
        self._calls: dict[int, int] = {}

    def _chunk(self, index: int, delta: Body, finish: str | None = None) -> Body:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [
                {"index": index, "delta": delta, "finish_reason": finish, "logprobs": None}
            ],
        }

    @reads_upstream
    def feed(self, event: Body) -> list[Body]:
        if event.get("usageMetadata"):
            self.usage = event["usageMetadata"]
        out: list[Body] = []
        for i, candidate in enumerate(event.get("candidates") or []):
            index = int(candidate.get("index", i))
            if index not in self._started:
                self._started.add(index)
                out.append(self._chunk(index, {"role": "assistant", "content": ""}))
            for part in (candidate.get("content") or {}).get("parts") or []:
                if part.get("thought"):
                    continue
                if part.get("text"):
                    out.append(self._chunk(index, {"content": part["text"]}))
                elif "functionCall" in part:
                    number = self._calls.get(index, 0)
                    self._calls[index] = number + 1
                    call = {"index": number, **_call(part, f"call_{index}_{number}")}
                    out.append(self._chunk(index, {"tool_calls": [call]}))
            if candidate.get("finishReason"):
                out.append(
                    self._chunk(index, {}, _finish(candidate["finishReason"], index in self._calls))
                )
        return out

    def final(self) -> Body:
        chunk = self._chunk(0, {})
        chunk["choices"] = []
        chunk["usage"] = _usage(self.usage)
        return chunk


# -------------------------------------------------------------------- adapter


class VertexProvider:
    kind = "vertex"

    def __init__(
        self, name: str, config: VertexProviderConfig, http: aiohttp.ClientSession
    ) -> None:
        self.name = name
        self.region = config.region
        self._http = http
        base = (config.base_url or f"https://{config.location}-aiplatform.googleapis.com").rstrip(
            "/"
        )
        self._prefix = (
            f"{base}/v1/projects/{quote(config.project, safe='')}/locations/"
            f"{quote(config.location, safe='')}/publishers/google/models/"
        )
        self._tokens = AccessTokens(config)
        static = secret(config.access_token_env)
        self._up = Upstream.of(name, config, secrets=(static,) if static else ())

    async def _headers(self) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {await self._tokens.token()}",
        }

    def _url(self, model: str, method: str) -> str:
        return f"{self._prefix}{quote(model, safe='')}:{method}"

    async def chat(self, body: Body) -> Body:
        model = str(body["model"])
        resp = await post_json(
            self._http,
            self._up,
            self._url(model, "generateContent"),
            dumps(openai_to_gemini(body)),
            await self._headers(),
        )
        return gemini_to_openai(resp, model)

    async def stream_chat(self, body: Body) -> AsyncIterator[Body]:
        model = str(body["model"])
        translator = GeminiStreamTranslator(model)
        url = self._url(model, "streamGenerateContent") + "?alt=sse"
        async with open_stream(
            self._http, self._up, url, dumps(openai_to_gemini(body)), await self._headers()
        ) as resp:
            async for _event, data in guarded(self._up, iter_sse(resp)):
                event = loads_event(self._up, data)
                if isinstance(event, dict) and "error" in event:
                    message = self._up.scrub(str((event.get("error") or {}).get("message", "")))
                    raise UpstreamError(
                        f"{self.name} upstream failed mid-stream: {message}", retryable=True
                    )
                for chunk in translator.feed(event):
                    yield chunk
        yield translator.final()

    async def completions(self, body: Body) -> Body:
        return await chat_as_completion(self.chat, body)

    def stream_completions(self, body: Body) -> AsyncIterator[Body]:
        return stream_chat_as_completion(self.stream_chat, body)

    async def embeddings(self, body: Body) -> Body:
        model = str(body["model"])
        inputs = body.get("input", "")
        texts = [inputs] if isinstance(inputs, str) else [str(t) for t in inputs]
        request: Body = {"instances": [{"content": t} for t in texts]}
        if body.get("dimensions"):
            request["parameters"] = {"outputDimensionality": int(body["dimensions"])}
        resp = await post_json(
            self._http, self._up, self._url(model, "predict"), dumps(request), await self._headers()
        )
        data = []
        tokens = 0
        for i, prediction in enumerate(resp.get("predictions") or []):
            embeddings = prediction.get("embeddings") or {}
            data.append(
                {"object": "embedding", "index": i, "embedding": embeddings.get("values", [])}
            )
            tokens += int((embeddings.get("statistics") or {}).get("token_count") or 0)
        return {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    async def aclose(self) -> None:
        """The HTTP session belongs to the app."""


def create(name: str, config: VertexProviderConfig, http: aiohttp.ClientSession) -> VertexProvider:
    return VertexProvider(name, config, http)
