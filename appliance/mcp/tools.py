"""An upstream tool as the gateway sees it: its name, schema and annotations.

Annotations are the server's own hints (MCP ``ToolAnnotations``); the operator's config
overrides them (``read_only_tools``, ``destructive_tools``), and where neither says,
MCP's defaults apply: not read-only, destructive, not idempotent, open world. So a tool
that declares nothing is treated as one that may change or delete data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from appliance.config.mcp import McpServerConfig
from appliance.core.findings import ToolCallFindings


@dataclass(frozen=True, slots=True)
class ToolInfo:
    server: str
    name: str
    #: The tool's definition as the upstream listed it (name, description, schemas, ...).
    definition: dict[str, Any]
    read_only: bool
    destructive: bool
    idempotent: bool
    open_world: bool

    def findings(self, *, is_error: bool = False) -> ToolCallFindings:
        return ToolCallFindings(
            server=self.server,
            tool=self.name,
            read_only=self.read_only,
            destructive=self.destructive,
            idempotent=self.idempotent,
            open_world=self.open_world,
            is_error=is_error,
        )


def _hint(hints: dict[str, Any], key: str, default: bool) -> bool:
    value = hints.get(key)
    return value if isinstance(value, bool) else default


def tool_info(server: str, config: McpServerConfig, definition: dict[str, Any]) -> ToolInfo:
    name = str(definition.get("name", ""))
    hints = definition.get("annotations")
    hints = hints if isinstance(hints, dict) else {}
    read_only = _hint(hints, "readOnlyHint", False)
    # destructiveHint means something only when the tool is not read-only (MCP spec).
    destructive = not read_only and _hint(hints, "destructiveHint", True)
    if name in config.read_only_tools:
        read_only, destructive = True, False
    if name in config.destructive_tools:
        read_only, destructive = False, True
    return ToolInfo(
        server=server,
        name=name,
        definition=definition,
        read_only=read_only,
        destructive=destructive,
        idempotent=_hint(hints, "idempotentHint", False),
        open_world=_hint(hints, "openWorldHint", True),
    )
