"""The MCP gateway: each ``[mcp.servers.NAME]`` offered to clients at ``/mcp/NAME`` over the
streamable HTTP transport, authenticated with the appliance's keys.

The gateway is an MCP server to the client and an MCP client of the upstream
(:mod:`appliance.mcp.client`); it answers ``initialize`` and ``ping`` itself, and
governs tools:

* ``tools/list`` shows only the tools the policy allows this caller: each tool is
  decided as a call without arguments would be (``input.tool`` with its annotations);
* every ``tools/call`` is one request through the pipeline (route ``mcp.tools/call``):
  its arguments, as the one tool call of a canonical assistant turn, are scanned for PII
  and redacted or blocked as the policy says, it is decided by Rego and admitted against
  the key's limits, the upstream is called with the redacted arguments, its result is
  screened on the way back (placeholders restored, PII the tool produced screened,
  safety), and the call is one audit record. A refused call is a JSON-RPC error.

Other methods (resources, prompts, completions) are not offered: ``initialize``
declares the tools capability only, and anything else gets "method not found". The
gateway keeps no session of its own (stateless streamable HTTP): ``GET`` (a server
stream) is 405, ``DELETE`` acknowledges.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from appliance.config.mcp import McpServerConfig
from appliance.core.context import Context
from appliance.core.decision import decision_of
from appliance.core.findings import PolicyFindings, ToolCallFindings, Verdict
from appliance.errors import (
    ApplianceError,
    AuthenticationFailed,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    StageFailed,
    UpstreamError,
)
from appliance.mcp.client import McpRemoteError, McpUpstream
from appliance.mcp.tools import ToolInfo
from appliance.pipeline.stage import RequestStage
from appliance.server.exchange import (
    CONTEXT,
    REQUEST_ID,
    api_key_of,
    finish,
    new_request_id,
    read_body,
    unexpected,
)
from appliance.server.services import SERVICES, Services

log = logging.getLogger(__name__)

Body = dict[str, Any]

#: The protocol versions the gateway speaks to clients (it answers the client's own).
PROTOCOL_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")

# JSON-RPC error codes: the standard ones, and one of the server range for refusals.
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602
INTERNAL_ERROR = -32603
#: A control refused the call (policy, PII block, rate limit, budget): data says which.
REFUSED = -32001
#: The upstream server failed or could not be reached.
UPSTREAM_FAILED = -32002


class Gateway:
    """The process's upstream clients, one per declared server, created on first use."""

    def __init__(self) -> None:
        self._upstreams: dict[str, McpUpstream] = {}

    def upstream(self, name: str, config: McpServerConfig, http: aiohttp.ClientSession) -> McpUpstream:
        up = self._upstreams.get(name)
        if up is None:
            up = self._upstreams[name] = McpUpstream(name, config, http)
        return up


GATEWAY = web.AppKey("mcp_gateway", Gateway)


def _error(mid: Any, code: int, message: str, data: Any = None) -> Body:
    err: Body = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": mid, "error": err}


def _result(mid: Any, result: Body) -> Body:
    return {"jsonrpc": "2.0", "id": mid, "result": result}


def _refusal(mid: Any, e: ApplianceError, ctx: Context | None = None) -> Body:
    code = REFUSED if e.status in (401, 403, 429) else (
        UPSTREAM_FAILED if isinstance(e, UpstreamError) else
        INVALID_PARAMS if e.status == 400 else INTERNAL_ERROR
    )
    data: Body = {"type": e.type, "code": e.code, "status": e.status}
    if e.reasons:
        data["reasons"] = list(e.reasons)
    policy = ctx.findings(PolicyFindings) if ctx is not None else None
    if policy is not None and policy.rules:
        data["rules"] = list(policy.rules)
    if ctx is not None:
        data["request_id"] = ctx.request_id
    return _error(mid, code, e.message, data)


# -- the canonical shape of one call and its result --------------------------------------


def call_body(ctx: Context, tool: ToolInfo, arguments: Body) -> Body:
    """The call as the one tool call of an assistant turn: every stage reads this shape
    (each string argument is a PII slot; the arguments stay valid JSON when rewritten)."""
    call = {"id": "call_" + ctx.request_id.removeprefix("req_")[:24], "type": "function",
            "function": {"name": tool.name,
                         "arguments": orjson.dumps(arguments).decode()}}
    return {"model": ctx.model, "messages": [{"role": "assistant", "content": None,
                                              "tool_calls": [call]}]}


def arguments_of(body: Body) -> Body:
    raw = body["messages"][0]["tool_calls"][0]["function"]["arguments"]
    args = orjson.loads(raw)
    return args if isinstance(args, dict) else {}


def result_to_canonical(ctx: Context, result: Body) -> Body:
    """The tool's result as a canonical answer: its text items as text parts, its
    structured content as a JSON tool-call argument (both screened on the way back)."""
    parts = [{"type": "text", "text": item["text"]} for item in result.get("content") or ()
             if isinstance(item, dict) and item.get("type") == "text"
             and isinstance(item.get("text"), str)]
    message: Body = {"role": "assistant", "content": parts}
    if result.get("structuredContent") is not None:
        message["tool_calls"] = [{"id": "structured", "type": "function", "function": {
            "name": "structuredContent",
            "arguments": orjson.dumps(result["structuredContent"]).decode()}}]
    return {"id": ctx.request_id, "object": "chat.completion", "created": int(time.time()),
            "model": ctx.model,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop",
                         "logprobs": None}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}


def canonical_to_result(original: Body, screened: Body) -> Body:
    """The upstream's result with its text and structured content replaced by the screened
    ones (other items, e.g. images, pass as they came)."""
    choice = (screened.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content = message.get("content")
    texts = iter([p.get("text", "") for p in content if isinstance(p, dict)]
                 if isinstance(content, list) else [str(content or "")])
    items: list[Body] = []
    for item in original.get("content") or ():
        if isinstance(item, dict) and item.get("type") == "text":
            items.append({**item, "text": next(texts, "")})
        else:
            items.append(item)
    items.extend({"type": "text", "text": rest} for rest in texts)  # a screen's notice
    out = {**original, "content": items}
    for call in message.get("tool_calls") or ():
        if call.get("id") == "structured":
            out["structuredContent"] = orjson.loads(call["function"]["arguments"])
    if choice.get("finish_reason") == "content_filter":
        out["isError"] = True
        out.pop("structuredContent", None)  # withheld: its structured copy goes too
    return out


# -- the handler ---------------------------------------------------------------------------


class _Session:
    """One HTTP request to /mcp/NAME: its caller, its server and what it may use."""

    def __init__(self, request: web.Request, name: str, config: McpServerConfig) -> None:
        self.request = request
        self.services: Services = request.app[SERVICES]
        self.name = name
        self.config = config
        self.api_key = api_key_of(request)
        self.upstream = request.app[GATEWAY].upstream(name, config, self.services.http)
        self.first_id_used = False

    def _request_id(self) -> str:
        if not self.first_id_used:
            self.first_id_used = True
            return self.request[REQUEST_ID]
        return new_request_id()

    def _context(self, tool: ToolInfo | None, request_id: str) -> Context:
        ctx = Context(request_id=request_id, route="mcp.tools/call", body={}, api_key=self.api_key)
        name = tool.name if tool is not None else "?"
        ctx.model = ctx.requested_model = f"mcp:{self.name}/{name}"
        ctx.provider = f"mcp:{self.name}"
        ctx.provider_region = self.config.region
        return ctx

    def _decider(self) -> RequestStage | None:
        for stage in self.services.pipeline.request_stages:
            if stage.name == "decide":
                return stage
        return None

    async def permitted(self, ctx: Context, tool: ToolInfo) -> bool:
        """Whether the policy lets this caller call ``tool`` at all (no arguments yet)."""
        decide = self._decider()
        if decide is None:
            return True
        probe = self._context(tool, ctx.request_id)
        probe.principal = ctx.principal
        probe.verdicts.append(Verdict("mcp", findings=tool.findings()))
        probe.body = call_body(probe, tool, {})
        try:
            verdict = await decide.run(probe)
        except ApplianceError:
            return False
        return verdict.outcome == "continue"

    async def handle(self, message: Any) -> Body | None:
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            return _error(None, INVALID_REQUEST, "not a JSON-RPC 2.0 message")
        mid, method = message.get("id"), message.get("method")
        if not isinstance(method, str):
            # A response to a request of ours: the gateway sends none, so nothing to do.
            return None
        if "id" not in message:
            return None  # a notification (initialized, cancelled): acknowledged
        params = message.get("params")
        params = params if isinstance(params, dict) else {}
        if method == "initialize":
            return _result(mid, self._initialize(params))
        if method == "ping":
            return _result(mid, {})
        if method == "tools/list":
            return await self._list(mid, params)
        if method == "tools/call":
            return await self._call(mid, params)
        return _error(mid, METHOD_NOT_FOUND, f"Method not found: {method}")

    def _initialize(self, params: Body) -> Body:
        asked = params.get("protocolVersion")
        version = asked if asked in PROTOCOL_VERSIONS else PROTOCOL_VERSIONS[-1]
        return {
            "protocolVersion": version,
            "capabilities": {"tools": {"listChanged": False}},
            "serverInfo": {"name": f"appliance/{self.name}", "version": "0.1.0"},
            "instructions": "Tools of the MCP server "
            + self.name + ", governed by the compliance appliance: calls are screened "
            "for personal data, decided by policy and audited.",
        }

    async def _list(self, mid: Any, params: Body) -> Body:
        ctx = self._context(None, "list")
        try:
            await self.services.pipeline.authenticate_caller(ctx)
            cursor = params.get("cursor")
            tools, nxt = await self.upstream.list_tools(cursor if isinstance(cursor, str) else None)
        except ApplianceError as e:
            return _refusal(mid, e)
        except McpRemoteError as e:
            return _error(mid, e.code, e.message, e.data)
        shown = [t.definition for t in tools if await self.permitted(ctx, t)]
        result: Body = {"tools": shown}
        if nxt:
            result["nextCursor"] = nxt
        return _result(mid, result)

    async def _call(self, mid: Any, params: Body) -> Body:
        name, arguments = params.get("name"), params.get("arguments")
        arguments = {} if arguments is None else arguments
        ctx = self._context(None, self._request_id())
        self.request[CONTEXT] = ctx
        reply: Body
        try:
            await self.services.pipeline.authenticate_caller(ctx)
            if not isinstance(name, str) or not isinstance(arguments, dict):
                raise InvalidRequest("tools/call: params.name (a string) and params.arguments "
                                     "(an object) are required")
            tool = await self.upstream.tool(name)
            if tool is None:
                raise NotFound(f"Unknown tool: {name}")
            ctx.model = ctx.requested_model = f"mcp:{self.name}/{tool.name}"
            ctx.verdicts.append(Verdict("mcp", findings=tool.findings()))
            ctx.body = call_body(ctx, tool, arguments)
            raw: list[Body] = []

            async def invoke(body: Body) -> Body:
                result = await self.upstream.call_tool(tool.name, arguments_of(body))
                raw.append(result)
                return result_to_canonical(ctx, result)

            screened = await self.services.pipeline.complete_tool(ctx, invoke)
            result = canonical_to_result(raw[0], screened)
            if result.get("isError"):
                ctx.verdicts.append(Verdict("mcp", findings=tool.findings(is_error=True)))
            reply = _result(mid, result)
        except ApplianceError as e:
            ctx.status, ctx.error = e.status, e.code or e.type
            reply = _error(mid, INVALID_PARAMS, e.message) if isinstance(e, NotFound) \
                else _refusal(mid, e, ctx)
        except McpRemoteError as e:
            ctx.status, ctx.error = 502, "upstream_error"
            reply = _error(mid, e.code, e.message, e.data)
        except Exception as e:  # noqa: BLE001 - recorded as failed, answered as an error
            err = unexpected(ctx, e)
            ctx.status, ctx.error = err.status, err.code
            reply = _refusal(mid, err, ctx)
        try:
            await finish(self.services, ctx)
        except StageFailed as e:  # not recorded: the call must not be acknowledged
            reply = _refusal(mid, e, ctx)
        return reply


def _http_error(status: int, message: str) -> web.Response:
    return web.Response(status=status, content_type="application/json",
                        body=orjson.dumps(_error(None, INVALID_REQUEST if status < 500
                                                 else INTERNAL_ERROR, message)))


async def mcp_post(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    name = request.match_info["server"]
    config = services.config.mcp.servers.get(name)
    if config is None:
        return _http_error(404, f"No MCP server named {name!r} is offered here.")
    try:
        await services.authenticator.verify(api_key_of(request))
        raw = await read_body(request)
    except AuthenticationFailed as e:
        resp = _http_error(401, e.message)
        resp.headers["WWW-Authenticate"] = 'Bearer realm="appliance"'
        return resp
    except (PayloadTooLarge, ApplianceError) as e:
        return _http_error(e.status, e.message)
    try:
        message = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return web.Response(status=400, content_type="application/json",
                            body=orjson.dumps(_error(None, PARSE_ERROR, "Parse error")))
    session = _Session(request, name, config)
    if isinstance(message, list):
        replies = [r for r in [await session.handle(m) for m in message] if r is not None]
        if not replies:
            return web.Response(status=202)
        return web.Response(body=orjson.dumps(replies), content_type="application/json")
    reply = await session.handle(message)
    if reply is None:
        return web.Response(status=202)
    headers: dict[str, str] = {}
    ctx = request.get(CONTEXT)
    if ctx is not None:
        headers["x-appliance-decision"] = decision_of(ctx)
    return web.Response(body=orjson.dumps(reply), content_type="application/json",
                        headers=headers)


async def mcp_get(request: web.Request) -> web.StreamResponse:
    """No server-initiated stream: the gateway sends nothing unasked (spec: 405)."""
    return web.Response(status=405, headers={"Allow": "POST, DELETE"})


async def mcp_delete(request: web.Request) -> web.StreamResponse:
    """The client ends its session; the gateway keeps none, so there is nothing to drop."""
    return web.Response(status=200)


def add_routes(app: web.Application) -> None:
    app[GATEWAY] = Gateway()
    app.router.add_post("/mcp/{server}", mcp_post)
    app.router.add_get("/mcp/{server}", mcp_get)
    app.router.add_delete("/mcp/{server}", mcp_delete)


__all__ = ["GATEWAY", "Gateway", "ToolCallFindings", "add_routes"]
