"""Check of the MCP gateway's upstreams: every declared server answers ``initialize``."""

from __future__ import annotations

import asyncio

import aiohttp

from appliance.config import Config
from appliance.doctor.outcome import Outcome, Setup, fail, ok
from appliance.errors import ApplianceError
from appliance.mcp.client import McpUpstream


async def _initialize_all(config: Config) -> dict[str, str | None]:
    """Server name -> None when it answered, else why not (never a credential)."""
    out: dict[str, str | None] = {}
    async with aiohttp.ClientSession() as http:
        for name, server in sorted(config.mcp.servers.items()):
            upstream = McpUpstream(name, server.model_copy(update={
                "timeout_s": min(server.timeout_s, 10.0)}), http)
            try:
                info = await upstream.initialize()
                tools, _ = await upstream.list_tools()
            except ApplianceError as e:
                out[name] = e.message
                continue
            label = info.get("name") or "unnamed"
            out[name] = None
            out[f"{name}:ok"] = f"{name} ({label}, {len(tools)} tools)"
    return out


def check_mcp(setup: Setup) -> Outcome:
    config = setup.config
    if not config.mcp.servers:
        return ok("no MCP servers declared")
    found = asyncio.run(_initialize_all(config))
    failing = [f"{n}: {why}" for n, why in found.items() if not n.endswith(":ok") and why]
    answering = [v for n, v in found.items() if n.endswith(":ok") and v]
    if failing:
        return fail(f"{'; '.join(failing)}; answering: {', '.join(answering) or 'none'}",
                    "check [mcp.servers.NAME] url and the credentials' environment variables")
    return ok(f"every MCP server answers initialize: {', '.join(answering)}")
