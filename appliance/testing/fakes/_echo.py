"""The deterministic 'model' behind every fake provider.

Each fake reduces its own wire format to a :class:`Prompt`, asks :func:`answer` what to
say, and writes the :class:`Answer` back in its wire format. The rules are simple enough
for a test to predict the output:

* the answer is ``"echo: <last user text>"`` (plus ``" (+N image)"`` when images came);
* when tools are offered and the caller forces one (``required`` / a named tool) or the
  last user text contains the word "tool", the answer is a call of that (or the first)
  tool, every string parameter filled with the last user text;
* when the last message is a tool result, the answer is ``"echo: <tool result>"``;
* ``max_tokens`` truncates the answer word by word (finish reason ``length``);
* token counts are word counts.
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
from dataclasses import dataclass, field
from typing import Any

_PIECE = re.compile(r"\S+\s*|\s+")


@dataclass(frozen=True)
class Tool:
    name: str
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Prompt:
    last_user_text: str = ""
    images: int = 0
    tool_result: str | None = None
    tools: tuple[Tool, ...] = ()
    #: "auto", "none", "required", or the name of a forced tool.
    tool_choice: str = "auto"
    max_tokens: int | None = None
    prompt_tokens: int = 1


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Answer:
    text: str
    tool_call: ToolCall | None
    #: "stop", "length" or "tool_calls" (each fake maps it to its own vocabulary).
    finish: str
    prompt_tokens: int
    completion_tokens: int

    def pieces(self) -> list[str]:
        """The text cut into word-sized stream deltas."""
        return _PIECE.findall(self.text)


def count_words(text: str) -> int:
    return len(text.split())


def _arguments(tool: Tool, text: str) -> dict[str, Any]:
    props = (tool.parameters or {}).get("properties") or {}
    args: dict[str, Any] = {}
    for name, schema in props.items():
        kind = schema.get("type") if isinstance(schema, dict) else None
        kind = kind.lower() if isinstance(kind, str) else None  # Gemini schemas say "STRING"
        if kind in ("integer", "number"):
            args[name] = 1
        elif kind == "boolean":
            args[name] = True
        elif kind == "string" or kind is None:
            args[name] = text
    return args


def answer(prompt: Prompt, *, call_id: str = "call_fake_1") -> Answer:
    wants_tool = (
        prompt.tools
        and prompt.tool_choice != "none"
        and prompt.tool_result is None
        and (prompt.tool_choice != "auto" or "tool" in prompt.last_user_text.lower())
    )
    if wants_tool:
        tool = next((t for t in prompt.tools if t.name == prompt.tool_choice), prompt.tools[0])
        args = _arguments(tool, prompt.last_user_text)
        return Answer(
            "",
            ToolCall(call_id, tool.name, args),
            "tool_calls",
            prompt.prompt_tokens,
            max(1, len(args)),
        )
    source = prompt.tool_result if prompt.tool_result is not None else prompt.last_user_text
    text = f"echo: {source}"
    if prompt.images:
        text += f" (+{prompt.images} image)"
    finish = "stop"
    if prompt.max_tokens is not None and count_words(text) > prompt.max_tokens:
        text = " ".join(text.split()[: prompt.max_tokens])
        finish = "length"
    return Answer(text, None, finish, prompt.prompt_tokens, count_words(text))


def embedding(text: str, dimensions: int = 8) -> list[float]:
    """A unit vector derived from the text's hash: equal texts, equal vectors."""
    raw = b""
    counter = 0
    while len(raw) < dimensions * 4:
        raw += hashlib.sha256(f"{counter}:{text}".encode()).digest()
        counter += 1
    values = [v / 2**31 for v in struct.unpack(f"<{dimensions}i", raw[: dimensions * 4])]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]
