"""pii_output: restore placeholders in the answer and screen PII the model produced itself.

Where the policy allows (``restore_pii``, default ``pii.restore``), placeholders of this
request's vault are put back, in whole responses and in streams (chunk by chunk, with a
hold-back no longer than the longest placeholder), including inside tool-call argument
fragments (JSON-escaped there). PII the model wrote on its own is screened when restoring
is not allowed (then masked per policy) or for types the policy set to block, redact or
hash (those are removed from the answer whatever restore says).
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from appliance.config import Config
from appliance.core.context import Context
from appliance.core.findings import AnswerPiiFindings, Verdict
from appliance.pii.actions import ActionTable, Outcome, apply_actions
from appliance.config.pii import Action
from appliance.pii.findings import Finding
from appliance.pii.language import detect_language
from appliance.pii.pieces import known_digests
from appliance.pii.slots import request_slots, response_slots
from appliance.pii.stream import PlaceholderRestorer, StreamScreener
from appliance.pii.vault import PLACEHOLDER, Vault
from appliance.pipeline.redact import REDACTED
from appliance.pipeline.stage import Chunk

if TYPE_CHECKING:
    from appliance.pii.pool import AnalyzerPool


class _Plan:
    """What the output side does for one request."""

    def __init__(self, ctx: Context, config: Config, can_screen: bool) -> None:
        pii = config.pii
        state = ctx.get(REDACTED)
        if state is not None:
            self.vault, actions, self.salt = state.vault, state.actions, state.salt
        else:
            self.vault, self.salt = Vault(), os.urandom(16)
            actions = ActionTable.resolve(pii, ctx.obligations.get("pii_actions"))
        restore = ctx.obligations.get("restore_pii", pii.restore)
        self.restore = bool(restore) and len(self.vault) > 0
        allowed_to_see = bool(restore)

        def on_output(action: Action) -> Action:
            if action == "block":
                return "redact"
            if action == "mask" and allowed_to_see:
                return "allow"
            return action

        self.actions = ActionTable(
            {t: on_output(a) for t, a in actions.by_type.items()}, on_output(actions.default)
        )
        acting = set(self.actions.by_type.values()) | {self.actions.default}
        self.screen = can_screen and pii.screen_output and acting != {"allow"}
        self.outcome = Outcome()

    def transform(self, text: str, findings: Sequence[Finding], in_json: bool = False) -> str:
        placeholders = [m.span() for m in PLACEHOLDER.finditer(text)]
        keep = [
            f for f in findings
            if all(f.end <= s or f.start >= e for s, e in placeholders)
            and not (in_json and any(c in text[f.start:f.end] for c in '"\\'))
        ]
        return apply_actions(text, keep, self.actions, self.vault, self.salt, self.outcome)


class PiiOutput:
    """Response stage, on the process's analyzer pool (None: PII detection is off, so
    only placeholders are restored)."""

    name = "pii_output"

    def __init__(self, config: Config, analyzer: AnalyzerPool | None) -> None:
        self._config = config
        self._pool = analyzer

    def _plan(self, ctx: Context) -> _Plan:
        return _Plan(ctx, self._config, can_screen=self._pool is not None)

    def _lang(self, text: str) -> str:
        langs = self._config.pii.languages
        lang = detect_language(text, default=langs[0])
        return lang if lang in langs else langs[0]

    async def _analyze_one(self, text: str) -> list[Finding]:
        assert self._pool is not None  # a plan screens only with a pool
        return (await self._pool.analyze([text], [self._lang(text)], detect_pieces=True))[0]

    def _record(self, ctx: Context, plan: _Plan, duration_s: float) -> None:
        """The stage's verdict; a stream's duration is not measured (it would be the
        upstream's time as much as the screen's)."""
        ctx.verdicts.append(Verdict(
            self.name,
            findings=AnswerPiiFindings(restored=plan.restore, screened=dict(plan.outcome.types)),
            duration_s=duration_s,
        ))

    async def screen(self, ctx: Context, response: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        plan = self._plan(ctx)
        if not (plan.screen or plan.restore):
            return response
        slots = response_slots(response)
        texts = slots.texts
        if plan.screen and self._pool is not None:
            findings = await self._pool.analyze(
                texts, [self._lang(t) for t in texts], detect_pieces=True,
                tenant=ctx.principal.tenant if ctx.principal else None,
                known=screened_request(ctx))
        else:
            findings = [[] for _ in texts]
        for slot, found in zip(slots.slots, findings, strict=True):
            text = plan.transform(slot.text, found) if found else slot.text
            if plan.restore:
                text = plan.vault.restore(text)
            if text != slot.text:
                slot.write(text)
        slots.commit()
        self._record(ctx, plan, time.perf_counter() - started)
        return response

    async def screen_stream(
        self, ctx: Context, chunks: AsyncIterator[Chunk]
    ) -> AsyncIterator[Chunk]:
        plan = self._plan(ctx)
        if not (plan.screen or plan.restore):
            async for chunk in chunks:
                yield chunk
            return
        channels: dict[tuple[int, str, int], _Channel] = {}

        def channel(key: tuple[int, str, int]) -> _Channel:
            if key not in channels:
                channels[key] = _Channel(self, plan, in_json=key[1] == "args")
            return channels[key]

        last: Chunk | None = None
        async for chunk in chunks:
            last = chunk
            for choice in chunk.get("choices") or ():
                idx = int(choice.get("index", 0))
                if isinstance(choice.get("text"), str):
                    choice["text"] = await channel((idx, "text", 0)).feed(choice["text"])
                delta = choice.get("delta")
                if isinstance(delta, dict):
                    if isinstance(delta.get("content"), str):
                        delta["content"] = await channel((idx, "content", 0)).feed(delta["content"])
                    for call in delta.get("tool_calls") or ():
                        fn = call.get("function") if isinstance(call, dict) else None
                        if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                            key = (idx, "args", int(call.get("index", 0)))
                            fn["arguments"] = await channel(key).feed(fn["arguments"])
                if choice.get("finish_reason") is not None:
                    await _flush_into(choice, idx, channels)
            yield chunk
        leftovers = {k: c for k, c in channels.items() if c.has_pending}
        if leftovers:
            for idx in sorted({k[0] for k in leftovers}):
                extra: dict[str, Any] = {"index": idx, "delta": {}, "finish_reason": None}
                await _flush_into(extra, idx, channels)
                yield {
                    "id": (last or {}).get("id", ""),
                    "object": "chat.completion.chunk",
                    "created": (last or {}).get("created", 0),
                    "model": (last or {}).get("model", ""),
                    "choices": [extra],
                }
        self._record(ctx, plan, 0.0)


def screened_request(ctx: Context) -> frozenset[bytes]:
    """Digests of the request's paragraphs as redact sent them on: an answer paragraph
    that repeats one word for word was screened on the way out and is not analysed again
    (nothing in it can be acted on that the request side left in: see docs/architecture.md)."""
    if ctx.get(REDACTED) is None:
        return frozenset()
    return known_digests(request_slots(ctx.route, ctx.body).texts)


class _Channel:
    """One text stream inside the answer: a choice's content or one tool call's arguments."""

    def __init__(self, stage: PiiOutput, plan: _Plan, in_json: bool) -> None:
        pii = stage._config.pii
        self._plan = plan
        self._restorer = PlaceholderRestorer(plan.vault, escape_json=in_json) if plan.restore else None
        self._screener = (
            StreamScreener(
                stage._analyze_one,
                lambda text, found: plan.transform(text, found, in_json),
                hold=pii.stream_entity_chars,
                step=max(8, pii.stream_entity_chars // 2),
            )
            if plan.screen
            else None
        )
        self.has_pending = False

    async def feed(self, fragment: str) -> str:
        self.has_pending = True
        text = await self._screener.feed(fragment) if self._screener else fragment
        return self._restorer.feed(text) if self._restorer else text

    async def flush(self) -> str:
        self.has_pending = False
        text = await self._screener.flush() if self._screener else ""
        if self._restorer:
            return self._restorer.feed(text) + self._restorer.flush()
        return text


async def _flush_into(
    choice: dict[str, Any], idx: int, channels: dict[tuple[int, str, int], _Channel]
) -> None:
    for (c_idx, kind, sub), ch in sorted(channels.items()):
        if c_idx != idx or not ch.has_pending:
            continue
        rest = await ch.flush()
        if not rest:
            continue
        if kind == "text":
            choice["text"] = (choice.get("text") or "") + rest
            continue
        delta = choice.setdefault("delta", {})
        if kind == "content":
            delta["content"] = (delta.get("content") or "") + rest
        else:
            calls = delta.setdefault("tool_calls", [])
            for call in calls:
                if int(call.get("index", 0)) == sub:
                    fn = call.setdefault("function", {})
                    fn["arguments"] = (fn.get("arguments") or "") + rest
                    break
            else:
                calls.append({"index": sub, "function": {"arguments": rest}})


