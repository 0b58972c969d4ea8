"""Continuous batching: one worker thread decodes every active request of a model together.

Requests arrive from the event loop through a thread-safe queue. Between decode steps
the worker admits new ones (prefilled alone, then merged into the batch cache) and
drops finished or cancelled ones, so a long answer never holds a short one back and
eight concurrent requests cost little more per step than one. Results go back to each
request's event loop with ``call_soon_threadsafe``; the loop itself never runs a model.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from tokenizers import Tokenizer
from tokenizers.decoders import DecodeStream

from appliance.providers.local.causal_lm import CausalLM, KVBatch
from appliance.providers.local.sampling import Sampler, SamplingParams
from appliance.providers.local.stops import StopMatcher

log = logging.getLogger(__name__)

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class Finished:
    reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    #: Any text the stop matcher was still holding back.
    text: str = ""
    #: The generated token ids (the terminating EOS excluded), for tests and audits.
    token_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Failed:
    error: BaseException


Event = TextDelta | Finished | Failed


@dataclass
class GenerationRequest:
    prompt: list[int]
    max_tokens: int
    sampling: SamplingParams
    stop: tuple[str, ...]
    #: Called from the worker thread; must be thread-safe (e.g. call_soon_threadsafe).
    emit: Callable[[Event], None]
    #: Set by the caller when the client went away; the worker then drops the row.
    cancelled: threading.Event = field(default_factory=threading.Event)
    #: Also stop on these token ids (besides the model's EOS).
    stop_token_ids: frozenset[int] = frozenset()


@dataclass
class _Row:
    request: GenerationRequest
    sampler: Sampler
    stream: DecodeStream
    stops: StopMatcher
    tokens: list[int] = field(default_factory=list)
    done: bool = False

    @property
    def last_token(self) -> int:
        return self.tokens[-1]


class BatchScheduler:
    """Owns one model's worker thread; ``submit`` is safe to call from any thread."""

    def __init__(self, model: CausalLM, tokenizer: Tokenizer, *, max_batch_size: int = 8) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch_size = max_batch_size
        self._inbox: queue.Queue[GenerationRequest | None] = queue.Queue()
        self._thread = threading.Thread(
            target=self._run, name=f"onnx-decode-{model.manifest.name}", daemon=True
        )
        self._started = False
        #: Largest batch decoded together so far (observability and tests).
        self.peak_batch = 0

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def submit(self, request: GenerationRequest) -> None:
        self._inbox.put(request)

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the worker (finishing nothing further); blocks: call from a thread."""
        if self._started:
            self._inbox.put(None)
            self._thread.join(timeout_s)

    # -- worker thread ------------------------------------------------------------------

    def _run(self) -> None:
        rows: list[_Row] = []
        batch: KVBatch | None = None
        while True:
            incoming: list[GenerationRequest | None] = []
            if not rows:
                incoming.append(self._inbox.get())  # idle: block until work arrives
            while len(rows) + len(incoming) < self.max_batch_size:
                try:
                    incoming.append(self._inbox.get_nowait())
                except queue.Empty:
                    break
            if None in incoming:
                for row in rows:
                    row.request.emit(Failed(RuntimeError("model is shutting down")))
                for req in incoming:
                    if req is not None:
                        req.emit(Failed(RuntimeError("model is shutting down")))
                return
            for req in incoming:
                assert req is not None
                try:
                    admitted = self._prefill(req)
                except Exception as e:  # translated to an ApplianceError by the provider
                    log.exception("model %s: prefill failed", self.model.manifest.name)
                    req.emit(Failed(e))
                    continue
                if admitted is not None:
                    row, cache = admitted
                    rows.append(row)
                    batch = self.model.merge(batch, cache)
            if not rows:
                batch = None
                continue
            self.peak_batch = max(self.peak_batch, len(rows))
            try:
                assert batch is not None
                logits, batch = self.model.decode([r.last_token for r in rows], batch)
                for i, row in enumerate(rows):
                    self._advance(row, int(row.sampler(logits[i])))
            except Exception as e:
                log.exception("model %s: decode step failed", self.model.manifest.name)
                for row in rows:
                    row.request.emit(Failed(e))
                rows, batch = [], None
                continue
            keep = [i for i, r in enumerate(rows) if not r.done and not r.request.cancelled.is_set()]
            if len(keep) < len(rows):
                rows = [rows[i] for i in keep]
                batch = self.model.select(batch, keep) if rows else None

    def _prefill(self, req: GenerationRequest) -> tuple[_Row, KVBatch] | None:
        if req.cancelled.is_set():
            return None
        row = _Row(
            request=req,
            sampler=Sampler(req.sampling),
            stream=DecodeStream(skip_special_tokens=True),
            stops=StopMatcher(req.stop),
        )
        logits, cache = self.model.prefill(req.prompt)
        self._advance(row, int(row.sampler(logits[0])))
        return None if row.done else (row, cache)

    def _advance(self, row: _Row, token: int) -> None:
        """Account one sampled token: emit its text, or finish the row."""
        req = row.request
        if token in self.model.eos_ids or token in req.stop_token_ids:
            self._finish(row, "stop")
            return
        row.tokens.append(token)
        piece = row.stream.step(self.tokenizer, token)
        if piece:
            text = row.stops.feed(piece)
            if text:
                req.emit(TextDelta(text))
            if row.stops.stopped:
                self._finish(row, "stop")
                return
        if len(row.tokens) >= req.max_tokens:
            self._finish(row, "length")

    def _finish(self, row: _Row, reason: FinishReason) -> None:
        row.done = True
        req = row.request
        req.emit(
            Finished(
                reason, len(req.prompt), len(row.tokens),
                text=row.stops.flush(), token_ids=tuple(row.tokens),
            )
        )
