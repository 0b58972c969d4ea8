"""An upstream MCP server built with the official ``mcp`` SDK (1.x ``FastMCP``), served
over streamable HTTP by uvicorn on a loopback port: what the gateway's tests and the
benchmark call through ``/mcp/NAME``.

A small CRM: ``lookup_customer`` (read-only), ``send_email`` (writes, not destructive),
``update_customer`` (destructive), ``delete_customer`` (no annotations: destructive by
MCP's defaults). Every call's arguments are kept in :attr:`FakeMcpServer.calls`, as the
upstream received them, so a test can tell what left the appliance.

Use it from sync code as ``with FakeMcpServer().running() as server: server.url``; it
serves from a background thread with its own event loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Self

from mcp.server.fastmcp import FastMCP
from mcp.types import ToolAnnotations


class FakeMcpServer:
    def __init__(self, name: str = "crm", *, record: bool = True) -> None:
        self.name = name
        #: Keep the calls (off for benchmarks: the list would grow without bound).
        self.record = record
        #: (tool, arguments) of every call, as received.
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.port = 0
        self._server: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def app(self) -> Any:
        mcp = FastMCP(self.name, stateless_http=True, host="127.0.0.1", log_level="WARNING")
        def note(tool: str, arguments: dict[str, Any]) -> None:
            if self.record:
                self.calls.append((tool, arguments))

        @mcp.tool(annotations=ToolAnnotations(readOnlyHint=True, openWorldHint=False))
        def lookup_customer(email: str) -> str:
            """Find a customer by e-mail address."""
            note("lookup_customer", {"email": email})
            return f"customer {email}: status active"

        @mcp.tool(annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False))
        def send_email(to: str, body: str) -> str:
            """Send an e-mail."""
            note("send_email", {"to": to, "body": body})
            return f"sent to {to}"

        @mcp.tool(annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=True))
        def update_customer(email: str, status: str) -> str:
            """Overwrite a customer's status."""
            note("update_customer", {"email": email, "status": status})
            return f"updated {email}"

        @mcp.tool()
        def delete_customer(email: str) -> str:
            """Delete a customer."""
            note("delete_customer", {"email": email})
            return f"deleted {email}"

        return mcp.streamable_http_app()

    @contextmanager
    def running(self) -> Iterator[Self]:
        import uvicorn

        config = uvicorn.Config(self.app(), host="127.0.0.1", port=0, log_level="warning",
                                lifespan="on", access_log=False)
        server = uvicorn.Server(config)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(),),
                                  name=f"fake-mcp-{self.name}", daemon=True)
        thread.start()
        for _ in range(600):
            if server.started:
                break
            threading.Event().wait(0.05)
        else:
            raise TimeoutError("the fake MCP server did not start")
        self.port = int(server.servers[0].sockets[0].getsockname()[1])
        self._server = server
        try:
            yield self
        finally:
            server.should_exit = True
            thread.join(30)
            loop.close()
