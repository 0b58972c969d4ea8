"""The ONNX generation path against the PyTorch model it was exported from, and its API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from appliance.config import LocalProviderConfig
from appliance.errors import InvalidRequest, UnsupportedOperation
from appliance.providers.local import LocalProvider, create
from appliance.providers.local.engine import Job, TextModel
from appliance.providers.local.sampling import SamplingParams
from appliance.providers.local.scheduler import Finished
from appliance.testing.models import TestModels

PROMPTS = [
    "Hello there, how are",
    "The capital of France is",
    "x",
    "Guten Tag! Wie geht es Ihnen? Mein Name ist Anna und ich wohne in",
]


@pytest.fixture
async def provider(test_models: TestModels) -> AsyncIterator[LocalProvider]:
    config = LocalProviderConfig(kind="local", models_dir=test_models.models_dir, preload=False)
    p = create("local", config, None)
    yield p
    await p.aclose()


async def _model(provider: LocalProvider) -> TextModel:
    model = await provider._text_model({"model": "local-chat"})
    return model


def chat_body(content: str, **kw: Any) -> dict[str, Any]:
    return {"model": "local-chat", "messages": [{"role": "user", "content": content}], **kw}


async def onnx_greedy(model: TextModel, prompt: list[int], n: int) -> tuple[int, ...]:
    job = Job(0, prompt, n, SamplingParams(temperature=0.0), ())
    async for _, event in model.generate([job]):
        if isinstance(event, Finished):
            return event.token_ids
    raise AssertionError("no Finished event")


async def test_greedy_tokens_match_pytorch(provider: LocalProvider, test_models: TestModels) -> None:
    import torch
    from transformers import LlamaForCausalLM

    reference = LlamaForCausalLM.from_pretrained(str(test_models.chat_checkpoint)).eval()
    model = await _model(provider)
    for text in PROMPTS:
        prompt = model.completion_prompt(text)
        with torch.no_grad():
            out = reference.generate(
                torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                max_new_tokens=40, do_sample=False, pad_token_id=0,
            )
        expected = tuple(out[0, len(prompt):].tolist())
        eos = model.lm.eos_ids | model.stop_token_ids
        # PyTorch keeps the EOS it stopped on; the engine reports generated tokens only.
        expected = tuple(t for t in expected if t not in eos)
        got = await onnx_greedy(model, prompt, 40)
        assert got == expected[: len(got)] and len(got) == len(expected), text


async def test_concurrent_requests_are_batched_and_match_single(provider: LocalProvider) -> None:
    model = await _model(provider)
    prompts = [model.completion_prompt(t) for t in PROMPTS * 2]
    alone = [await onnx_greedy(model, p, 24) for p in prompts]
    together = await asyncio.gather(*(onnx_greedy(model, p, 24) for p in prompts))
    assert list(together) == alone
    assert model.scheduler.peak_batch >= 4


async def test_chat_completion_shape_and_usage(provider: LocalProvider) -> None:
    model = await _model(provider)
    body = chat_body("Write a short poem about the sea.", max_tokens=12, temperature=0)
    out = await provider.chat(body)
    assert out["object"] == "chat.completion"
    choice = out["choices"][0]
    assert choice["message"]["role"] == "assistant"
    prompt = model.chat_prompt(body["messages"])
    assert out["usage"]["prompt_tokens"] == len(prompt)
    assert out["usage"]["completion_tokens"] <= 12
    assert out["usage"]["total_tokens"] == len(prompt) + out["usage"]["completion_tokens"]
    if choice["finish_reason"] == "length":
        assert out["usage"]["completion_tokens"] == 12
    tokens = await onnx_greedy(model, prompt, 12)
    assert choice["message"]["content"] == model.tokenizer.decode(list(tokens))


async def test_stream_equals_non_stream_and_ends_with_usage(provider: LocalProvider) -> None:
    body = chat_body("Translate good morning into German.", max_tokens=30, temperature=0)
    whole = await provider.chat(body)
    chunks = [c async for c in provider.stream_chat(body)]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    pieces = [c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]]
    assert len([p for p in pieces if p]) > 3  # token by token, not one lump
    assert "".join(pieces) == whole["choices"][0]["message"]["content"]
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == whole["choices"][0]["finish_reason"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == whole["usage"]


@pytest.mark.parametrize("seed", [1, 7])
async def test_seeded_sampling_is_reproducible(provider: LocalProvider, seed: int) -> None:
    body = chat_body("Tell me a story.", max_tokens=20, temperature=1.0, top_p=0.9, seed=seed)
    a, b = await asyncio.gather(provider.chat(body), provider.chat(body))
    c = await provider.chat(body)
    texts = {r["choices"][0]["message"]["content"] for r in (a, b, c)}
    assert len(texts) == 1
    other = await provider.chat({**body, "seed": seed + 100})
    greedy = await provider.chat({**body, "temperature": 0})
    assert {other["choices"][0]["message"]["content"],
            greedy["choices"][0]["message"]["content"]} != texts


async def test_stop_sequence_cuts_answer_before_it(provider: LocalProvider) -> None:
    body = {"model": "local-chat", "prompt": "The quick brown fox", "max_tokens": 40,
            "temperature": 0}
    full = (await provider.completions(body))["choices"][0]["text"]
    assert len(full) > 12
    stop = full[5:8]
    first = full.find(stop)
    cut = await provider.completions({**body, "stop": [stop, "\u2603never"]})
    assert cut["choices"][0]["text"] == full[:first]
    assert cut["choices"][0]["finish_reason"] == "stop"
    streamed = [c async for c in provider.stream_completions({**body, "stop": stop})]
    text = "".join(c["choices"][0]["text"] for c in streamed if c["choices"])
    assert text == full[:first]


async def test_completions_list_prompt_and_n(provider: LocalProvider) -> None:
    model = await _model(provider)
    prompts = ["The sea", "The sea"]  # identical prompts still count twice; n copies once
    out = await provider.completions(
        {"model": "local-chat", "prompt": prompts, "n": 2, "max_tokens": 3, "seed": 3}
    )
    assert [c["index"] for c in out["choices"]] == [0, 1, 2, 3]
    assert out["usage"]["prompt_tokens"] == 2 * len(model.completion_prompt("The sea"))
    assert out["usage"]["completion_tokens"] <= 12
    texts = [c["text"] for c in out["choices"]]
    assert texts[0] == texts[2] and texts[1] == texts[3]  # seed, seed+1 for each prompt


LIMITS: list[tuple[dict[str, Any], str]] = [
    ({"max_tokens": 5000}, "context_length_exceeded"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_completion_tokens": -1}, "max_completion_tokens"),
    ({"temperature": 3}, "temperature"),
    ({"top_p": 0}, "top_p"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"n": 99}, "n"),
    ({"seed": "x"}, "seed"),
]


@pytest.mark.parametrize(("extra", "expected"), LIMITS)
async def test_limits_are_invalid_requests(
    provider: LocalProvider, extra: dict[str, Any], expected: str
) -> None:
    with pytest.raises(InvalidRequest) as info:
        await provider.chat(chat_body("hi", **extra))
    assert info.value.status == 400
    assert expected in (info.value.code or "", info.value.param or "")


async def test_prompt_longer_than_context_is_refused(provider: LocalProvider) -> None:
    with pytest.raises(InvalidRequest) as info:
        await provider.chat(chat_body("word " * 3000))
    assert info.value.code == "context_length_exceeded"
    assert "2048" in info.value.message and "word" not in info.value.message


UNSUPPORTED: list[dict[str, Any]] = [
    {"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "required"},
    {"response_format": {"type": "json_object"}},
    {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
]


@pytest.mark.parametrize("extra", UNSUPPORTED)
async def test_unsupported_features_are_refused(
    provider: LocalProvider, extra: dict[str, Any]
) -> None:
    with pytest.raises(UnsupportedOperation):
        await provider.chat(chat_body("hi", **extra))


async def test_tools_without_required_choice_are_ignored(provider: LocalProvider) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    out = await provider.chat(chat_body("hi", tools=tools, max_tokens=3))
    assert out["choices"][0]["message"]["content"] is not None


async def test_closing_a_stream_early_cancels_generation(provider: LocalProvider) -> None:
    stream = provider.stream_chat(chat_body("hi", max_tokens=2000, temperature=0))
    async for chunk in stream:
        if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
            break
    await stream.aclose()  # type: ignore[attr-defined]
    # The scheduler is free again: a short request completes promptly.
    out = await asyncio.wait_for(provider.chat(chat_body("hi", max_tokens=2)), timeout=10)
    assert out["usage"]["completion_tokens"] <= 2


async def test_embeddings_api(provider: LocalProvider) -> None:
    out = await provider.embeddings({"model": "local-embed", "input": ["hello", "world"]})
    assert [d["index"] for d in out["data"]] == [0, 1]
    assert len(out["data"][0]["embedding"]) == 384
    assert out["usage"]["prompt_tokens"] > 0
    single = await provider.embeddings({"model": "local-embed", "input": "hello"})
    assert len(single["data"]) == 1
    with pytest.raises(InvalidRequest) as info:
        await provider.embeddings({"model": "local-embed", "input": "word " * 400})
    assert info.value.code == "context_length_exceeded"
    with pytest.raises(UnsupportedOperation):
        await provider.embeddings({"model": "local-chat", "input": "hello"})
    with pytest.raises(UnsupportedOperation):
        await provider.chat({"model": "local-embed", "messages": [{"role": "user", "content": "x"}]})
