"""Response stage "safety_output": screens answers, whole or streamed, for unsafe content.

A streamed answer is held back only in bounded stretches: chunks are released as soon
as the text they carry has been screened, at a sentence end or after
``[risk].stream_hold_chars`` characters, whichever comes first. A sentence end does not
end a stretch while the next chunk has already arrived (the provider is ahead of the
screen, so releasing now would not reach the caller sooner): a long answer is screened
in stretches of up to ``stream_hold_chars``, not sentence by sentence. Each stretch is
screened together with the tail of what was already released, so a phrase split across
two stretches is still seen whole. When a block threshold is reached the rest of the answer
is withheld and the stream ends with ``finish_reason: "content_filter"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import re
from collections.abc import AsyncIterator
from typing import Any

from appliance.config import Config
from appliance.core.context import Context
from appliance.core.findings import AnswerSafetyFindings, Verdict
from appliance.pipeline.stage import Chunk
from appliance.risk.attacks import PromptAttackScreen, load_attack_rules, read_attack_limits
from appliance.risk.classifier import RiskClassifier
from appliance.risk.screening import SafetyScreen, Screened
from appliance.risk.text import choice_texts, delta_texts

#: The category a prompt attack in an MCP tool's result is flagged or blocked under.
TOOL_RESULT_ATTACK = "prompt_attack"
#: Below this many held characters a sentence end does not yet trigger a screen.
_MIN_STRETCH = 48
_SENTENCE_END = re.compile(r"[.!?。\n]\s*$")


class SafetyOutputStage:
    """Response stage on the process's classifier (read-only, shared with classify)."""

    name = "safety_output"

    def __init__(self, config: Config, classifier: RiskClassifier | None) -> None:
        if classifier is None:
            raise ValueError("the safety_output stage needs the risk classifier")
        self._config = config
        self._classifier = classifier
        self._screen = SafetyScreen(config)
        #: An MCP tool's result goes back to the agent's model: it is read for prompt
        #: attacks as a tool result, against the policy data's thresholds.
        self._attacks = PromptAttackScreen(load_attack_rules(config.risk.prompt_attack_rules))
        self._attack_limits = config.policy.directory / "data" / "prompt_attacks.yaml"

    async def start(self) -> None:
        await self._screen.start(self._classifier)

    async def aclose(self) -> None:
        await self._screen.aclose()

    def _record(
        self, ctx: Context, merged: dict[str, float], flags: set[str], blocked: set[str]
    ) -> None:
        reasons = tuple(f"safety: {c} content in the answer" for c in sorted(blocked))
        ctx.verdicts.append(
            Verdict(
                self.name,
                reasons=reasons,
                findings=AnswerSafetyFindings(
                    scores=merged,
                    flags=tuple(sorted(flags)),
                    blocked=tuple(sorted(blocked)),
                    withheld=bool(blocked),
                ),
            )
        )

    # -- whole responses ---------------------------------------------------------------

    async def screen(self, ctx: Context, response: dict[str, Any]) -> dict[str, Any]:
        if response.get("object") == "list":  # embeddings carry no generated text
            return response
        merged: dict[str, float] = {}
        flags: set[str] = set()
        blocked: set[str] = set()
        withheld: set[int] = set()
        for index, text in choice_texts(response):
            result = await self._screen.screen(text, "answer")
            _merge(merged, result)
            flags.update(result.flags)
            if result.blocked:
                blocked.update(result.blocked)
                withheld.add(index)
            if ctx.route == "mcp.tools/call":
                action = await self._tool_result_attack(text, merged)
                if action != "allow":
                    flags.add(TOOL_RESULT_ATTACK)
                if action == "block":
                    blocked.add(TOOL_RESULT_ATTACK)
                    withheld.add(index)
        if withheld:
            response = self._withhold(response, withheld)
        self._record(ctx, merged, flags, blocked)
        return response

    async def _tool_result_attack(self, text: str, merged: dict[str, float]) -> str:
        """What the policy data says about a prompt attack in an MCP tool's result."""
        found = await asyncio.to_thread(self._attacks.score, text, "tool_result")
        merged[TOOL_RESULT_ATTACK] = max(found.score, merged.get(TOOL_RESULT_ATTACK, 0.0))
        limits = await asyncio.to_thread(read_attack_limits, self._attack_limits)
        return limits.action(found.score, "tool_result")

    def _withhold(self, response: dict[str, Any], indices: set[int]) -> dict[str, Any]:
        out = copy.copy(response)
        choices = []
        for pos, choice in enumerate(response.get("choices") or ()):
            if int(choice.get("index", pos)) not in indices:
                choices.append(choice)
                continue
            c = dict(choice)
            c["finish_reason"] = "content_filter"
            if "text" in c:
                c["text"] = self._config.risk.withheld_text
            else:
                msg = dict(c.get("message") or {})
                msg["content"] = self._config.risk.withheld_text
                msg.pop("tool_calls", None)
                msg.pop("function_call", None)
                c["message"] = msg
            choices.append(c)
        out["choices"] = choices
        return out

    # -- streams ---------------------------------------------------------------------------

    def screen_stream(self, ctx: Context, chunks: AsyncIterator[Chunk]) -> AsyncIterator[Chunk]:
        return self._stream(ctx, chunks)

    async def _stream(self, ctx: Context, chunks: AsyncIterator[Chunk]) -> AsyncIterator[Chunk]:
        hold_max = self._config.risk.stream_hold_chars
        overlap = self._config.risk.stream_overlap_chars
        held: list[Chunk] = []
        pending: dict[int, str] = {}
        tail: dict[int, str] = {}
        merged: dict[str, float] = {}
        flags: set[str] = set()
        blocked: set[str] = set()

        async def check() -> Screened | None:
            """Screen every choice's pending stretch; the first blocking result, if any."""
            hit: Screened | None = None
            for index, text in pending.items():
                if not text:
                    continue
                result = await self._screen.screen(tail.get(index, "") + text, "answer")
                _merge(merged, result)
                flags.update(result.flags)
                if result.blocked:
                    blocked.update(result.blocked)
                    hit = hit or result
                tail[index] = (tail.get(index, "") + text)[-overlap:] if overlap else ""
                pending[index] = ""
            return hit

        try:
            async for chunk, more in _read_ahead(chunks):
                if blocked:
                    # The answer is withheld; still pass the usage so metering stays right.
                    if chunk.get("usage"):
                        yield {**chunk, "choices": []}
                    continue
                held.append(chunk)
                for index, text in delta_texts(chunk):
                    pending[index] = pending.get(index, "") + text
                finishing = any(
                    isinstance(c, dict) and c.get("finish_reason")
                    for c in chunk.get("choices") or ()
                )
                longest = max((len(t) for t in pending.values()), default=0)
                sentence = not more and any(
                    len(t) >= _MIN_STRETCH and _SENTENCE_END.search(t) for t in pending.values()
                )
                if not (finishing or longest >= hold_max or sentence or chunk.get("usage")):
                    continue
                if await check() is not None:
                    yield self._withheld_chunk(held[-1])
                    held.clear()
                    if chunk.get("usage"):
                        yield {**chunk, "choices": []}
                    continue
                for c in held:
                    yield c
                held.clear()
            if held:
                if await check() is not None:
                    yield self._withheld_chunk(held[-1])
                else:
                    for c in held:
                        yield c
                held.clear()
        finally:
            self._record(ctx, merged, flags, blocked)

    def _withheld_chunk(self, template: Chunk) -> Chunk:
        indices = sorted(
            {int(c.get("index", i)) for i, c in enumerate(template.get("choices") or ())}
        ) or [0]
        legacy = any("text" in c for c in template.get("choices") or ())
        text = self._config.risk.withheld_text
        choices: list[dict[str, Any]] = []
        for i in indices:
            if legacy:
                choices.append({"index": i, "text": text, "finish_reason": "content_filter"})
            else:
                choices.append(
                    {"index": i, "delta": {"content": text}, "finish_reason": "content_filter"}
                )
        out = {k: v for k, v in template.items() if k not in ("choices", "usage")}
        out["choices"] = choices
        return out


#: Chunks read ahead of the screen at most (the provider is paused beyond).
_READ_AHEAD = 64
_END = object()


async def _read_ahead(chunks: AsyncIterator[Chunk]) -> AsyncIterator[tuple[Chunk, bool]]:
    """Each chunk, and whether the next one has already arrived.

    A task reads up to :data:`_READ_AHEAD` chunks ahead while the screen works; the
    provider's failure is raised here, after the chunks that came before it.
    """
    queue: asyncio.Queue[object] = asyncio.Queue(_READ_AHEAD)

    async def read() -> None:
        try:
            async for chunk in chunks:
                await queue.put(chunk)
        except Exception as exc:  # noqa: BLE001 - raised to the reader below, in order
            await queue.put(_Failed(exc))
            return
        await queue.put(_END)

    task = asyncio.get_running_loop().create_task(read())
    try:
        while True:
            item = await queue.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item, not queue.empty()  # type: ignore[misc]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class _Failed:
    def __init__(self, error: Exception) -> None:
        self.error = error


def _merge(into: dict[str, float], result: Screened) -> None:
    for k, v in result.scores.items():
        into[k] = max(v, into.get(k, 0.0))
