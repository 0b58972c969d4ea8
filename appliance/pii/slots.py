"""Every piece of text in a request that can carry personal data, as writable slots.

Messages (string or text parts), tool definitions' descriptions (and the descriptions
inside their parameter schemas), tool-call arguments (a JSON string: each string value
is its own slot, and the arguments stay valid JSON), tool results, the completions
prompt and the embeddings input. Walking the body once gives the list that is analysed
in one pool call and rewritten in place afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class TextSlot:
    """One text and how to write its replacement back into the body."""

    text: str
    write: Callable[[str], None]


class SlotSet:
    """The slots of one body; :meth:`commit` re-serialises rewritten tool-call arguments."""

    def __init__(self) -> None:
        self.slots: list[TextSlot] = []
        self._commits: list[Callable[[], None]] = []

    @property
    def texts(self) -> list[str]:
        return [s.text for s in self.slots]

    def commit(self) -> None:
        for c in self._commits:
            c()

    def add_item(self, container: Any, key: Any) -> None:
        value = container[key]
        if isinstance(value, str):

            def write(new: str, c: Any = container, k: Any = key) -> None:
                c[k] = new

            self.slots.append(TextSlot(value, write))

    def add_content(self, holder: dict[str, Any], key: str) -> None:
        """A message content: a string, or a list of parts of which text parts count."""
        content = holder.get(key)
        if isinstance(content, str):
            self.add_item(holder, key)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    self.add_item(part, "text")
                elif isinstance(part, str):
                    self.add_item(content, content.index(part))

    def add_json_string(self, holder: dict[str, Any], key: str) -> None:
        """A JSON document held as a string: slot every string value, keep it valid JSON.

        Text that is not JSON (a truncated model output) is one plain slot.
        """
        raw = holder.get(key)
        if not isinstance(raw, str) or not raw.strip():
            return
        try:
            doc = json.loads(raw)
        except ValueError:
            self.add_item(holder, key)
            return
        before = len(self.slots)
        for container, k in _string_leaves(doc):
            self.add_item(container, k)
        if isinstance(doc, str):
            box = [doc]
            self.add_item(box, 0)
            self._commits.append(lambda: holder.__setitem__(key, json.dumps(box[0], ensure_ascii=False)))
        elif len(self.slots) > before:
            self._commits.append(lambda: holder.__setitem__(key, json.dumps(doc, ensure_ascii=False)))

    def add_schema_descriptions(self, schema: Any) -> None:
        if isinstance(schema, dict):
            for k, v in schema.items():
                if k in {"description", "title"} and isinstance(v, str):
                    self.add_item(schema, k)
                else:
                    self.add_schema_descriptions(v)
        elif isinstance(schema, list):
            for v in schema:
                self.add_schema_descriptions(v)


def _string_leaves(doc: Any) -> Iterator[tuple[Any, Any]]:
    if isinstance(doc, dict):
        for k, v in doc.items():
            if isinstance(v, str):
                yield doc, k
            else:
                yield from _string_leaves(v)
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            if isinstance(v, str):
                yield doc, i
            else:
                yield from _string_leaves(v)


def request_slots(route: str, body: dict[str, Any]) -> SlotSet:
    """Slots of a request body in the canonical (OpenAI) shape, for any route."""
    s = SlotSet()
    for message in body.get("messages") or ():
        if not isinstance(message, dict):
            continue
        s.add_content(message, "content")
        for call in message.get("tool_calls") or ():
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict):
                s.add_json_string(fn, "arguments")
    for tool in body.get("tools") or ():
        fn = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(fn, dict):
            if isinstance(fn.get("description"), str):
                s.add_item(fn, "description")
            s.add_schema_descriptions(fn.get("parameters"))
    for key in ("prompt", "input"):
        value = body.get(key)
        if isinstance(value, str):
            s.add_item(body, key)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                if isinstance(v, str):
                    s.add_item(value, i)
                elif isinstance(v, dict):  # moderation / multimodal input parts
                    s.add_content({"content": [v]}, "content")
    if isinstance(body.get("system"), str):
        s.add_item(body, "system")
    return s


def response_slots(response: dict[str, Any]) -> SlotSet:
    """Slots of a non-streaming answer: message content, tool-call arguments, completion text."""
    s = SlotSet()
    for choice in response.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        if isinstance(choice.get("text"), str):
            s.add_item(choice, "text")
        message = choice.get("message")
        if isinstance(message, dict):
            s.add_content(message, "content")
            for call in message.get("tool_calls") or ():
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict):
                    s.add_json_string(fn, "arguments")
    return s
