"""Fake Google Vertex AI: Gemini generateContent / streamGenerateContent, predict, OAuth token.

Routes are the real ones (``/v1/projects/{p}/locations/{l}/publishers/google/models/
{model}:{method}``); streams are SSE with ``alt=sse`` and CRLF framing; errors use
Google's ``{"error": {"code", "message", "status"}}``. Requests need a bearer token:
either the static ``api_key`` or one this fake minted at ``/token``, where it checks the
service account's signed JWT assertion (google-auth's own flow). Use
:meth:`FakeVertex.write_service_account` to get a credentials file that points there.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import orjson
from aiohttp import web

from appliance.testing.fakes._echo import Answer, Prompt, Tool, answer, count_words, embedding
from appliance.testing.fakes._server import FakeProvider, start_sse

_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"}
_PREFIX = "/v1/projects/{project}/locations/{location}/publishers/google/models/{target}"


def _text(parts: Any) -> str:
    return "".join(p.get("text", "") for p in parts or [] if isinstance(p, dict))


def gemini_prompt(body: dict[str, Any]) -> Prompt:
    contents = body["contents"]
    words = count_words(_text((body.get("systemInstruction") or {}).get("parts")))
    words += sum(count_words(_text(c.get("parts"))) for c in contents)
    last_user, images, tool_result = "", 0, None
    last = contents[-1] if contents else {}
    responses = [p["functionResponse"] for p in last.get("parts") or [] if "functionResponse" in p]
    if responses:
        response = responses[-1].get("response") or {}
        tool_result = (
            str(response["content"]) if set(response) == {"content"} else json.dumps(response)
        )
    for c in reversed(contents):
        if c.get("role", "user") == "user" and _text(c.get("parts")):
            last_user = _text(c["parts"])
            images = sum(1 for p in c["parts"] if "inlineData" in p or "fileData" in p)
            break
    declarations = [d for t in body.get("tools") or [] for d in t.get("functionDeclarations") or []]
    tools = tuple(Tool(d["name"], d.get("parameters") or {}) for d in declarations)
    config = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    mode = config.get("mode", "AUTO")
    allowed = config.get("allowedFunctionNames") or []
    choice = {"ANY": "required", "NONE": "none"}.get(mode, "auto")
    if mode == "ANY" and len(allowed) == 1:
        choice = allowed[0]
    return Prompt(
        last_user_text=last_user,
        images=images,
        tool_result=tool_result,
        tools=tools,
        tool_choice=choice,
        max_tokens=(body.get("generationConfig") or {}).get("maxOutputTokens"),
        prompt_tokens=max(1, words),
    )


class FakeVertex(FakeProvider):
    provider = "vertex"

    def __init__(
        self, *, project: str = "test-project", location: str = "europe-west4", **kw: Any
    ) -> None:
        super().__init__(**kw)
        self.project = project
        self.location = location
        self.issued_tokens: set[str] = set()
        self._token_counter = itertools.count(1)
        self._public_key_pem: str | None = None
        #: Seconds a minted token lives (short values test refresh).
        self.token_lifetime_s = 3600

    def routes(self) -> list[web.RouteDef]:
        return [web.post(_PREFIX, self._model_call), web.post("/token", self._token)]

    def error_response(self, status: int, message: str) -> web.Response:
        error = {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN")}
        return web.json_response({"error": error}, status=status)

    # ------------------------------------------------------------ credentials

    def write_service_account(self, path: Path) -> Path:
        """Write a service-account key file whose token endpoint is this fake."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        self._public_key_pem = (
            key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        info = {
            "type": "service_account",
            "project_id": self.project,
            "private_key_id": "fake-key-1",
            "private_key": private_pem,
            "client_email": f"appliance@{self.project}.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": f"{self.origin}/token",
        }
        path.write_text(json.dumps(info), "utf-8")
        return path

    async def _token(self, request: web.Request) -> web.StreamResponse:
        raw, failure = await self.intake(request)
        if failure is not None:
            return failure
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        if (
            form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer"
            or self._public_key_pem is None
        ):
            return web.json_response({"error": "invalid_grant"}, status=400)
        from google.auth import jwt

        try:
            # google-auth signs for Google's token endpoint whatever the token_uri says.
            audiences = [f"{self.origin}/token", "https://oauth2.googleapis.com/token"]
            claims = jwt.decode(  # type: ignore[no-untyped-call]
                str(form.get("assertion", "")), certs=self._public_key_pem, audience=audiences
            )
        except ValueError:
            return web.json_response(
                {"error": "invalid_grant", "error_description": "Invalid JWT Signature."},
                status=400,
            )
        if "cloud-platform" not in str(claims.get("scope", "")):
            return web.json_response({"error": "invalid_scope"}, status=400)
        token = f"ya29.fake-{next(self._token_counter)}"
        self.issued_tokens.add(token)
        return web.json_response(
            {"access_token": token, "expires_in": self.token_lifetime_s, "token_type": "Bearer"}
        )

    def authorized(self, request: web.Request) -> bool:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return token == self.api_key or token in self.issued_tokens

    # ----------------------------------------------------------------- models

    async def _model_call(self, request: web.Request) -> web.StreamResponse:
        raw, failure = await self.intake(request)
        if failure is not None:
            return failure
        if not self.authorized(request):
            return self.error_response(401, "Request had invalid authentication credentials.")
        if (request.match_info["project"], request.match_info["location"]) != (
            self.project,
            self.location,
        ):
            return self.error_response(404, "Project or location not found.")
        model, _, method = request.match_info["target"].partition(":")
        try:
            body = orjson.loads(raw)
            if method == "predict":
                return self._predict(body)
            if method not in ("generateContent", "streamGenerateContent"):
                return self.error_response(404, f"Method {method} not found.")
            if not body.get("contents"):
                return self.error_response(
                    400, "* GenerateContentRequest.contents: contents is not specified"
                )
            prompt = gemini_prompt(body)
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
            return self.error_response(400, "Invalid JSON payload received.")
        a = answer(prompt)
        n = int((body.get("generationConfig") or {}).get("candidateCount") or 1)
        response_id = hashlib.sha1(raw, usedforsecurity=False).hexdigest()[:16]
        if method == "generateContent":
            return web.json_response(self._response(a, model, response_id, n, [a.text], final=True))
        if request.query.get("alt") != "sse":
            return self.error_response(400, "the fake serves streams with alt=sse only")
        pieces = a.pieces() if a.tool_call is None else [""]
        frames = [
            b"data: "
            + orjson.dumps(self._response(a, model, response_id, n, [piece], final=i == len(pieces) - 1))
            + b"\r\n\r\n"
            for i, piece in enumerate(pieces)
        ]
        return await self.send_frames(request, await start_sse(request), frames)

    def _response(
        self, a: Answer, model: str, response_id: str, n: int, texts: list[str], *, final: bool
    ) -> dict[str, Any]:
        if a.tool_call is not None:
            parts: list[dict[str, Any]] = [
                {"functionCall": {"name": a.tool_call.name, "args": a.tool_call.arguments}}
            ]
        else:
            parts = [{"text": t} for t in texts]
        candidates = []
        for index in range(n):
            candidate: dict[str, Any] = {
                "content": {"role": "model", "parts": parts},
                "index": index,
            }
            if final:
                candidate["finishReason"] = _FINISH[a.finish]
            candidates.append(candidate)
        usage: dict[str, Any] = {"promptTokenCount": a.prompt_tokens, "trafficType": "ON_DEMAND"}
        if final:
            usage.update(
                candidatesTokenCount=a.completion_tokens * n,
                totalTokenCount=a.prompt_tokens + a.completion_tokens * n,
            )
        return {
            "candidates": candidates,
            "usageMetadata": usage,
            "modelVersion": model,
            "createTime": "2024-01-01T00:00:00.000000Z",
            "responseId": response_id,
        }

    def _predict(self, body: dict[str, Any]) -> web.Response:
        dims = int((body.get("parameters") or {}).get("outputDimensionality") or 8)
        predictions = [
            {
                "embeddings": {
                    "values": embedding(str(i["content"]), dims),
                    "statistics": {
                        "token_count": max(1, count_words(str(i["content"]))),
                        "truncated": False,
                    },
                }
            }
            for i in body["instances"]
        ]
        return web.json_response(
            {"predictions": predictions, "metadata": {"billableCharacterCount": 1}}
        )
