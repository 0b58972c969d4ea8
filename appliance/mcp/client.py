"""The gateway's client of one upstream MCP server, over the streamable HTTP transport.

One session per upstream server and process: ``initialize`` on first use (and again when
the server forgets the session: HTTP 404), then JSON-RPC requests as POSTs carrying the
``Mcp-Session-Id`` and ``MCP-Protocol-Version`` headers. A server may answer a POST with
one JSON body or with an SSE stream; the stream is read up to the response with the
request's id (notifications and server requests on it are skipped: the gateway declares
no client capabilities, so a server has nothing to ask). Credentials come from the
environment variables the config names and never appear in an error message.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import Any

import aiohttp
import orjson

from appliance.config import secret
from appliance.config.mcp import McpServerConfig
from appliance.errors import UpstreamError, UpstreamTimeout
from appliance.mcp.tools import ToolInfo, tool_info
from appliance.providers._http import iter_sse

#: The protocol version the gateway asks upstream servers for (the newest it knows).
PROTOCOL_VERSION = "2025-06-18"
CLIENT_INFO = {"name": "appliance-mcp-gateway", "version": "0.1.0"}
#: How long the rest of an answered SSE stream is awaited before the connection is dropped.
_DRAIN_S = 0.25


class McpRemoteError(Exception):
    """The upstream answered a JSON-RPC error (passed on to the client as it came)."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


class McpUpstream:
    def __init__(self, name: str, config: McpServerConfig, http: aiohttp.ClientSession) -> None:
        self.name = name
        self.config = config
        self._http = http
        self._ids = itertools.count(1)
        self._session_id: str | None = None
        self._protocol: str | None = None
        self._init_lock = asyncio.Lock()
        self.server_info: dict[str, Any] = {}
        self._tools: dict[str, ToolInfo] = {}
        headers = {"Content-Type": "application/json",
                   "Accept": "application/json, text/event-stream"}
        token = secret(config.bearer_token_env)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        for header, env in config.headers_env.items():
            value = secret(env)
            if value:
                headers[header] = value
        self._headers = headers
        self._secrets = tuple(v for k, v in headers.items() if k not in ("Content-Type", "Accept"))

    # -- transport --------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, "***")
        return text[:300]

    def _request_headers(self) -> dict[str, str]:
        headers = dict(self._headers)
        if self._session_id:
            headers["Mcp-Session-Id"] = self._session_id
        if self._protocol:
            headers["MCP-Protocol-Version"] = self._protocol
        return headers

    async def _post(self, message: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        """POST one message; (HTTP status, the JSON-RPC response or None for 202)."""
        timeout = aiohttp.ClientTimeout(total=self.config.timeout_s)
        try:
            async with self._http.post(self.config.url, data=orjson.dumps(message),
                                       headers=self._request_headers(), timeout=timeout) as resp:
                if "initialize" == message.get("method"):
                    self._session_id = resp.headers.get("Mcp-Session-Id") or None
                if resp.status == 202 or "id" not in message:
                    await resp.read()
                    return resp.status, None
                if resp.status >= 400:
                    await resp.read()
                    return resp.status, None
                kind = resp.headers.get("Content-Type", "").split(";")[0].strip()
                if kind == "text/event-stream":
                    answer: dict[str, Any] | None = None
                    async for _event, data in iter_sse(resp):
                        if not data:
                            continue
                        doc = orjson.loads(data)
                        if isinstance(doc, dict) and doc.get("id") == message["id"] and (
                            "result" in doc or "error" in doc
                        ):
                            answer = doc
                            break
                    if answer is None:
                        raise UpstreamError(
                            f"MCP server {self.name} ended its stream without an answer"
                        )
                    # The server closes the stream after the answer: read to its end, so
                    # the connection goes back to the pool instead of being closed.
                    with contextlib.suppress(TimeoutError, aiohttp.ClientError):
                        await asyncio.wait_for(resp.read(), _DRAIN_S)
                    return resp.status, answer
                doc = orjson.loads(await resp.read())
                if not isinstance(doc, dict):
                    raise UpstreamError(f"MCP server {self.name} sent a malformed answer")
                return resp.status, doc
        except TimeoutError:
            raise UpstreamTimeout(f"MCP server {self.name} did not answer in time") from None
        except aiohttp.ClientError as e:
            raise UpstreamError(
                f"MCP server {self.name} is unreachable ({type(e).__name__})", retryable=True
            ) from None
        except orjson.JSONDecodeError:
            raise UpstreamError(f"MCP server {self.name} sent malformed JSON") from None

    async def _initialize(self) -> None:
        self._session_id, self._protocol = None, None
        status, doc = await self._post({
            "jsonrpc": "2.0", "id": next(self._ids), "method": "initialize",
            "params": {"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                       "clientInfo": CLIENT_INFO},
        })
        if doc is None or "result" not in doc:
            raise UpstreamError(
                f"MCP server {self.name} refused initialize (HTTP {status})",
                upstream_status=status, retryable=status >= 500,
            )
        result = doc["result"]
        self._protocol = str(result.get("protocolVersion") or PROTOCOL_VERSION)
        self.server_info = dict(result.get("serverInfo") or {})
        await self._post({"jsonrpc": "2.0", "method": "notifications/initialized"})

    async def initialize(self) -> dict[str, Any]:
        """(Re)initialize the session; the server's ``serverInfo`` (doctor calls this)."""
        async with self._init_lock:
            await self._initialize()
        return self.server_info

    async def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """One JSON-RPC request; its result, or McpRemoteError for a JSON-RPC error."""
        for attempt in range(2):
            if self._protocol is None:
                async with self._init_lock:
                    if self._protocol is None:
                        await self._initialize()
            message: dict[str, Any] = {"jsonrpc": "2.0", "id": next(self._ids), "method": method}
            if params is not None:
                message["params"] = params
            status, doc = await self._post(message)
            if status == 404 and self._session_id and attempt == 0:
                self._protocol = None  # the server forgot the session: start a new one
                continue
            if doc is None:
                raise UpstreamError(f"MCP server {self.name} answered HTTP {status}",
                                    upstream_status=status, retryable=status >= 500)
            if "error" in doc:
                err = doc["error"] if isinstance(doc["error"], dict) else {}
                raise McpRemoteError(int(err.get("code", -32603)),
                                     self._scrub(str(err.get("message", "error"))), err.get("data"))
            result = doc.get("result")
            return result if isinstance(result, dict) else {}
        raise UpstreamError(f"MCP server {self.name} keeps losing its session")

    # -- tools ------------------------------------------------------------------------

    async def list_tools(self, cursor: str | None = None) -> tuple[list[ToolInfo], str | None]:
        """One page of the server's tools (remembered for calls), and the next cursor."""
        result = await self.request("tools/list", {"cursor": cursor} if cursor else {})
        tools = [tool_info(self.name, self.config, t) for t in result.get("tools") or ()
                 if isinstance(t, dict)]
        if cursor is None:
            self._tools = {}
        self._tools.update({t.name: t for t in tools})
        nxt = result.get("nextCursor")
        return tools, nxt if isinstance(nxt, str) else None

    async def tool(self, name: str) -> ToolInfo | None:
        """The tool named ``name``; the list is fetched again once when it is not known."""
        if name not in self._tools:
            cursor: str | None = None
            first = True
            while first or cursor:
                _, cursor = await self.list_tools(None if first else cursor)
                first = False
        return self._tools.get(name)

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return await self.request("tools/call", {"name": name, "arguments": arguments})
