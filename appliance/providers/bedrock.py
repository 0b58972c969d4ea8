"""AWS Bedrock adapter: the Converse and ConverseStream APIs, signed with SigV4.

botocore does what it does best and nothing more: ``SigV4Auth`` signs each request
(an ``AWSRequest`` built from the exact bytes aiohttp then sends) and ``EventStreamBuffer``
decodes the binary AWS event stream of ConverseStream (prelude and message CRCs
checked). The HTTP itself stays on the app's aiohttp session.

Embeddings go through InvokeModel with the model family's own body (Titan, Cohere).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer, ParserError
from yarl import URL

from appliance.config import BedrockProviderConfig, secret
from appliance.errors import InvalidRequest, UnsupportedOperation, UpstreamError
from appliance.providers._completions import chat_as_completion, stream_chat_as_completion
from appliance.providers._http import (
    Upstream,
    dumps,
    open_stream,
    post_json,
    reads_upstream,
    rejects_malformed,
    transport_error,
)
from appliance.providers._translate import JSON_ONLY_HINT, append_turn, tool_arguments
from appliance.providers.base import Body

SERVICE = "bedrock"

#: Converse ``stopReason`` -> OpenAI ``finish_reason``.
STOP_TO_FINISH: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}

#: Exceptions inside a ConverseStream that are worth retrying (others are the caller's fault).
RETRYABLE_EXCEPTIONS = frozenset(
    {
        "throttlingException",
        "internalServerException",
        "serviceUnavailableException",
        "modelStreamErrorException",
        "modelNotReadyException",
    }
)

_IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}


# ------------------------------------------------------------ OpenAI -> Converse


def _content_blocks(content: Any) -> list[Body]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    blocks: list[Body] = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                blocks.append({"text": part["text"]})
        elif kind == "image_url":
            image = part.get("image_url") or {}
            url = image.get("url", "") if isinstance(image, dict) else str(image)
            if not url.startswith("data:"):
                raise UnsupportedOperation(
                    "Bedrock accepts images as base64 data URLs only", param="messages"
                )
            header, _, data = url.partition(",")
            media_type = header[5:].split(";")[0]
            fmt = _IMAGE_FORMATS.get(media_type)
            if fmt is None:
                raise UnsupportedOperation(
                    f"image type {media_type!r} is not supported by Bedrock", param="messages"
                )
            blocks.append({"image": {"format": fmt, "source": {"bytes": data}}})
        else:
            raise UnsupportedOperation(
                f"content part type {kind!r} is not supported by Bedrock", param="messages"
            )
    return blocks


def _tool_result_content(content: Any) -> list[Body]:
    text = (
        content
        if isinstance(content, str)
        else "".join(
            p.get("text", "")
            for p in content or []
            if isinstance(p, dict) and p.get("type") == "text"
        )
    )
    return [{"text": text}]


@rejects_malformed
def openai_to_converse(body: Body) -> Body:
    """A canonical chat request as a Converse request body (the model id goes in the URL)."""
    if int(body.get("n") or 1) != 1:
        raise UnsupportedOperation("Bedrock returns one choice only (n must be 1)", param="n")
    system: list[Body] = []
    turns: list[Body] = []
    for message in body.get("messages") or []:
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_content_blocks(message.get("content")))
            continue
        if role == "tool":
            role = "user"
            blocks = [
                {
                    "toolResult": {
                        "toolUseId": message.get("tool_call_id", ""),
                        "content": _tool_result_content(message.get("content")),
                    }
                }
            ]
        elif role == "assistant":
            blocks = _content_blocks(message.get("content"))
            for call in message.get("tool_calls") or []:
                fn = call.get("function") or {}
                blocks.append(
                    {
                        "toolUse": {
                            "toolUseId": call.get("id", ""),
                            "name": fn.get("name", ""),
                            "input": tool_arguments(fn.get("arguments")),
                        }
                    }
                )
        elif role == "user":
            blocks = _content_blocks(message.get("content"))
        else:
            raise InvalidRequest(f"unsupported message role {role!r}", param="messages")
        append_turn(turns, role, blocks, "content")
    fmt = body.get("response_format") or {}
    if fmt.get("type") in ("json_object", "json_schema"):
        system.append({"text": JSON_ONLY_HINT})

    out: Body = {"messages": turns}
    if system:
        out["system"] = system
    inference: Body = {}
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens:
        inference["maxTokens"] = int(max_tokens)
    if body.get("temperature") is not None:
        inference["temperature"] = min(float(body["temperature"]), 1.0)
    if body.get("top_p") is not None:
        inference["topP"] = body["top_p"]
    stop = body.get("stop")
    if stop:
        inference["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    if inference:
        out["inferenceConfig"] = inference
    tools = body.get("tools")
    if tools:
        config: Body = {
            "tools": [
                {
                    "toolSpec": {
                        "name": t["function"]["name"],
                        "description": t["function"].get("description") or t["function"]["name"],
                        "inputSchema": {
                            "json": t["function"].get("parameters")
                            or {"type": "object", "properties": {}}
                        },
                    }
                }
                for t in tools
                if t.get("type", "function") == "function"
            ]
        }
        choice = body.get("tool_choice")
        if choice == "required":
            config["toolChoice"] = {"any": {}}
        elif isinstance(choice, dict):
            config["toolChoice"] = {"tool": {"name": choice["function"]["name"]}}
        elif choice in (None, "auto"):
            config["toolChoice"] = {"auto": {}}
        # "none": Converse has no such choice; the tools stay declared (history may use them)
        out["toolConfig"] = config
    return out


# ------------------------------------------------------------ Converse -> OpenAI


def _usage(usage: Body | None) -> Body:
    usage = usage or {}
    prompt = int(usage.get("inputTokens") or 0)
    completion = int(usage.get("outputTokens") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


@reads_upstream
def converse_to_openai(resp: Body, model: str) -> Body:
    texts: list[str] = []
    calls: list[Body] = []
    for block in ((resp.get("output") or {}).get("message") or {}).get("content") or []:
        if "text" in block:
            texts.append(block["text"])
        elif "toolUse" in block:
            use = block["toolUse"]
            calls.append(
                {
                    "id": use.get("toolUseId", ""),
                    "type": "function",
                    "function": {
                        "name": use.get("name", ""),
                        "arguments": orjson.dumps(use.get("input") or {}).decode(),
                    },
                }
            )
    message: Body = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": STOP_TO_FINISH.get(resp.get("stopReason") or "end_turn", "stop"),
                "logprobs": None,
            }
        ],
        "usage": _usage(resp.get("usage")),
    }


class ConverseStreamTranslator:
    """ConverseStream events, one at a time, as OpenAI ``chat.completion.chunk``s."""

    def __init__(self, model: str) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.model = model
        self.created = int(time.time())
        self._tools: dict[int, int] = {}

    def _chunk(self, delta: Body, finish: str | None = None) -> Body:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }

    @reads_upstream
    def feed(self, event: str, data: Body) -> list[Body]:
        if event == "messageStart":
            return [self._chunk({"role": "assistant", "content": ""})]
        if event == "contentBlockStart":
            use = (data.get("start") or {}).get("toolUse")
            if use is None:
                return []
            index = len(self._tools)
            self._tools[int(data.get("contentBlockIndex", 0))] = index
            call = {
                "index": index,
                "id": use.get("toolUseId", ""),
                "type": "function",
                "function": {"name": use.get("name", ""), "arguments": ""},
            }
            return [self._chunk({"tool_calls": [call]})]
        if event == "contentBlockDelta":
            delta = data.get("delta") or {}
            if "text" in delta:
                return [self._chunk({"content": delta["text"]})]
            if "toolUse" in delta and delta["toolUse"].get("input"):
                index = self._tools.get(int(data.get("contentBlockIndex", 0)), 0)
                call = {"index": index, "function": {"arguments": delta["toolUse"]["input"]}}
                return [self._chunk({"tool_calls": [call]})]
            return []
        if event == "messageStop":
            return [
                self._chunk({}, STOP_TO_FINISH.get(data.get("stopReason") or "end_turn", "stop"))
            ]
        if event == "metadata":
            final = self._chunk({})
            final["choices"] = []
            final["usage"] = _usage(data.get("usage"))
            return [final]
        return []  # contentBlockStop, reasoning deltas, future event types


# ------------------------------------------------------------------ embeddings


def _titan_body(texts: list[str], body: Body) -> list[Body]:
    extra = {"dimensions": body["dimensions"]} if body.get("dimensions") else {}
    return [{"inputText": t, **extra} for t in texts]


def _titan_vectors(answers: list[Body]) -> tuple[list[list[float]], int]:
    return [a["embedding"] for a in answers], sum(
        int(a.get("inputTextTokenCount") or 0) for a in answers
    )


def _cohere_body(texts: list[str], body: Body) -> list[Body]:
    return [{"texts": texts, "input_type": "search_document"}]


def _cohere_vectors(answers: list[Body]) -> tuple[list[list[float]], int]:
    embeddings = answers[0]["embeddings"]
    if isinstance(embeddings, dict):  # newer Cohere answers by embedding type
        embeddings = embeddings["float"]
    return list(embeddings), 0


#: Most InvokeModel calls one embeddings request keeps in flight at once.
EMBEDDING_CONCURRENCY = 8

#: Embedding model families: model id prefix -> (request bodies, answer reader).
EMBEDDING_FAMILIES: dict[
    str,
    tuple[
        Callable[[list[str], Body], list[Body]],
        Callable[[list[Body]], tuple[list[list[float]], int]],
    ],
] = {
    "amazon.titan-embed": (_titan_body, _titan_vectors),
    "cohere.embed": (_cohere_body, _cohere_vectors),
}


# -------------------------------------------------------------------- adapter


class BedrockProvider:
    kind = "bedrock"

    def __init__(
        self, name: str, config: BedrockProviderConfig, http: aiohttp.ClientSession
    ) -> None:
        self.name = name
        self.region = config.region
        self._config = config
        self._http = http
        self._base = (
            config.base_url or f"https://bedrock-runtime.{config.aws_region}.amazonaws.com"
        ).rstrip("/")
        access_key = secret(config.access_key_id_env)
        secret_key = secret(config.secret_access_key_env)
        token = secret(config.session_token_env)
        self._credentials = (
            Credentials(access_key, secret_key, token) if access_key and secret_key else None
        )
        self._up = Upstream.of(name, config, secrets=tuple(s for s in (secret_key, token) if s))

    def _url(self, model: str, action: str) -> str:
        return f"{self._base}/model/{quote(model, safe='')}/{action}"

    def _signed_headers(self, url: str, payload: bytes, accept: str) -> dict[str, str]:
        if self._credentials is None:
            raise UpstreamError(
                f"{self.name}: no AWS credentials in ${self._config.access_key_id_env} / "
                f"${self._config.secret_access_key_env}"
            )
        request = AWSRequest(
            method="POST",
            url=url,
            data=payload,
            headers={"Content-Type": "application/json", "Accept": accept},
        )
        SigV4Auth(self._credentials, SERVICE, self._config.aws_region).add_auth(request)
        return dict(request.headers.items())

    async def _post(self, model: str, action: str, payload: bytes) -> Any:
        url = self._url(model, action)
        headers = self._signed_headers(url, payload, "application/json")
        return await post_json(self._http, self._up, URL(url, encoded=True), payload, headers)

    async def chat(self, body: Body) -> Body:
        model = str(body["model"])
        resp = await self._post(model, "converse", dumps(openai_to_converse(body)))
        return converse_to_openai(resp, model)

    async def stream_chat(self, body: Body) -> AsyncIterator[Body]:
        model = str(body["model"])
        payload = dumps(openai_to_converse(body))
        url = self._url(model, "converse-stream")
        headers = self._signed_headers(url, payload, "application/vnd.amazon.eventstream")
        translator = ConverseStreamTranslator(model)
        async with open_stream(
            self._http, self._up, URL(url, encoded=True), payload, headers
        ) as resp:
            buffer = EventStreamBuffer()
            first = True
            while True:
                try:
                    async with asyncio.timeout(self._up.first_byte_s if first else self._up.idle_s):
                        data = await resp.content.readany()
                    first = False
                except (TimeoutError, aiohttp.ClientError, OSError) as e:
                    raise transport_error(self._up, e) from None
                if not data:
                    return
                buffer.add_data(data)
                try:
                    messages = list(buffer)
                except ParserError:
                    raise UpstreamError(
                        f"{self.name} upstream sent a corrupt event stream", retryable=True
                    ) from None
                for message in messages:
                    for chunk in self._translate(translator, message.headers, message.payload):
                        yield chunk

    def _translate(
        self, translator: ConverseStreamTranslator, headers: dict[str, Any], payload: bytes
    ) -> list[Body]:
        kind = headers.get(":message-type")
        if kind == "event":
            try:
                data = orjson.loads(payload) if payload else {}
            except orjson.JSONDecodeError:
                raise UpstreamError(f"{self.name} upstream sent a malformed stream event") from None
            return translator.feed(str(headers.get(":event-type", "")), data)
        name = str(headers.get(":exception-type") or headers.get(":error-code") or "unknownError")
        message = headers.get(":error-message") or ""
        try:
            message = message or orjson.loads(payload).get("message", "")
        except (orjson.JSONDecodeError, AttributeError):
            pass
        raise UpstreamError(
            f"{self.name} upstream failed mid-stream: {name}: {self._up.scrub(str(message))}",
            retryable=name in RETRYABLE_EXCEPTIONS,
        )

    async def completions(self, body: Body) -> Body:
        return await chat_as_completion(self.chat, body)

    def stream_completions(self, body: Body) -> AsyncIterator[Body]:
        return stream_chat_as_completion(self.stream_chat, body)

    async def embeddings(self, body: Body) -> Body:
        model = str(body["model"])
        family = next(
            (f for prefix, f in EMBEDDING_FAMILIES.items() if model.startswith(prefix)), None
        )
        if family is None:
            raise UnsupportedOperation(
                f"no embedding support for Bedrock model family of {model!r}", param="model"
            )
        to_bodies, read = family
        inputs = body.get("input", "")
        texts = [inputs] if isinstance(inputs, str) else [str(t) for t in inputs]
        # Titan embeds one text per call: bound how many calls one request has in flight.
        gate = asyncio.Semaphore(EMBEDDING_CONCURRENCY)

        async def invoke(request: Body) -> Any:
            async with gate:
                return await self._post(model, "invoke", dumps(request))

        answers = await asyncio.gather(*(invoke(b) for b in to_bodies(texts, body)))
        vectors, tokens = read(list(answers))
        return {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)
            ],
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    async def aclose(self) -> None:
        """The HTTP session belongs to the app."""


def create(
    name: str, config: BedrockProviderConfig, http: aiohttp.ClientSession
) -> BedrockProvider:
    return BedrockProvider(name, config, http)
