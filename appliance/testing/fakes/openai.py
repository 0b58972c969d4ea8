"""Fake OpenAI, Azure OpenAI and Hugging Face endpoint servers (one wire format, three doors).

Speaks the OpenAI REST API exactly: ``chat.completion`` objects, SSE streams of
``chat.completion.chunk`` ending in ``data: [DONE]``, the Responses API
(``/v1/responses``, see :mod:`.responses`), the usage chunk (``choices: []``)
when ``stream_options.include_usage`` is set, tool calls streamed as argument fragments,
``text_completion``, embeddings as floats or base64, and the OpenAI error body.

It is the upstream of the throughput benchmark, so the hot path is short: answers are
computed once per distinct request body and kept, already serialised, in a small cache.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from typing import Any

import orjson
from aiohttp import web

from appliance.testing.fakes._echo import Answer, Prompt, Tool, answer, count_words, embedding
from appliance.testing.fakes._server import FakeProvider, sse_event, start_sse
from appliance.testing.fakes.openai_batches import FakeBatches
from appliance.testing.fakes.responses import build_responses

CREATED = 1_700_000_000
_CACHE_LIMIT = 512
DONE = b"data: [DONE]\n\n"

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    429: "rate_limit_exceeded",
}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def openai_prompt(body: dict[str, Any]) -> Prompt:
    """Reduce an OpenAI chat request to what the echo model looks at."""
    messages = body.get("messages") or []
    words = sum(count_words(_text(m.get("content"))) for m in messages)
    last_user, images = "", 0
    for m in reversed(messages):
        if m.get("role") == "user":
            last_user = _text(m.get("content"))
            content = m.get("content")
            if isinstance(content, list):
                images = sum(
                    1 for p in content if isinstance(p, dict) and p.get("type") == "image_url"
                )
            break
    tool_result = (
        _text(messages[-1].get("content"))
        if messages and messages[-1].get("role") == "tool"
        else None
    )
    choice = body.get("tool_choice") or "auto"
    if isinstance(choice, dict):
        choice = choice.get("function", {}).get("name", "auto")
    tools = tuple(
        Tool(t["function"]["name"], t["function"].get("parameters") or {})
        for t in body.get("tools") or []
    )
    return Prompt(
        last_user_text=last_user,
        images=images,
        tool_result=tool_result,
        tools=tools,
        tool_choice=str(choice),
        max_tokens=body.get("max_completion_tokens") or body.get("max_tokens"),
        prompt_tokens=max(1, words),
    )


def _usage(a: Answer, n: int = 1) -> dict[str, int]:
    completion = a.completion_tokens * n
    return {
        "prompt_tokens": a.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": a.prompt_tokens + completion,
    }


def _message(a: Answer, json_mode: bool, prompt: Prompt) -> dict[str, Any]:
    if a.tool_call is not None:
        return {
            "role": "assistant",
            "content": None,
            "refusal": None,
            "tool_calls": [
                {
                    "id": a.tool_call.id,
                    "type": "function",
                    "function": {
                        "name": a.tool_call.name,
                        "arguments": orjson.dumps(a.tool_call.arguments).decode(),
                    },
                }
            ],
        }
    text = orjson.dumps({"echo": prompt.last_user_text}).decode() if json_mode else a.text
    return {"role": "assistant", "content": text, "refusal": None}


class FakeOpenAI(FakeProvider):
    provider = "openai"

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._cache: dict[tuple[str, str, bytes], bytes | list[bytes]] = {}
        #: The Files and Batch APIs (see :mod:`.openai_batches`).
        self.batch_api = FakeBatches(self._build)

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/chat/completions", self._chat),
            web.post("/v1/completions", self._completions),
            web.post("/v1/embeddings", self._embeddings),
            web.post("/v1/responses", self._responses),
            web.get("/v1/models", self._models),
            *self.batch_api.routes(),
        ]

    def runner(self) -> web.BaseRunner:
        """The plain OpenAI fake skips aiohttp's router: a dict lookup on the path is enough.

        It is the upstream of the throughput benchmark, where the application layer of
        aiohttp costs about a fifth of the fake's time. Subclasses with path patterns
        (Azure) or extra routes (HF) use the ordinary application.
        """
        if type(self).routes is not FakeOpenAI.routes:
            return super().runner()
        table = {
            ("POST", "/v1/chat/completions"): self._chat,
            ("POST", "/v1/completions"): self._completions,
            ("POST", "/v1/embeddings"): self._embeddings,
            ("POST", "/v1/responses"): self._responses,
            ("GET", "/v1/models"): self._models,
        }

        async def dispatch(request: web.BaseRequest) -> web.StreamResponse:
            handler = table.get((request.method, request.path))
            if handler is None and request.path.startswith(("/v1/files", "/v1/batches")):
                if not self.authorized(request):  # type: ignore[arg-type]
                    return self.error_response(401, "Incorrect API key provided.")
                found = await self.batch_api.dispatch(request)
                if found is not None:
                    return found
            if handler is None:
                return self.error_response(
                    404, f"Unknown request URL: {request.method} {request.path}"
                )
            return await handler(request)  # type: ignore[arg-type]

        return web.ServerRunner(
            web.Server(dispatch, access_log=None), handle_signals=False, shutdown_timeout=0.5
        )

    # ----------------------------------------------------------------- hooks

    #: Whether requests must name the model in the body (Azure names it in the URL).
    model_in_body = True

    def authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.api_key}"

    def model_of(self, request: web.Request, body: dict[str, Any]) -> str:
        return str(body.get("model", ""))

    def error_response(self, status: int, message: str) -> web.Response:
        code = {401: "invalid_api_key", 429: "rate_limit_exceeded"}.get(status)
        error = {
            "message": message,
            "type": _ERROR_TYPES.get(status, "server_error"),
            "param": None,
            "code": code,
        }
        return web.Response(
            body=orjson.dumps({"error": error}), status=status, content_type="application/json"
        )

    def first_chunks(self, model: str) -> list[bytes]:
        """Frames sent before the answer (Azure sends its prompt filter results here)."""
        return []

    # --------------------------------------------------------------- handlers

    async def _serve(self, request: web.Request, kind: str) -> web.StreamResponse:
        raw, failure = await self.intake(request)
        if failure is not None:
            return failure
        if not self.authorized(request):
            return self.error_response(401, "Incorrect API key provided.")
        key = (kind, request.path, raw)
        cached = self._cache.get(key)
        if cached is None:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                return self.error_response(400, "We could not parse the JSON body of your request.")
            if not isinstance(body, dict):
                return self.error_response(400, "the request body must be a JSON object")
            if not body.get("model") and self.model_in_body:
                return self.error_response(400, "you must provide a model parameter")
            try:
                cached = self._build(kind, self.model_of(request, body), body)
            except (KeyError, TypeError, ValueError) as e:
                return self.error_response(400, f"invalid request: {type(e).__name__}")
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = cached
        if isinstance(cached, bytes):
            return web.Response(body=cached, content_type="application/json")
        return await self.send_frames(request, await start_sse(request), cached)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "chat")

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "completions")

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "embeddings")

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "responses")

    async def _models(self, request: web.Request) -> web.StreamResponse:
        _, failure = await self.intake(request)
        if failure is not None:
            return failure
        if not self.authorized(request):
            return self.error_response(401, "Incorrect API key provided.")
        data = [
            {"id": m, "object": "model", "created": CREATED, "owned_by": "fake"}
            for m in ("fake-model",)
        ]
        return web.json_response({"object": "list", "data": data})

    # ---------------------------------------------------------------- answers

    def _build(self, kind: str, model: str, body: dict[str, Any]) -> bytes | list[bytes]:
        if kind == "chat":
            return self._build_chat(model, body)
        if kind == "completions":
            return self._build_completions(model, body)
        if kind == "responses":
            return build_responses(model, body)
        return self._build_embeddings(model, body)

    def _build_chat(self, model: str, body: dict[str, Any]) -> bytes | list[bytes]:
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            raise ValueError("messages")
        prompt = openai_prompt(body)
        a = answer(prompt)
        n = int(body.get("n") or 1)
        json_mode = (body.get("response_format") or {}).get("type") in (
            "json_object",
            "json_schema",
        )
        ident = "chatcmpl-fake" + hashlib.sha1(orjson.dumps(body), usedforsecurity=False).hexdigest()[:20]
        if not body.get("stream"):
            return orjson.dumps(
                {
                    "id": ident,
                    "object": "chat.completion",
                    "created": CREATED,
                    "model": model,
                    "choices": [
                        {
                            "index": i,
                            "message": _message(a, json_mode, prompt),
                            "logprobs": None,
                            "finish_reason": a.finish,
                        }
                        for i in range(n)
                    ],
                    "usage": _usage(a, n),
                    "system_fingerprint": "fp_fake",
                }
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        base: dict[str, Any] = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "system_fingerprint": "fp_fake",
        }
        if include_usage:
            base["usage"] = None

        def chunk(i: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
            return sse_event(
                {
                    **base,
                    "choices": [
                        {"index": i, "delta": delta, "logprobs": None, "finish_reason": finish}
                    ],
                }
            )

        frames = self.first_chunks(model)
        for i in range(n):
            if a.tool_call is not None:
                args = orjson.dumps(a.tool_call.arguments).decode()
                call = {
                    "index": 0,
                    "id": a.tool_call.id,
                    "type": "function",
                    "function": {"name": a.tool_call.name, "arguments": ""},
                }
                frames.append(
                    chunk(
                        i,
                        {
                            "role": "assistant",
                            "content": None,
                            "tool_calls": [call],
                            "refusal": None,
                        },
                    )
                )
                half = len(args) // 2
                for part in (args[:half], args[half:]):
                    frames.append(
                        chunk(i, {"tool_calls": [{"index": 0, "function": {"arguments": part}}]})
                    )
            else:
                frames.append(chunk(i, {"role": "assistant", "content": "", "refusal": None}))
                text = _message(a, json_mode, prompt)["content"]
                pieces = (
                    a.pieces()
                    if not json_mode
                    else [text[: len(text) // 2], text[len(text) // 2 :]]
                )
                frames.extend(chunk(i, {"content": p}) for p in pieces)
            frames.append(chunk(i, {}, a.finish))
        if include_usage:
            frames.append(sse_event({**base, "choices": [], "usage": _usage(a, n)}))
        frames.append(DONE)
        return frames

    def _build_completions(self, model: str, body: dict[str, Any]) -> bytes | list[bytes]:
        prompts = body.get("prompt", "")
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        answers = [
            answer(
                Prompt(
                    last_user_text=str(p),
                    max_tokens=body.get("max_tokens"),
                    prompt_tokens=max(1, count_words(str(p))),
                )
            )
            for p in prompts
        ]
        usage = {
            "prompt_tokens": sum(a.prompt_tokens for a in answers),
            "completion_tokens": sum(a.completion_tokens for a in answers),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        ident = "cmpl-fake" + hashlib.sha1(orjson.dumps(body), usedforsecurity=False).hexdigest()[:20]
        base = {"id": ident, "object": "text_completion", "created": CREATED, "model": model}
        if not body.get("stream"):
            choices = [
                {"text": a.text, "index": i, "logprobs": None, "finish_reason": a.finish}
                for i, a in enumerate(answers)
            ]
            return orjson.dumps({**base, "choices": choices, "usage": usage})
        frames: list[bytes] = []
        for i, a in enumerate(answers):
            frames.extend(
                sse_event(
                    {
                        **base,
                        "choices": [
                            {"text": p, "index": i, "logprobs": None, "finish_reason": None}
                        ],
                    }
                )
                for p in a.pieces()
            )
            frames.append(
                sse_event(
                    {
                        **base,
                        "choices": [
                            {"text": "", "index": i, "logprobs": None, "finish_reason": a.finish}
                        ],
                    }
                )
            )
        if (body.get("stream_options") or {}).get("include_usage"):
            frames.append(sse_event({**base, "choices": [], "usage": usage}))
        frames.append(DONE)
        return frames

    def _build_embeddings(self, model: str, body: dict[str, Any]) -> bytes:
        inputs = body["input"]
        inputs = [inputs] if isinstance(inputs, str) else list(inputs)
        dims = int(body.get("dimensions") or 8)
        data = []
        for i, text in enumerate(inputs):
            vec = embedding(str(text), dims)
            value: Any = vec
            if body.get("encoding_format") == "base64":
                value = base64.b64encode(struct.pack(f"<{dims}f", *vec)).decode()
            data.append({"object": "embedding", "index": i, "embedding": value})
        tokens = sum(max(1, count_words(str(t))) for t in inputs)
        return orjson.dumps(
            {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )


class FakeAzureOpenAI(FakeOpenAI):
    """Azure's doors: ``/openai/deployments/{deployment}/...?api-version=``, ``api-key`` header."""

    provider = "azure_openai"
    model_in_body = False

    @property
    def base_url(self) -> str:
        return self.origin

    def routes(self) -> list[web.RouteDef]:
        prefix = "/openai/deployments/{deployment}"
        return [
            web.post(prefix + "/chat/completions", self._chat),
            web.post(prefix + "/completions", self._completions),
            web.post(prefix + "/embeddings", self._embeddings),
            # The v1 API (no api-version): the deployment is the body's model.
            web.post("/openai/v1/responses", self._responses),
        ]

    def authorized(self, request: web.Request) -> bool:
        return request.headers.get("api-key") == self.api_key and (
            bool(request.query.get("api-version")) or request.path.startswith("/openai/v1/")
        )

    def model_of(self, request: web.Request, body: dict[str, Any]) -> str:
        return request.match_info.get("deployment") or str(body.get("model", ""))

    def error_response(self, status: int, message: str) -> web.Response:
        if status == 401:
            error = {
                "code": "401",
                "message": "Access denied due to invalid subscription key or wrong API endpoint.",
            }
            return web.Response(
                body=orjson.dumps({"error": error}), status=401, content_type="application/json"
            )
        return super().error_response(status, message)

    def first_chunks(self, model: str) -> list[bytes]:
        return [
            sse_event(
                {
                    "choices": [],
                    "created": 0,
                    "id": "",
                    "model": "",
                    "object": "",
                    "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
                }
            )
        ]


class FakeHFEndpoint(FakeOpenAI):
    """A Hugging Face Inference Endpoint: OpenAI routes under ``/v1``, feature extraction at ``/``."""

    provider = "hf_endpoint"

    @property
    def base_url(self) -> str:
        return self.origin

    def routes(self) -> list[web.RouteDef]:
        return [*super().routes(), web.post("/", self._feature_extraction)]

    async def _feature_extraction(self, request: web.Request) -> web.StreamResponse:
        raw, failure = await self.intake(request)
        if failure is not None:
            return failure
        if not self.authorized(request):
            return web.json_response(
                {"error": "Authorization header is correct, but the token seems invalid"},
                status=401,
            )
        try:
            inputs = orjson.loads(raw)["inputs"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return web.json_response({"error": "Failed to deserialize the JSON body"}, status=422)
        if isinstance(inputs, str):
            return web.json_response(embedding(inputs))
        return web.json_response([embedding(str(t)) for t in inputs])

    def error_response(self, status: int, message: str) -> web.Response:
        return web.json_response({"error": message, "error_type": "fake"}, status=status)
