"""A cheap token estimate of a request, taken before the model is called.

Rate limits must be checked before the provider reports the real count, so admission
uses an estimate (about four characters a token, plus a few tokens of framing per
message, plus ``max_tokens`` when the caller sets it, as OpenAI counts it); ``settle``
later replaces the estimate with the provider's real usage.
"""

from __future__ import annotations

import json
from typing import Any

_CHARS_PER_TOKEN = 4
_PER_MESSAGE = 4


def _chars(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        total = 0
        for part in value:
            if isinstance(part, str):
                total += len(part)
            elif isinstance(part, int):
                total += _CHARS_PER_TOKEN  # a pre-tokenised input: one token each
            elif isinstance(part, dict):
                total += len(part.get("text") or "") if part.get("type", "text") == "text" else 0
            elif isinstance(part, list):
                total += _chars(part)
        return total
    return 0


def _tokens(chars: int) -> int:
    return -(-chars // _CHARS_PER_TOKEN)


def tokens_of_chars(chars: int) -> int:
    """Estimated tokens of ``chars`` characters of text (a streamed answer cut short)."""
    return _tokens(chars)


def estimate_prompt(body: dict[str, Any]) -> int:
    """Estimated prompt tokens of a chat, completion or embedding request."""
    if "messages" in body:
        total = 0
        for m in body.get("messages") or []:
            if not isinstance(m, dict):
                continue
            chars = _chars(m.get("content"))
            for call in m.get("tool_calls") or []:
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict):
                    chars += len(str(fn.get("name") or "")) + len(str(fn.get("arguments") or ""))
            total += _PER_MESSAGE + _tokens(chars)
        tools = body.get("tools")
        if tools:
            total += _tokens(len(json.dumps(tools, separators=(",", ":"))))
        return total + 3
    if "prompt" in body:
        return max(1, _tokens(_chars(body.get("prompt"))))
    if "input" in body:
        return max(1, _tokens(_chars(body.get("input"))))
    return 1


def requested_output(body: dict[str, Any]) -> int:
    """The output cap the caller asked for (0 when none: only the prompt is reserved)."""
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, int) and value > 0:
            n = body.get("n")
            return value * (n if isinstance(n, int) and n > 0 else 1)
    return 0
