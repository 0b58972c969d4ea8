"""What every translation from the canonical (OpenAI) shape to another wire format shares."""

from __future__ import annotations

from typing import Any

import orjson

from appliance.errors import InvalidRequest

#: Added to the system prompt of providers without a JSON mode when response_format asks for JSON.
JSON_ONLY_HINT = "Respond with a single valid JSON object and nothing else."


def tool_arguments(arguments: Any) -> Any:
    """Tool-call arguments as an object: OpenAI sends a JSON string, others want the object."""
    if isinstance(arguments, dict):
        return arguments
    if not arguments:
        return {}
    try:
        return orjson.loads(arguments)
    except orjson.JSONDecodeError:
        raise InvalidRequest("tool call arguments are not valid JSON", param="messages") from None


def append_turn(turns: list[dict[str, Any]], role: str, blocks: list[Any], key: str) -> None:
    """Append a turn, merging it into the previous one when the role repeats (providers
    that require alternating roles reject two user or two assistant turns in a row)."""
    if turns and turns[-1]["role"] == role:
        turns[-1][key].extend(blocks)
    else:
        turns.append({"role": role, key: blocks})
