"""Configuration of the MCP gateway (``[mcp.servers.NAME]``).

Each declared server is offered to clients at ``/mcp/NAME`` over the streamable HTTP
transport. Credentials for the upstream server are never in the file: the fields ending
in ``_env`` name the environment variables that hold them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class McpServerConfig(_Frozen):
    #: The upstream server's streamable HTTP endpoint, e.g. "https://crm.internal/mcp".
    url: str
    #: Environment variable holding a bearer token sent to the upstream (None: none sent).
    bearer_token_env: str | None = None
    #: Further upstream headers: header name -> environment variable holding its value.
    headers_env: dict[str, str] = {}
    #: Where the server runs, as providers say it ("eu", "on-premises", ...): policies see it.
    region: str = "unknown"
    #: Bound on one upstream call (seconds).
    timeout_s: float = Field(60.0, gt=0)
    #: Tools the operator declares read-only, whatever the server's own annotations say.
    read_only_tools: tuple[str, ...] = ()
    #: Tools the operator declares destructive, whatever the server's own annotations say.
    destructive_tools: tuple[str, ...] = ()
    #: What the server is for, for the operators reading the config.
    description: str = ""


class McpConfig(_Frozen):
    #: Upstream MCP servers by name; each is served at /mcp/NAME.
    servers: dict[str, McpServerConfig] = {}
