"""A client of the MCP gateway written with the ``mcp`` SDK 2.x (``mcp.Client``), run as a
subprocess with that SDK on its path (the suite's own environment pins 1.x): prints the
tools it sees and the text of one ``lookup_customer`` call, as JSON.

    python tests/e2e/mcp2_client.py URL KEY EMAIL
"""

from __future__ import annotations

import asyncio
import json
import sys


async def main(url: str, key: str, email: str) -> None:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"})
    async with Client(streamable_http_client(url, http_client=http)) as client:
        tools = await client.list_tools()
        result = await client.call_tool("lookup_customer", {"email": email})
    text = "".join(getattr(c, "text", "") for c in result.content)
    print(json.dumps({"tools": sorted(t.name for t in tools.tools), "text": text,
                      "is_error": bool(result.is_error)}))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
