"""The ``local`` provider: OpenAI-shaped chat, completions and embeddings on ONNX Runtime.

``body["model"]`` names a directory under ``models_dir`` holding a model.yaml. Models
load in a worker thread at start-up (or on first use) and stay loaded; generation runs
on each model's batching scheduler thread and embeddings on the provider's own pool,
so the event loop only moves text. Request checks (context length, max tokens, sampling
ranges) fail with InvalidRequest before any work is queued.

Tools: local models here have no tool-calling format, so ``tools`` are ignored (the
model answers in text) unless the caller *requires* a tool call (``tool_choice``
"required" or a named function), which is refused with UnsupportedOperation.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from appliance.config import LocalProviderConfig
from appliance.errors import (
    ApplianceError,
    InvalidRequest,
    ModelNotFound,
    UnsupportedOperation,
    UpstreamError,
)
from appliance.models.manifest import MANIFEST_NAME, discover
from appliance.providers.base import Body
from appliance.providers.local.engine import (
    EmbeddingModel,
    Job,
    LoadedModel,
    TextModel,
    load_model,
)
from appliance.providers.local.runtime_check import onnxruntime_install_problem
from appliance.providers.local.sampling import SamplingParams
from appliance.providers.local.scheduler import Failed, Finished, TextDelta
from appliance.providers.local.sessions import fallback_warning

log = logging.getLogger(__name__)

MAX_STOP_SEQUENCES = 4
MAX_CHOICES = 16


class LocalProvider:
    kind = "local"

    def __init__(self, name: str, config: LocalProviderConfig) -> None:
        self.name = name
        self.region = config.region
        self.config = config
        self.models_dir = Path(config.models_dir)
        self._models: dict[str, LoadedModel] = {}
        self._loading: dict[str, asyncio.Task[LoadedModel]] = {}
        self._pool = ThreadPoolExecutor(
            max_workers=config.worker_threads, thread_name_prefix=f"local-{name}"
        )

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Load every model found under ``models_dir`` so that first requests are fast."""
        problem = onnxruntime_install_problem()
        if problem:
            log.warning("%s", problem)
        if not self.config.preload:
            return
        for model in discover(self.models_dir):
            try:
                await self._model(model)
            except ApplianceError as e:
                log.error("local model %s is unusable: %s", model, e.message)
        warning = fallback_warning(
            [p for p in self.config.execution_providers if p != "CPUExecutionProvider"],
            {name: _session(m) for name, m in self._models.items()
             if "CUDAExecutionProvider" in m.manifest.execution_providers},
        )
        if warning:
            log.warning("%s", warning)

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        for task in self._loading.values():
            task.cancel()
        models, self._models = list(self._models.values()), {}
        for m in models:
            await loop.run_in_executor(None, m.close)
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _model(self, name: str) -> LoadedModel:
        model = self._models.get(name)
        if model is not None:
            return model
        model_dir = self.models_dir / name
        if not (model_dir / MANIFEST_NAME).is_file():
            raise ModelNotFound(f"local model {name!r} has no manifest in the models directory",
                                param="model")
        task = self._loading.get(name)
        if task is None:
            task = asyncio.ensure_future(self._load(name, model_dir))
            self._loading[name] = task
        try:
            return await asyncio.shield(task)
        finally:
            if task.done():
                self._loading.pop(name, None)

    async def _load(self, name: str, model_dir: Path) -> LoadedModel:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            model = await loop.run_in_executor(self._pool, self._load_blocking, model_dir)
        except Exception as e:  # noqa: BLE001 -- ORT, tokenizers, YAML: any of them may fail
            log.error("loading local model %s failed: %s: %s", name, type(e).__name__, e)
            raise UpstreamError(f"local model {name!r} failed to load (see the server log)",
                                retryable=False) from None
        self._models[name] = model
        log.info("local model %s loaded in %.1f s (%s)", name, time.perf_counter() - started,
                 _where(model))
        return model

    def _load_blocking(self, model_dir: Path) -> LoadedModel:
        from appliance.models.manifest import load_manifest

        manifest = load_manifest(model_dir)
        allowed = self.config.execution_providers
        eps = [p for p in manifest.execution_providers if p in allowed] or list(allowed)
        return load_model(
            model_dir, eps, max_batch_size=self.config.max_batch_size,
            intra_op_threads=self.config.intra_op_threads,
        )

    async def _text_model(self, body: Body) -> TextModel:
        model = await self._model(_model_name(body))
        if not isinstance(model, TextModel):
            raise UnsupportedOperation(f"model {model.manifest.name!r} is an embedding model",
                                       param="model")
        return model

    # -- chat -----------------------------------------------------------------------------

    async def chat(self, body: Body) -> Body:
        model = await self._text_model(body)
        jobs = await self._chat_jobs(model, body)
        texts, reasons, usage = await _collect(model, jobs)
        return {
            "id": _id("chatcmpl"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": texts[i], "refusal": None},
                    "logprobs": None,
                    "finish_reason": reasons[i],
                }
                for i in range(len(jobs))
            ],
            "usage": usage,
        }

    async def stream_chat(self, body: Body) -> AsyncIterator[Body]:
        model = await self._text_model(body)
        jobs = await self._chat_jobs(model, body)
        base = {"id": _id("chatcmpl"), "object": "chat.completion.chunk",
                "created": int(time.time()), "model": body["model"]}

        def chunk(index: int, delta: dict[str, Any], finish: str | None) -> Body:
            choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
            return {**base, "choices": [choice]}

        for job in jobs:
            yield chunk(job.index, {"role": "assistant", "content": ""}, None)
        async for item in _stream(model, jobs):
            if isinstance(item, dict):
                yield {**base, "choices": [], "usage": item}
            elif item[2] is None:
                yield chunk(item[0], {"content": item[1]}, None)
            else:
                if item[1]:
                    yield chunk(item[0], {"content": item[1]}, None)
                yield chunk(item[0], {}, item[2])

    async def _chat_jobs(self, model: TextModel, body: Body) -> list[Job]:
        _refuse_unsupported_chat(body)
        loop = asyncio.get_running_loop()
        messages: Any = body.get("messages")  # its shape is checked by render_chat
        prompt = await loop.run_in_executor(self._pool, model.chat_prompt, messages)
        n = _int_param(body, "n", 1, 1, MAX_CHOICES)
        return _jobs(model, [prompt] * n, body, param="messages", per_prompt=n)

    # -- output room ------------------------------------------------------------------------

    async def output_room(self, body: Body) -> int | None:
        """Tokens the context leaves for the answer after this request's longest prompt.

        The router clamps an output cap the caller did not ask for (a policy's) to it, so
        that a default never exceeds what the model can produce. None when the body cannot
        be tokenized: the call itself then says why.
        """
        try:
            model = await self._text_model(body)
        except ApplianceError:
            return None
        loop = asyncio.get_running_loop()
        if "messages" in body:
            messages: Any = body.get("messages")  # its shape is checked by render_chat
            prompts = [await loop.run_in_executor(self._pool, model.chat_prompt, messages)]
        else:
            raw = body.get("prompt")
            texts = [raw] if isinstance(raw, str) else raw
            if not isinstance(texts, list) or not texts or not all(
                isinstance(t, str) for t in texts
            ):
                return None
            prompts = await loop.run_in_executor(
                self._pool, lambda: [model.completion_prompt(t) for t in texts])
        return model.context_length - max(len(p) for p in prompts)

    # -- completions ------------------------------------------------------------------------

    async def completions(self, body: Body) -> Body:
        model = await self._text_model(body)
        jobs = await self._completion_jobs(model, body)
        texts, reasons, usage = await _collect(model, jobs)
        return {
            "id": _id("cmpl"),
            "object": "text_completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {"index": i, "text": texts[i], "logprobs": None, "finish_reason": reasons[i]}
                for i in range(len(jobs))
            ],
            "usage": usage,
        }

    async def stream_completions(self, body: Body) -> AsyncIterator[Body]:
        model = await self._text_model(body)
        jobs = await self._completion_jobs(model, body)
        base = {"id": _id("cmpl"), "object": "text_completion",
                "created": int(time.time()), "model": body["model"]}
        async for item in _stream(model, jobs):
            if isinstance(item, dict):
                yield {**base, "choices": [], "usage": item}
            else:
                index, text, finish = item
                yield {**base, "choices": [
                    {"index": index, "text": text, "logprobs": None, "finish_reason": finish}
                ]}

    async def _completion_jobs(self, model: TextModel, body: Body) -> list[Job]:
        for key in ("echo", "suffix"):
            if body.get(key):
                raise UnsupportedOperation(f"{key} is not supported by local models", param=key)
        if (body.get("best_of") or 1) > 1:
            raise UnsupportedOperation("best_of is not supported by local models",
                                       param="best_of")
        if body.get("logprobs"):
            raise UnsupportedOperation("logprobs are not supported by local models",
                                       param="logprobs")
        raw = body.get("prompt")
        prompts = [raw] if isinstance(raw, str) else raw
        if not isinstance(prompts, list) or not prompts or not all(
            isinstance(p, str) for p in prompts
        ):
            raise InvalidRequest("prompt must be a string or a non-empty list of strings",
                                 param="prompt")
        n = _int_param(body, "n", 1, 1, MAX_CHOICES)
        if len(prompts) * n > MAX_CHOICES:
            raise InvalidRequest(f"at most {MAX_CHOICES} prompts x n per request", param="n")
        loop = asyncio.get_running_loop()
        ids = await loop.run_in_executor(
            self._pool, lambda: [model.completion_prompt(p) for p in prompts]
        )
        empty = [i for i, p in enumerate(ids) if not p]
        if empty:  # a model without a beginning-of-text token has nothing to continue
            raise InvalidRequest(
                f"prompt {empty[0]} is empty; model {model.manifest.name} needs at least "
                "one token to continue", param="prompt")
        return _jobs(model, [p for p in ids for _ in range(n)], body, param="prompt",
                     per_prompt=n)

    # -- embeddings -------------------------------------------------------------------------

    async def embeddings(self, body: Body) -> Body:
        model = await self._model(_model_name(body))
        if not isinstance(model, EmbeddingModel):
            raise UnsupportedOperation(
                f"model {model.manifest.name!r} does not serve embeddings", param="model"
            )
        raw = body.get("input")
        texts = [raw] if isinstance(raw, str) else raw
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise InvalidRequest("input must be a string or a non-empty list of strings "
                                 "(token arrays are not supported locally)", param="input")
        if len(texts) > self.config.max_embedding_inputs:
            raise InvalidRequest(
                f"at most {self.config.max_embedding_inputs} inputs per request", param="input"
            )
        dims = body.get("dimensions")
        if dims is not None and dims != model.embedder.dimensions:
            raise UnsupportedOperation(
                f"model {model.manifest.name!r} returns {model.embedder.dimensions} dimensions "
                "and cannot shorten them", param="dimensions",
            )
        loop = asyncio.get_running_loop()
        vectors, tokens = await loop.run_in_executor(self._pool, model.embed_checked, texts)
        return {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)
            ],
            "model": body["model"],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    # -- introspection --------------------------------------------------------------------

    def price_per_1k_tokens(self, model: str) -> float | None:
        """Internal price from the model's manifest (for cost reports), once loaded."""
        loaded = self._models.get(model)
        return loaded.manifest.price_per_1k_tokens if loaded else None


# -- request helpers ------------------------------------------------------------------------


def _session(model: LoadedModel) -> Any:
    return model.lm.session if isinstance(model, TextModel) else model.embedder.session


def _where(model: LoadedModel) -> str:
    return str(_session(model).get_providers()[0])


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def _model_name(body: Body) -> str:
    name = body.get("model")
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise ModelNotFound("invalid local model name", param="model")
    return name


def _refuse_unsupported_chat(body: Body) -> None:
    choice = body.get("tool_choice")
    if body.get("tools") and (choice == "required" or isinstance(choice, dict)):
        raise UnsupportedOperation("local models cannot be forced to call a tool",
                                   param="tool_choice")
    fmt = (body.get("response_format") or {}).get("type", "text")
    if fmt != "text":
        raise UnsupportedOperation(f"response_format {fmt!r} is not supported by local models",
                                   param="response_format")
    if body.get("logprobs"):
        raise UnsupportedOperation("logprobs are not supported by local models",
                                   param="logprobs")


def _int_param(body: Body, key: str, default: int, low: int, high: int) -> int:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidRequest(f"{key} must be an integer from {low} to {high}", param=key)
    return value


def _float_param(body: Body, key: str, default: float, low: float, high: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidRequest(f"{key} must be a number from {low} to {high}", param=key)
    return float(value)


def _stops(body: Body) -> tuple[str, ...]:
    stop = body.get("stop")
    if stop is None:
        return ()
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        raise InvalidRequest("stop must be a string or a list of non-empty strings", param="stop")
    if len(stops) > MAX_STOP_SEQUENCES:
        raise InvalidRequest(f"at most {MAX_STOP_SEQUENCES} stop sequences", param="stop")
    return tuple(stops)


def _jobs(
    model: TextModel, prompts: list[list[int]], body: Body, *, param: str, per_prompt: int
) -> list[Job]:
    """Validate limits and sampling once, then one job per choice.

    ``prompts`` holds each prompt ``per_prompt`` times (the request's ``n``); the copies
    of one prompt get seeds seed, seed+1, ... so that seeded choices differ.
    """
    context = model.context_length
    longest = max(len(p) for p in prompts)
    if longest >= context:
        raise InvalidRequest(
            f"the prompt is {longest} tokens; model {model.manifest.name} has a context of "
            f"{context} tokens and needs room for at least one generated token",
            param=param, code="context_length_exceeded",
        )
    key = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    requested = body.get(key)
    if requested is not None:
        if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
            raise InvalidRequest(f"{key} must be a positive integer", param=key)
        if longest + requested > context:
            raise InvalidRequest(
                f"the prompt ({longest} tokens) plus {key} ({requested}) exceeds the "
                f"{context}-token context of model {model.manifest.name}; lower {key} to "
                f"at most {context - longest}",
                param=key, code="context_length_exceeded",
            )
    temperature = _float_param(body, "temperature", 1.0, 0.0, 2.0)
    top_p = _float_param(body, "top_p", 1.0, 0.0, 1.0)
    if top_p <= 0.0:
        raise InvalidRequest("top_p must be greater than 0", param="top_p")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise InvalidRequest("seed must be an integer", param="seed")
    stop = _stops(body)
    jobs = []
    for i, prompt in enumerate(prompts):
        budget = context - len(prompt)
        max_tokens = min(requested, budget) if requested is not None else budget
        row_seed = seed + i % per_prompt if seed is not None else None
        sampling = SamplingParams(temperature, top_p, row_seed)
        jobs.append(Job(i, prompt, max_tokens, sampling, stop, group=i // per_prompt))
    return jobs


StreamItem = tuple[int, str, str | None] | dict[str, int]


async def _stream(model: TextModel, jobs: list[Job]) -> AsyncIterator[StreamItem]:
    """(index, text, finish_reason or None) as tokens arrive; the usage dict last."""
    prompt_tokens = sum(len(j.prompt) for j in {j.group: j for j in jobs}.values())
    completion = 0
    gen = model.generate(jobs)
    try:
        async for index, event in gen:
            if isinstance(event, TextDelta):
                yield index, event.text, None
            elif isinstance(event, Finished):
                completion += event.completion_tokens
                yield index, event.text, event.reason
            elif isinstance(event, Failed):
                log.error("local generation failed: %s", type(event.error).__name__)
                raise UpstreamError("local generation failed", retryable=False)
    finally:
        await gen.aclose()
    yield {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
           "total_tokens": prompt_tokens + completion}


async def _collect(
    model: TextModel, jobs: list[Job]
) -> tuple[list[str], list[str | None], dict[str, int]]:
    texts = [""] * len(jobs)
    reasons: list[str | None] = [None] * len(jobs)
    usage: dict[str, int] = {}
    async for item in _stream(model, jobs):
        if isinstance(item, dict):
            usage = item
        else:
            index, text, finish = item
            texts[index] += text
            if finish is not None:
                reasons[index] = finish
    return texts, reasons, usage
