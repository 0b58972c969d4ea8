"""Response stage "disclosure": marks AI-generated answers (AI Act Art. 50).

Whether an answer is disclosed is the policy's call (obligation ``disclosure``); when the
policy says nothing, answers of requests in an Art. 50 case (a transparency area in the
content or in the application's declared purpose, or a class listed in
``[risk].disclosure_classes``) are disclosed. Disclosure sets the configured header and,
where configured, adds a text to the answer, streamed answers included.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

from appliance.config import Config
from appliance.core.context import Context
from appliance.core.findings import DisclosureFindings, RiskFindings, Verdict
from appliance.pipeline.stage import Chunk


class DisclosureStage:
    name = "disclosure"

    def __init__(self, config: Config) -> None:
        self._risk = config.risk

    def applies(self, ctx: Context) -> bool:
        decided = ctx.obligations.get("disclosure")
        if decided is not None:
            return bool(decided)
        risk = ctx.findings(RiskFindings)
        if risk is None:
            return False
        classes = set(self._risk.disclosure_classes)
        return risk.transparency or risk.risk_class in classes or risk.declared_class in classes

    def _mark(self, ctx: Context) -> bool:
        """Leave the verdict and set the header; True when a text must be added too."""
        if ctx.route in ("embeddings", "moderations", "mcp.tools/call"):  # not a model's answer
            return False
        disclosed = self.applies(ctx)
        ctx.verdicts.append(Verdict(self.name, findings=DisclosureFindings(disclosed)))
        if not disclosed:
            return False
        ctx.headers[self._risk.disclosure_header] = "true"
        return bool(self._risk.disclosure_text)

    def _join(self, text: str) -> str:
        notice = self._risk.disclosure_text or ""
        if not text:
            return notice
        return (
            f"{notice}\n\n{text}"
            if self._risk.disclosure_position == "prepend"
            else f"{text}\n\n{notice}"
        )

    async def screen(self, ctx: Context, response: dict[str, Any]) -> dict[str, Any]:
        if not self._mark(ctx):
            return response
        out = copy.copy(response)
        choices = []
        for choice in response.get("choices") or ():
            c = dict(choice)
            if c.get("finish_reason") == "content_filter":
                choices.append(c)
                continue
            if "text" in c:
                c["text"] = self._join(str(c.get("text") or ""))
            elif isinstance(c.get("message"), dict):
                msg = dict(c["message"])
                content = msg.get("content")
                if isinstance(content, str) or (content is None and not msg.get("tool_calls")):
                    msg["content"] = self._join(content or "")
                    c["message"] = msg
            choices.append(c)
        out["choices"] = choices
        return out

    def screen_stream(self, ctx: Context, chunks: AsyncIterator[Chunk]) -> AsyncIterator[Chunk]:
        # Decided now, before the first chunk is pulled, so the header goes out with the
        # response head even when the server sends headers before the stream starts.
        add_text = self._mark(ctx)
        return self._stream(chunks) if add_text else chunks

    async def _stream(self, chunks: AsyncIterator[Chunk]) -> AsyncIterator[Chunk]:
        notice = self._risk.disclosure_text or ""
        prepend = self._risk.disclosure_position == "prepend"
        started: set[int] = set()
        finished: set[int] = set()
        template: Chunk | None = None
        async for chunk in chunks:
            template = template or chunk
            choices = [c for c in chunk.get("choices") or () if isinstance(c, dict)]
            if prepend:
                chunk = self._prepend(chunk, choices, started, notice)
            else:
                for pos, c in enumerate(choices):
                    index = int(c.get("index", pos))
                    reason = c.get("finish_reason")
                    if reason and reason != "content_filter" and index not in finished:
                        finished.add(index)
                        yield _text_chunk(chunk, index, "\n\n" + notice, "text" in c)
            yield chunk

    def _prepend(
        self, chunk: Chunk, choices: list[dict[str, Any]], started: set[int], notice: str
    ) -> Chunk:
        if all(int(c.get("index", p)) in started for p, c in enumerate(choices)):
            return chunk
        out = dict(chunk)
        new_choices = []
        for pos, c in enumerate(choices):
            index = int(c.get("index", pos))
            if index in started or c.get("finish_reason") == "content_filter":
                new_choices.append(c)
                continue
            started.add(index)
            c = dict(c)
            if "text" in c:
                c["text"] = notice + "\n\n" + str(c.get("text") or "")
            else:
                delta = dict(c.get("delta") or {})
                delta["content"] = notice + "\n\n" + str(delta.get("content") or "")
                c["delta"] = delta
            new_choices.append(c)
        out["choices"] = new_choices
        return out


def _text_chunk(template: Chunk, index: int, text: str, legacy: bool) -> Chunk:
    out = {k: v for k, v in template.items() if k not in ("choices", "usage")}
    if legacy:
        out["choices"] = [{"index": index, "text": text, "finish_reason": None}]
    else:
        out["choices"] = [{"index": index, "delta": {"content": text}, "finish_reason": None}]
    return out
