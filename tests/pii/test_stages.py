"""The three PII stages run for real (one warm analyzer worker) on canonical bodies."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from appliance.core.findings import PiiFindings, RedactionFindings
from appliance.errors import PermissionDenied
from appliance.pii.pool import AnalyzerPool
from appliance.pipeline.pii_detect import DETECTED, PiiDetect
from appliance.pipeline.pii_output import PiiOutput
from appliance.core.context import Principal
from appliance.pipeline.redact import REDACTED, Redact, RedactState
from appliance.testing.documents import archive
from tests.pii.conftest import make_ctx

Stages = tuple[PiiDetect, Redact, PiiOutput]

NAME = "John Smith"
EMAIL = "john.smith@example.com"
IBAN = "DE89 3704 0044 0532 0130 00"


def chat_body() -> dict[str, Any]:
    return {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You help with billing."},
            {"role": "user", "content": f"My name is {NAME}, mail {EMAIL}."},
            {"role": "user", "content": [
                {"type": "text", "text": f"Pay to {IBAN} please."},
                {"type": "image_url", "image_url": {"url": "https://example.com/x.png"}},
            ]},
            {"role": "assistant", "content": None, "tool_calls": [{
                "id": "c1", "type": "function",
                "function": {"name": "send", "arguments": json.dumps({"to": EMAIL, "n": 3})},
            }]},
            {"role": "tool", "tool_call_id": "c1", "content": f"sent to {EMAIL}"},
            {"role": "user", "content": ""},
        ],
        "tools": [{"type": "function", "function": {
            "name": "send", "description": f"Sends mail, e.g. to {EMAIL}",
            "parameters": {"type": "object", "properties": {
                "to": {"type": "string", "description": f"address like {EMAIL}"}}},
        }}],
    }


async def _redacted(stages: Stages, body: dict[str, Any], route: str = "chat.completions",
                    **obligations: Any) -> Any:
    detect, redact, _ = stages
    ctx = make_ctx(body, route, **obligations)
    v1 = await detect.run(ctx)
    v2 = await redact.run(ctx)
    return ctx, v1, v2


async def test_every_text_piece_is_masked(stages: Stages) -> None:
    ctx, v1, v2 = await _redacted(stages, chat_body())
    sent = json.dumps(ctx.body)
    for value in (NAME, EMAIL, IBAN):
        assert value not in sent
    msgs = ctx.body["messages"]
    assert msgs[1]["content"] == "My name is <PERSON_1>, mail <EMAIL_ADDRESS_1>."
    assert msgs[2]["content"][0]["text"] == "Pay to <IBAN_CODE_1> please."
    args = json.loads(msgs[3]["tool_calls"][0]["function"]["arguments"])
    assert args == {"to": "<EMAIL_ADDRESS_1>", "n": 3}
    assert msgs[4]["content"] == "sent to <EMAIL_ADDRESS_1>"
    assert "<EMAIL_ADDRESS_1>" in ctx.body["tools"][0]["function"]["description"]
    assert "<EMAIL_ADDRESS_1>" in json.dumps(ctx.body["tools"][0]["function"]["parameters"])
    assert isinstance(v1.findings, PiiFindings) and isinstance(v2.findings, RedactionFindings)
    assert v1.findings.counts["EMAIL_ADDRESS"] == 5
    assert "en" in v1.findings.languages
    assert v2.findings.masked == 7 and v2.findings.actions["PERSON"] == "mask"
    assert NAME not in repr(v1) + repr(v2)


@pytest.mark.parametrize(
    ("route", "body", "key"),
    [
        ("completions", {"model": "m", "prompt": f"Write to {EMAIL}"}, "prompt"),
        ("completions", {"model": "m", "prompt": [f"Write to {EMAIL}", "hi"]}, "prompt"),
        ("embeddings", {"model": "m", "input": f"Embed {EMAIL}"}, "input"),
        ("embeddings", {"model": "m", "input": [f"Embed {EMAIL}", [1, 2, 3]]}, "input"),
    ],
)
async def test_other_routes(stages: Stages, route: str, body: dict[str, Any], key: str) -> None:
    ctx, _, _ = await _redacted(stages, body, route)
    assert EMAIL not in json.dumps(ctx.body)
    assert "<EMAIL_ADDRESS_1>" in json.dumps(ctx.body[key])


async def test_actions_from_policy(stages: Stages) -> None:
    ctx, _, v2 = await _redacted(
        stages, chat_body(), pii_actions={"EMAIL_ADDRESS": "hash", "PERSON": "redact", "*": "allow"}
    )
    text = ctx.body["messages"][1]["content"]
    assert text.startswith("My name is <PERSON>, mail <EMAIL_ADDRESS#")
    assert IBAN in ctx.body["messages"][2]["content"][0]["text"]  # "*": allow
    assert isinstance(v2.findings, RedactionFindings)
    assert v2.findings.hashed == 5 and v2.findings.redacted == 1


async def test_block_names_type_not_value(stages: Stages, caplog: pytest.LogCaptureFixture) -> None:
    body = chat_body()
    original = copy.deepcopy(body)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(PermissionDenied) as err:
        await _redacted(stages, body, pii_actions={"IBAN_CODE": "block"})
    assert "IBAN_CODE" in err.value.message
    assert err.value.reasons == ("pii_blocked:IBAN_CODE",)
    assert IBAN not in str(err.value) and IBAN not in repr(err.value.reasons)
    assert body == original  # nothing half-rewritten
    assert IBAN not in caplog.text and NAME not in caplog.text


async def test_round_trip_whole_response(stages: Stages, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    ctx, _, _ = await _redacted(stages, chat_body())
    _, _, output = stages
    response = {
        "object": "chat.completion",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {
            "role": "assistant", "content": "Hello <PERSON_1>, I used <IBAN_CODE_1>.",
            "tool_calls": [{"id": "t", "type": "function", "function": {
                "name": "send", "arguments": json.dumps({"to": "<EMAIL_ADDRESS_1>"})}}],
        }}],
    }
    out = await output.screen(ctx, response)
    msg = out["choices"][0]["message"]
    assert msg["content"] == f"Hello {NAME}, I used {IBAN}."
    assert json.loads(msg["tool_calls"][0]["function"]["arguments"]) == {"to": EMAIL}
    assert NAME not in caplog.text and EMAIL not in caplog.text


async def test_no_restore_and_model_pii_is_screened(stages: Stages) -> None:
    ctx, _, _ = await _redacted(stages, chat_body(), restore_pii=False)
    _, _, output = stages
    response = {"object": "chat.completion", "choices": [{"index": 0, "message": {
        "role": "assistant", "content": "Hello <PERSON_1>, also mail mary.jones@example.org."}}]}
    out = await output.screen(ctx, response)
    content = out["choices"][0]["message"]["content"]
    assert NAME not in content and "mary.jones@example.org" not in content
    assert content.startswith("Hello <PERSON_1>, also mail <EMAIL_ADDRESS_")


async def test_redact_type_removed_from_answer_even_when_restoring(stages: Stages) -> None:
    ctx, _, _ = await _redacted(stages, {"model": "m", "messages": [
        {"role": "user", "content": "hi"}]}, pii_actions={"SECRET": "block"})
    _, _, output = stages
    response = {"object": "text_completion", "choices": [
        {"index": 0, "text": "use AKIAIOSFODNN7EXAMPLE to log in"}]}
    out = await output.screen(ctx, response)
    assert out["choices"][0]["text"] == "use <SECRET> to log in"


def _chunks(pieces: list[str], tool_pieces: list[str] | None = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"id": "c", "object": "chat.completion.chunk", "model": "m",
                                  "choices": [{"index": 0, "delta": {"role": "assistant"}}]}]
    for p in pieces:
        out.append({"id": "c", "object": "chat.completion.chunk", "model": "m",
                    "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]})
    for p in tool_pieces or []:
        out.append({"id": "c", "object": "chat.completion.chunk", "model": "m", "choices": [
            {"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": p}}]},
             "finish_reason": None}]})
    out.append({"id": "c", "object": "chat.completion.chunk", "model": "m",
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return out


async def _aiter(items: list[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    for i in items:
        yield i


def _joined(chunks: list[dict[str, Any]]) -> tuple[str, str]:
    text, args = "", ""
    for c in chunks:
        for ch in c["choices"]:
            d = ch.get("delta") or {}
            text += d.get("content") or ""
            for t in d.get("tool_calls") or []:
                args += t["function"].get("arguments") or ""
    return text, args


ANSWER = "Hi <PERSON_1>! Your IBAN <IBAN_CODE_1> is stored for <PERSON_1>."
TOOL_ARGS = json.dumps({"to": "<EMAIL_ADDRESS_1>", "name": "<PERSON_1>"})


async def test_stream_restores_at_every_split(stages: Stages) -> None:
    ctx, _, _ = await _redacted(stages, chat_body())
    assert isinstance(ctx.get(REDACTED), RedactState)
    _, _, output = stages
    expected = ANSWER.replace("<PERSON_1>", NAME).replace("<IBAN_CODE_1>", IBAN)
    for k in range(len(ANSWER) + 1):
        j = k % (len(TOOL_ARGS) + 1)
        chunks = _chunks([ANSWER[:k], ANSWER[k:]], [TOOL_ARGS[:j], TOOL_ARGS[j:]])
        got = [c async for c in output.screen_stream(ctx, _aiter(chunks))]
        text, args = _joined(got)
        assert text == expected, k
        assert json.loads(args) == {"to": EMAIL, "name": NAME}


async def test_stream_char_by_char_with_screening(stages: Stages) -> None:
    ctx, _, _ = await _redacted(stages, chat_body(), pii_actions={"SECRET": "redact"})
    _, _, output = stages
    answer = ANSWER + " The admin key is AKIAIOSFODNN7EXAMPLE, do not share it with anyone."
    got = [c async for c in output.screen_stream(ctx, _aiter(_chunks(list(answer))))]
    text, _ = _joined(got)
    assert "AKIAIOSFODNN7EXAMPLE" not in text
    assert text.startswith(f"Hi {NAME}! Your IBAN {IBAN}")
    assert "The admin key is <SECRET>, do not share" in text
    # Text flows before the end of the stream: the first content arrives early.
    first = next(i for i, c in enumerate(got) if _joined([c])[0])
    assert first < len(got) - 5


async def test_a_system_prompt_sent_again_is_not_analysed_again(
    stages: Stages, analyzer_pool: AnalyzerPool
) -> None:
    """The 8 KB system prompt and the tool definitions of a chat come back in every
    request: after the first, only the new user turn goes to a worker, and another
    tenant's request with the same prompt does not use the first tenant's findings."""
    detect, _, _ = stages
    system = archive(8_000, seed=31).text

    def body(question: str) -> dict[str, Any]:
        b = chat_body()
        b["messages"] = [{"role": "system", "content": system}, {"role": "user", "content": question}]
        return b

    async def analysed(question: str, tenant: str) -> tuple[int, Any]:
        ctx = make_ctx(body(question))
        ctx.principal = Principal(key_id="k1", tenant=tenant, user="u1")
        before = analyzer_pool.stats().pieces_analysed
        await detect.run(ctx)
        detected = ctx.get(DETECTED)
        assert detected is not None
        return analyzer_pool.stats().pieces_analysed - before, detected.findings

    first, found = await analysed("Has Anna Schmidt paid invoice 4711?", "t-cache")
    again, found_again = await analysed("And Jonas Becker, invoice 4712?", "t-cache")
    assert first >= 2 and again == 1
    assert found_again[0] == found[0] and found[0]
    other, _ = await analysed("Has Anna Schmidt paid invoice 4711?", "t-other")
    assert other == first
