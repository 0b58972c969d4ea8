"""The MCP gateway's JSON-RPC over streamable HTTP, message by message: what a client that
gets something wrong (or right) is answered, with the upstream a FastMCP server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from appliance.testing.fakes.mcp_server import FakeMcpServer
from appliance.testing.harness import PASS_THROUGH, merge
from tests.conftest import Running, StartAppliance
from appliance.testing.engines import free_port as _free_port


@pytest.fixture
def crm() -> Iterator[FakeMcpServer]:
    with FakeMcpServer("crm").running() as server:
        yield server


@pytest.fixture
async def running(start_appliance: StartAppliance, crm: FakeMcpServer) -> Running:
    return await start_appliance(merge(PASS_THROUGH, {"mcp": {"servers": {
        "crm": {"url": crm.url, "region": "eu", "destructive_tools": ["send_email"]},
        "gone": {"url": f"http://127.0.0.1:{_free_port()}/mcp", "timeout_s": 5},
    }}}))


async def _post(running: Running, body: Any, server: str = "crm", key: str | None = None,
                raw: bytes | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {key or running.key}",
               "Accept": "application/json, text/event-stream"}
    async with aiohttp.ClientSession() as http, http.post(
        f"{running.url}/mcp/{server}", json=None if raw is not None else body, data=raw,
        headers=headers,
    ) as r:
        text = await r.read()
        return r.status, (await r.json(content_type=None)) if text else None


def _call(name: str, arguments: Any, mid: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": mid, "method": "tools/call",
            "params": {"name": name, "arguments": arguments}}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"jsonrpc": "1.0", "id": 1, "method": "ping"}, -32600),
        ({"jsonrpc": "2.0", "id": 1, "method": "resources/list"}, -32601),
        (_call("no_such_tool", {}), -32602),
        (_call("lookup_customer", ["not", "an", "object"]), -32602),
        ({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"arguments": {}}}, -32602),
    ],
)
async def test_bad_messages_get_json_rpc_errors(running: Running, body: Any, code: int) -> None:
    status, reply = await _post(running, body)
    assert status == 200 and reply["error"]["code"] == code


async def test_parse_error_and_notifications(running: Running) -> None:
    status, reply = await _post(running, None, raw=b"{nope")
    assert status == 400 and reply["error"]["code"] == -32700
    status, reply = await _post(running, {"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert status == 202 and reply is None


async def test_initialize_ping_and_batches(running: Running) -> None:
    _, reply = await _post(running, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "1999-01-01", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}})
    assert reply["result"]["protocolVersion"] == "2025-11-25"
    assert reply["result"]["capabilities"] == {"tools": {"listChanged": False}}
    _, replies = await _post(running, [
        {"jsonrpc": "2.0", "id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    ])
    assert [r["id"] for r in replies] == [1, 2]
    assert replies[0]["result"] == {}
    # Stages off: no policy to hide tools; every tool of the upstream is listed.
    assert len(replies[1]["result"]["tools"]) == 4


async def test_calls_pass_arguments_and_results(running: Running, crm: FakeMcpServer) -> None:
    _, reply = await _post(running, _call("lookup_customer", {"email": "a@b.example"}))
    assert reply["result"]["content"][0]["text"] == "customer a@b.example: status active"
    assert reply["result"]["isError"] is False
    assert crm.calls[-1] == ("lookup_customer", {"email": "a@b.example"})
    _, reply = await _post(running, _call("lookup_customer", {}))  # missing argument
    assert reply["result"]["isError"] is True  # the tool's own error, passed on


async def test_http_level_errors(running: Running) -> None:
    status, _ = await _post(running, _call("lookup_customer", {}), key="ak-wrong")
    assert status == 401
    status, _ = await _post(running, _call("lookup_customer", {}), server="nope")
    assert status == 404
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{running.url}/mcp/crm") as r:
            assert r.status == 405
        async with http.delete(f"{running.url}/mcp/crm") as r:
            assert r.status == 200


async def test_an_unreachable_upstream_is_an_error_not_a_500(running: Running) -> None:
    status, reply = await _post(running, _call("anything", {}), server="gone")
    assert status == 200
    assert reply["error"]["code"] == -32002 and reply["error"]["data"]["status"] == 502
    status, reply = await _post(running, {"jsonrpc": "2.0", "id": 3, "method": "tools/list"},
                                server="gone")
    assert reply["error"]["code"] == -32002


@pytest.mark.parametrize(
    ("annotations", "config", "expected"),
    [
        (None, {}, (False, True)),  # MCP's defaults: an unannotated tool may destroy
        ({"readOnlyHint": True}, {}, (True, False)),
        ({"readOnlyHint": True, "destructiveHint": True}, {}, (True, False)),
        ({"destructiveHint": False}, {}, (False, False)),
        ({"readOnlyHint": True}, {"destructive_tools": ["t"]}, (False, True)),
        (None, {"read_only_tools": ["t"]}, (True, False)),
    ],
)
def test_tool_annotations(annotations: Any, config: dict[str, Any],
                          expected: tuple[bool, bool]) -> None:
    from appliance.config.mcp import McpServerConfig
    from appliance.mcp.tools import tool_info

    definition: dict[str, Any] = {"name": "t", "inputSchema": {}}
    if annotations is not None:
        definition["annotations"] = annotations
    info = tool_info("s", McpServerConfig(url="http://x", **config), definition)
    assert (info.read_only, info.destructive) == expected


async def test_limits_per_tool(start_appliance: StartAppliance, crm: FakeMcpServer) -> None:
    running = await start_appliance(merge(PASS_THROUGH, {
        "pipeline": {"limits": True},
        "limits": {"tools": {"crm/lookup_customer": {"rpm": 2}}},
        "mcp": {"servers": {"crm": {"url": crm.url}}},
    }))
    for i in range(2):
        _, reply = await _post(running, _call("lookup_customer", {"email": f"{i}@x.org"}, i))
        assert reply["result"]["isError"] is False
    _, reply = await _post(running, _call("lookup_customer", {"email": "3@x.org"}, 3))
    assert reply["error"]["code"] == -32001 and reply["error"]["data"]["status"] == 429
    assert "crm/lookup_customer" in reply["error"]["message"]
    _, reply = await _post(running, _call("send_email", {"to": "a@x.org", "body": "hi"}, 4))
    assert reply["result"]["isError"] is False  # other tools have their own count
