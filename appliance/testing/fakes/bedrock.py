"""Fake AWS Bedrock runtime: Converse, ConverseStream and InvokeModel (Titan/Cohere embeddings).

Every request must carry a SigV4 ``Authorization`` header; the fake parses it and
recomputes the signature with botocore from the known test credentials, so a request
signed wrongly (other key, other region, body changed after signing) gets HTTP 403 like
the real service. ConverseStream answers in the binary AWS event stream encoding
(prelude, headers, payload, both CRC32s), written here and checked in the tests with
botocore's decoder.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import re
import struct
from typing import Any

import orjson
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from appliance.testing.fakes._echo import Answer, Prompt, Tool, answer, count_words, embedding
from appliance.testing.fakes._server import FakeProvider

TEST_ACCESS_KEY = "AKIDFAKEBEDROCK00001"
TEST_SECRET_KEY = "fake-secret-access-key-for-tests-only"

_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request,"
    r"\s*SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*Signature=(?P<sig>[0-9a-f]{64})$"
)
_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
_ERROR_TYPES = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}


def encode_event(headers: dict[str, str], payload: bytes) -> bytes:
    """One message of the AWS event stream encoding (all header values typed as strings)."""
    raw_headers = b"".join(
        bytes([len(name.encode())])
        + name.encode()
        + b"\x07"
        + struct.pack(">H", len(value.encode()))
        + value.encode()
        for name, value in headers.items()
    )
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(raw_headers))
    message = prelude + struct.pack(">I", binascii.crc32(prelude)) + raw_headers + payload
    return message + struct.pack(">I", binascii.crc32(message))


def _event(name: str, data: dict[str, Any]) -> bytes:
    # Bedrock pads every event payload with a "p" field so sizes do not leak content.
    payload = orjson.dumps({**data, "p": "abcdefghijklmnopqrstuvwxyz"[: 1 + len(name) % 26]})
    return encode_event(
        {":event-type": name, ":content-type": "application/json", ":message-type": "event"},
        payload,
    )


def _exception(name: str, message: str) -> bytes:
    return encode_event(
        {
            ":exception-type": name,
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        orjson.dumps({"message": message}),
    )


def _text(blocks: Any) -> str:
    return "".join(b.get("text", "") for b in blocks or [] if isinstance(b, dict))


def converse_prompt(body: dict[str, Any]) -> Prompt:
    messages = body["messages"]
    words = count_words(_text(body.get("system"))) + sum(
        count_words(_text(m.get("content"))) for m in messages
    )
    last_user, images, tool_result = "", 0, None
    last = messages[-1] if messages else {}
    results = [b["toolResult"] for b in last.get("content") or [] if "toolResult" in b]
    if last.get("role") == "user" and results:
        tool_result = _text(results[-1].get("content"))
    for m in reversed(messages):
        if m.get("role") == "user" and _text(m.get("content")):
            last_user = _text(m["content"])
            images = sum(1 for b in m["content"] if "image" in b)
            break
    config = body.get("toolConfig") or {}
    tools = tuple(
        Tool(t["toolSpec"]["name"], t["toolSpec"]["inputSchema"]["json"])
        for t in config.get("tools") or []
    )
    choice = config.get("toolChoice") or {"auto": {}}
    choice_name = (
        "required" if "any" in choice else choice["tool"]["name"] if "tool" in choice else "auto"
    )
    return Prompt(
        last_user_text=last_user,
        images=images,
        tool_result=tool_result,
        tools=tools,
        tool_choice=choice_name,
        max_tokens=(body.get("inferenceConfig") or {}).get("maxTokens"),
        prompt_tokens=max(1, words),
    )


class FakeBedrock(FakeProvider):
    provider = "bedrock"

    def __init__(
        self,
        *,
        access_key: str = TEST_ACCESS_KEY,
        secret_key: str = TEST_SECRET_KEY,
        session_token: str | None = None,
        aws_region: str = "eu-central-1",
        **kw: Any,
    ) -> None:
        super().__init__(api_key=access_key, **kw)
        self.credentials = Credentials(access_key, secret_key, session_token)
        self.aws_region = aws_region
        #: Exception type sent after the first stream event of the next stream (then cleared).
        self.stream_exception: str | None = None

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/model/{model}/converse", self._converse),
            web.post("/model/{model}/converse-stream", self._converse_stream),
            web.post("/model/{model}/invoke", self._invoke),
        ]

    def error_response(self, status: int, message: str) -> web.Response:
        error_type = _ERROR_TYPES.get(status, "InternalServerException")
        return web.Response(
            body=orjson.dumps({"message": message}),
            status=status,
            content_type="application/json",
            headers={
                "x-amzn-ErrorType": f"{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/"
            },
        )

    def signature_problem(self, request: web.Request, body: bytes) -> str | None:
        """Why the request's SigV4 signature is not valid, or None when it is."""
        match = _AUTH.match(request.headers.get("Authorization", ""))
        if match is None:
            return "Missing or malformed SigV4 Authorization header"
        if match["key"] != self.credentials.access_key:
            return "The security token included in the request is invalid."
        if match["service"] != "bedrock" or match["region"] != self.aws_region:
            return f"Credential should be scoped to a valid region and service bedrock/{self.aws_region}."
        amz_date = request.headers.get("X-Amz-Date", "")
        if not amz_date.startswith(match["date"]):
            return "X-Amz-Date does not match the credential scope date."
        if (
            self.credentials.token
            and request.headers.get("X-Amz-Security-Token") != self.credentials.token
        ):
            return "The security token included in the request is invalid."
        signed = match["signed"].split(";")
        if "host" not in signed or "x-amz-date" not in signed:
            return "host and x-amz-date must be signed"
        try:
            headers = {name: request.headers[name] for name in signed}
        except KeyError as e:
            return f"signed header {e.args[0]} is missing"
        replay = AWSRequest(
            method=request.method,
            url=f"http://{request.host}{request.raw_path}",
            data=body,
            headers=headers,
        )
        replay.context["timestamp"] = amz_date
        signer = SigV4Auth(self.credentials, "bedrock", self.aws_region)
        expected = signer.signature(
            signer.string_to_sign(replay, signer.canonical_request(replay)), replay
        )
        if not hmac.compare_digest(expected, match["sig"]):
            return "The request signature we calculated does not match the signature you provided."
        return None

    async def _admit(self, request: web.Request) -> tuple[bytes, web.Response | None]:
        raw, failure = await self.intake(request)
        if failure is not None:
            return raw, failure
        problem = self.signature_problem(request, raw)
        if problem is not None:
            return raw, self.error_response(403, problem)
        return raw, None

    def _parse(self, raw: bytes) -> tuple[dict[str, Any], Prompt] | web.Response:
        try:
            body = orjson.loads(raw)
            if not isinstance(body.get("messages"), list) or not body["messages"]:
                return self.error_response(400, "messages: at least one message is required")
            return body, converse_prompt(body)
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError) as e:
            return self.error_response(400, f"Malformed input request: {type(e).__name__}")

    def _content(self, a: Answer) -> list[dict[str, Any]]:
        if a.tool_call is not None:
            call = a.tool_call
            return [
                {
                    "toolUse": {
                        "toolUseId": "tooluse_fake_1",
                        "name": call.name,
                        "input": call.arguments,
                    }
                }
            ]
        return [{"text": a.text}]

    async def _converse(self, request: web.Request) -> web.StreamResponse:
        raw, failure = await self._admit(request)
        if failure is not None:
            return failure
        parsed = self._parse(raw)
        if isinstance(parsed, web.Response):
            return parsed
        _, prompt = parsed
        a = answer(prompt)
        return web.json_response(
            {
                "output": {"message": {"role": "assistant", "content": self._content(a)}},
                "stopReason": _STOP[a.finish],
                "usage": {
                    "inputTokens": a.prompt_tokens,
                    "outputTokens": a.completion_tokens,
                    "totalTokens": a.prompt_tokens + a.completion_tokens,
                },
                "metrics": {"latencyMs": 1},
            },
            headers={"x-amzn-RequestId": hashlib.sha1(raw, usedforsecurity=False).hexdigest()},
        )

    async def _converse_stream(self, request: web.Request) -> web.StreamResponse:
        raw, failure = await self._admit(request)
        if failure is not None:
            return failure
        parsed = self._parse(raw)
        if isinstance(parsed, web.Response):
            return parsed
        _, prompt = parsed
        a = answer(prompt)
        resp = web.StreamResponse(headers={"Content-Type": "application/vnd.amazon.eventstream"})
        await resp.prepare(request)

        async def send(frame: bytes) -> None:
            await resp.write(frame)
            await self.pause_between_chunks(request)

        await send(_event("messageStart", {"role": "assistant"}))
        if self.stream_exception:
            name, self.stream_exception = self.stream_exception, None
            await send(_exception(name, "injected stream failure"))
            await resp.write_eof()
            return resp
        if a.tool_call is not None:
            call = a.tool_call
            start = {"toolUse": {"toolUseId": "tooluse_fake_1", "name": call.name}}
            await send(_event("contentBlockStart", {"contentBlockIndex": 0, "start": start}))
            args = orjson.dumps(call.arguments).decode()
            for part in (args[: len(args) // 2], args[len(args) // 2 :]):
                await send(
                    _event(
                        "contentBlockDelta",
                        {"contentBlockIndex": 0, "delta": {"toolUse": {"input": part}}},
                    )
                )
        else:
            for piece in a.pieces():
                await send(
                    _event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}})
                )
        await send(_event("contentBlockStop", {"contentBlockIndex": 0}))
        await send(_event("messageStop", {"stopReason": _STOP[a.finish]}))
        usage = {
            "inputTokens": a.prompt_tokens,
            "outputTokens": a.completion_tokens,
            "totalTokens": a.prompt_tokens + a.completion_tokens,
        }
        await send(_event("metadata", {"usage": usage, "metrics": {"latencyMs": 1}}))
        await resp.write_eof()
        return resp

    async def _invoke(self, request: web.Request) -> web.StreamResponse:
        raw, failure = await self._admit(request)
        if failure is not None:
            return failure
        model = request.match_info["model"]
        try:
            body = orjson.loads(raw)
            if model.startswith("amazon.titan-embed"):
                text = str(body["inputText"])
                vector = embedding(text, int(body.get("dimensions") or 8))
                return web.json_response(
                    {"embedding": vector, "inputTextTokenCount": max(1, count_words(text))}
                )
            if model.startswith("cohere.embed"):
                return web.json_response(
                    {
                        "id": "fake",
                        "texts": body["texts"],
                        "embeddings": [embedding(str(t)) for t in body["texts"]],
                        "response_type": "embeddings_floats",
                    }
                )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return self.error_response(400, "Malformed input request")
        return self.error_response(400, f"The fake does not serve InvokeModel for {model}")
