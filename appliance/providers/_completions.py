"""Legacy ``/v1/completions`` served by a chat model, for providers that only offer chat.

Each prompt becomes one user message; answers come back as ``text_completion`` objects
(or chunks) so clients of the legacy route see the shape they expect.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from appliance.errors import InvalidRequest, UnsupportedOperation

Body = dict[str, Any]

_PASSED_ON = ("model", "max_tokens", "temperature", "top_p", "stop", "user", "seed")


def _prompts(body: Body) -> list[str]:
    prompt = body.get("prompt", "")
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list) and all(isinstance(p, str) for p in prompt):
        return list(prompt) or [""]
    raise UnsupportedOperation(
        "token-id prompts are not supported by this provider", param="prompt"
    )


def _chat_body(body: Body, prompt: str) -> Body:
    out = {k: body[k] for k in _PASSED_ON if body.get(k) is not None}
    out["messages"] = [{"role": "user", "content": prompt}]
    return out


async def chat_as_completion(chat: Callable[[Body], Awaitable[Body]], body: Body) -> Body:
    if int(body.get("n") or 1) != 1:
        raise UnsupportedOperation("n must be 1 for this provider's completions", param="n")
    prompts = _prompts(body)
    answers = await asyncio.gather(*(chat(_chat_body(body, p)) for p in prompts))
    choices = []
    prompt_tokens = completion_tokens = 0
    for index, (prompt, answer) in enumerate(zip(prompts, answers, strict=True)):
        choice = (answer.get("choices") or [{}])[0]
        text = (choice.get("message") or {}).get("content") or ""
        choices.append(
            {
                "text": (prompt + text) if body.get("echo") else text,
                "index": index,
                "logprobs": None,
                "finish_reason": choice.get("finish_reason") or "stop",
            }
        )
        usage = answer.get("usage") or {}
        prompt_tokens += int(usage.get("prompt_tokens") or 0)
        completion_tokens += int(usage.get("completion_tokens") or 0)
    return {
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": body.get("model", ""),
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


async def stream_chat_as_completion(
    stream_chat: Callable[[Body], AsyncIterator[Body]], body: Body
) -> AsyncIterator[Body]:
    prompts = _prompts(body)
    if len(prompts) != 1 or int(body.get("n") or 1) != 1:
        raise InvalidRequest(
            "streaming completions take exactly one prompt and n=1", param="prompt"
        )
    ident = f"cmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    if body.get("echo"):
        yield _text_chunk(ident, created, body, prompts[0], None)
    async for chunk in stream_chat(_chat_body(body, prompts[0])):
        if chunk.get("usage") and not chunk.get("choices"):
            yield {
                "id": ident,
                "object": "text_completion",
                "created": created,
                "model": body.get("model", ""),
                "choices": [],
                "usage": chunk["usage"],
            }
            continue
        for choice in chunk.get("choices") or []:
            text = (choice.get("delta") or {}).get("content") or ""
            if text or choice.get("finish_reason"):
                yield _text_chunk(ident, created, body, text, choice.get("finish_reason"))


def _text_chunk(ident: str, created: int, body: Body, text: str, finish: str | None) -> Body:
    return {
        "id": ident,
        "object": "text_completion",
        "created": created,
        "model": body.get("model", ""),
        "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}],
    }
