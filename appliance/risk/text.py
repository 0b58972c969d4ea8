"""Which text of a request or an answer the classifier looks at.

Never logged, never stored: these strings exist only while a request is screened.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from appliance.risk.classifier import Segments


def content_text(content: Any) -> str:
    """The text of a message ``content``: a string, or the text parts of a part list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(p.get("text", ""))
            for p in content
            if isinstance(p, dict) and p.get("type") in ("text", "input_text")
        )
    return ""


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def request_segments(body: dict[str, Any]) -> Segments:
    """Segments of a canonical (OpenAI-shaped) request body, for any route.

    Context = system/developer prompts and tool descriptions (stable per application,
    so their embedding is cached); content = the latest user turn. The rules see every
    turn; the safety screen sees what callers and tools supplied, not the operator's
    own system prompt.
    """
    messages = body.get("messages")
    if isinstance(messages, list):
        context: list[str] = []
        turns: list[str] = []
        supplied: list[str] = []
        last_user = ""
        for m in messages:
            if not isinstance(m, dict):
                continue
            role, text = m.get("role"), content_text(m.get("content"))
            if role in ("system", "developer"):
                context.append(text)
            elif role == "user":
                turns.append(text)
                supplied.append(text)
                last_user = text
            elif role == "tool":
                supplied.append(text)
            else:
                turns.append(text)
                for call in m.get("tool_calls") or ():
                    fn = (call.get("function") or {}) if isinstance(call, dict) else {}
                    turns.append(str(fn.get("arguments", "")))
        for tool in body.get("tools") or ():
            fn = (tool.get("function") or {}) if isinstance(tool, dict) else {}
            context.append(str(fn.get("description", "")))
        ctx_text = "\n".join(t for t in context if t)
        return Segments(
            rules_text="\n".join(t for t in (ctx_text, *turns) if t),
            context=ctx_text,
            content=last_user,
            safety_text="\n".join(t for t in supplied if t),
        )
    texts = _strings(body.get("prompt")) + _strings(body.get("input"))
    joined = "\n".join(texts)
    return Segments(rules_text=joined, content=joined, safety_text=joined)


def _choice_parts(obj: dict[str, Any], key: str) -> Iterator[tuple[int, list[str], bool]]:
    """Per choice: (index, text pieces, whether it is a completion's plain ``text``).

    ``key`` is "message" for whole responses and "delta" for stream chunks; the pieces are
    the content and every tool call's arguments.
    """
    for pos, choice in enumerate(obj.get("choices") or ()):
        if not isinstance(choice, dict):
            continue
        index = int(choice.get("index", pos))
        if "text" in choice:
            yield index, [str(choice.get("text") or "")], True
            continue
        part = choice.get(key) or {}
        pieces = [content_text(part.get("content"))]
        for call in part.get("tool_calls") or ():
            fn = (call.get("function") or {}) if isinstance(call, dict) else {}
            pieces.append(str(fn.get("arguments", "") or ""))
        yield index, pieces, False


def choice_texts(response: dict[str, Any]) -> Iterator[tuple[int, str]]:
    """(choice index, answer text incl. tool-call arguments) of a whole response."""
    for index, pieces, _ in _choice_parts(response, "message"):
        yield index, "\n".join(p for p in pieces if p)


def delta_texts(chunk: dict[str, Any]) -> Iterator[tuple[int, str]]:
    """(choice index, new text) of one stream chunk: content and tool-call fragments."""
    for index, pieces, plain in _choice_parts(chunk, "delta"):
        text = "".join(p for p in pieces if p)
        if text or plain:
            yield index, text
