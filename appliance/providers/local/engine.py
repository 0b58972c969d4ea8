"""A loaded local model: its manifest plus the runtime that serves it.

``TextModel`` owns the ONNX session, the tokenizer, the chat template and the batching
scheduler of a chat/completion model; ``EmbeddingModel`` wraps an :class:`OnnxEmbedder`.
Both are built in a worker thread (loading takes a while) and closed by the provider.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from appliance.errors import InvalidRequest
from appliance.models.manifest import Manifest, load_manifest
from appliance.providers.local.causal_lm import CausalLM
from appliance.providers.local.embedding import OnnxEmbedder
from appliance.providers.local.prompts import compile_chat_template, render_chat
from appliance.providers.local.sampling import SamplingParams
from appliance.providers.local.scheduler import (
    BatchScheduler,
    Event,
    Failed,
    Finished,
    GenerationRequest,
)


def _special(tok_config: dict[str, Any], key: str) -> str:
    value = tok_config.get(key)
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else ""


@dataclass(frozen=True)
class Job:
    """One sequence to generate; several jobs of one request share an event queue."""

    index: int
    prompt: list[int]
    max_tokens: int
    sampling: SamplingParams
    stop: tuple[str, ...]
    #: Jobs with the same group share one prompt (choices of ``n``): its tokens count once.
    group: int = 0


class TextModel:
    def __init__(
        self,
        model_dir: Path,
        manifest: Manifest,
        providers: Sequence[str],
        *,
        max_batch_size: int,
        intra_op_threads: int | None,
    ) -> None:
        self.manifest = manifest
        self.tokenizer = Tokenizer.from_file(str(manifest.tokenizer_path(model_dir)))
        tok_config_path = model_dir / "tokenizer_config.json"
        tok_config = (
            json.loads(tok_config_path.read_text("utf-8")) if tok_config_path.is_file() else {}
        )
        self.bos_text = _special(tok_config, "bos_token")
        self.eos_text = _special(tok_config, "eos_token")
        self.render = compile_chat_template(manifest.chat_template)
        self.lm = CausalLM(model_dir, manifest, providers, intra_op_threads=intra_op_threads)
        self.stop_token_ids = frozenset(
            tid for t in manifest.stop_tokens if (tid := self.tokenizer.token_to_id(t)) is not None
        )
        self.bos_id = (
            self.tokenizer.token_to_id(manifest.bos_token) if manifest.bos_token else None
        )
        self.scheduler = BatchScheduler(self.lm, self.tokenizer, max_batch_size=max_batch_size)
        self.scheduler.start()

    @property
    def context_length(self) -> int:
        return self.manifest.context_length

    def chat_prompt(self, messages: list[dict[str, Any]]) -> list[int]:
        text = render_chat(self.render, messages, bos_token=self.bos_text, eos_token=self.eos_text)
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def completion_prompt(self, prompt: str) -> list[int]:
        ids = list(self.tokenizer.encode(prompt, add_special_tokens=False).ids)
        return [self.bos_id, *ids] if self.bos_id is not None else ids

    async def generate(self, jobs: list[Job]) -> AsyncGenerator[tuple[int, Event], None]:
        """Run ``jobs`` on the scheduler; yield (job index, event) as they happen.

        Closing the iterator early (client gone) cancels the jobs still running.
        """
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[int, Event]] = asyncio.Queue()
        requests: list[GenerationRequest] = []
        for job in jobs:
            emit = _emitter(loop, events, job.index)
            req = GenerationRequest(
                prompt=job.prompt, max_tokens=job.max_tokens, sampling=job.sampling,
                stop=job.stop, emit=emit, stop_token_ids=self.stop_token_ids,
            )
            requests.append(req)
            self.scheduler.submit(req)
        open_jobs = len(jobs)
        try:
            while open_jobs:
                index, event = await events.get()
                if isinstance(event, Finished | Failed):
                    open_jobs -= 1
                yield index, event
        finally:
            for req in requests:
                req.cancelled.set()

    def close(self) -> None:
        self.scheduler.close()


def _emitter(
    loop: asyncio.AbstractEventLoop, events: asyncio.Queue[tuple[int, Event]], index: int
) -> Callable[[Event], None]:
    def emit(event: Event) -> None:
        try:
            loop.call_soon_threadsafe(events.put_nowait, (index, event))
        except RuntimeError:  # the loop closed: nobody is listening any more
            pass

    return emit


class EmbeddingModel:
    def __init__(self, model_dir: Path, manifest: Manifest, providers: Sequence[str],
                 *, intra_op_threads: int | None) -> None:
        self.manifest = manifest
        self.embedder = OnnxEmbedder(model_dir, providers, intra_op_threads=intra_op_threads)
        # A second tokenizer without truncation, to refuse over-long inputs honestly.
        self._counter = Tokenizer.from_file(str(manifest.tokenizer_path(model_dir)))
        self._counter.no_truncation()
        self._counter.no_padding()

    def token_counts(self, texts: list[str]) -> list[int]:
        return [len(e.ids) for e in self._counter.encode_batch(texts)]

    def embed_checked(self, texts: list[str]) -> tuple[list[list[float]], int]:
        """Vectors plus the prompt token count; over-long inputs are a 400, not truncated."""
        counts = self.token_counts(texts)
        limit = self.manifest.context_length
        for i, n in enumerate(counts):
            if n > limit:
                raise InvalidRequest(
                    f"input[{i}] is {n} tokens; model {self.manifest.name} accepts at most "
                    f"{limit} tokens per input",
                    param="input", code="context_length_exceeded",
                )
        vectors = self.embedder.embed(texts)
        return vectors.tolist(), sum(counts)

    def close(self) -> None:
        pass


LoadedModel = TextModel | EmbeddingModel


def load_model(
    model_dir: Path,
    providers: Sequence[str] | None,
    *,
    max_batch_size: int,
    intra_op_threads: int | None,
) -> LoadedModel:
    """Load the model in ``model_dir`` (blocking: call from a worker thread)."""
    manifest = load_manifest(model_dir)
    eps = tuple(providers) if providers else manifest.execution_providers
    if manifest.task == "embedding":
        return EmbeddingModel(model_dir, manifest, eps, intra_op_threads=intra_op_threads)
    if manifest.task in ("chat", "completion"):
        return TextModel(model_dir, manifest, eps, max_batch_size=max_batch_size,
                         intra_op_threads=intra_op_threads)
    raise ValueError(f"model {manifest.name}: task {manifest.task} is not served locally")
