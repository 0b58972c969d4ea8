"""The real openai SDK's ``client.files`` and ``client.batches`` against the appliance: a
batch's output lines are what the same requests return one by one."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from openai import AsyncOpenAI, BadRequestError, NotFoundError

from appliance.testing.fakes import FakeOpenAI
from appliance.testing.harness import merge
from tests.conftest import Running, StartAppliance


@pytest.fixture(params=["provider", "local"])
async def running(
    request: pytest.FixtureRequest, start_appliance: StartAppliance, openai_models: dict[str, Any]
) -> Running:
    """Batches sent on in the provider's own batch API (the fake OpenAI has one), and run
    line by line in the appliance."""
    batch = {"poll_interval_s": 0.05, "provider_batches": request.param == "provider"}
    return await start_appliance(merge(openai_models, {"batch": batch}))


@pytest.fixture
async def client(running: Running) -> Any:
    async with AsyncOpenAI(base_url=running.base_url, api_key=running.key, max_retries=0) as c:
        yield c


def _jsonl(url: str, bodies: list[dict[str, Any]]) -> bytes:
    return b"".join(
        json.dumps({"custom_id": f"req-{i}", "method": "POST", "url": url, "body": b}).encode()
        + b"\n"
        for i, b in enumerate(bodies)
    )


async def _finished(client: AsyncOpenAI, batch_id: str) -> Any:
    for _ in range(600):
        batch = await client.batches.retrieve(batch_id)
        if batch.status in ("completed", "failed", "cancelled", "expired"):
            return batch
        await asyncio.sleep(0.05)
    raise AssertionError("the batch did not finish")


async def _lines(client: AsyncOpenAI, file_id: str | None) -> list[dict[str, Any]]:
    assert file_id is not None
    content = await client.files.content(file_id)
    return [json.loads(line) for line in content.text.splitlines()]


async def test_chat_batch_matches_requests_one_by_one(
    client: AsyncOpenAI, running: Running, fake_openai: FakeOpenAI
) -> None:
    bodies = [
        {"model": "gpt-4o", "messages": [{"role": "user", "content": f"question {i}"}]}
        for i in range(5)
    ] + [{"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]}]
    upload = await client.files.create(
        file=("in.jsonl", _jsonl("/v1/chat/completions", bodies)), purpose="batch"
    )
    assert upload.purpose == "batch" and upload.bytes > 0
    batch = await client.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h",
        metadata={"job": "nightly"},
    )
    assert batch.status in ("validating", "in_progress")
    batch = await _finished(client, batch.id)
    assert batch.status == "completed", batch
    assert batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.completed,
            batch.request_counts.failed) == (6, 5, 1)
    out = await _lines(client, batch.output_file_id)
    assert [o["custom_id"] for o in out] == [f"req-{i}" for i in range(5)]
    for line, body in zip(out, bodies, strict=False):
        one = await client.chat.completions.with_raw_response.create(**body)
        assert line["response"]["status_code"] == 200
        assert line["response"]["body"] == one.http_response.json()
        assert line["response"]["request_id"].startswith("req_")
    errors = await _lines(client, batch.error_file_id)
    assert errors[0]["custom_id"] == "req-5"
    assert errors[0]["response"]["status_code"] == 404
    assert errors[0]["response"]["body"]["error"]["code"] == "model_not_found"
    sent = fake_openai.batch_api.batches
    if running.config.batch.provider_batches:  # one provider batch of the five good lines
        (upstream,) = sent.values()
        assert upstream["request_counts"]["total"] == 5
        lines = fake_openai.batch_api.files[upstream["input_file_id"]].splitlines()
        assert [json.loads(x)["custom_id"] for x in lines] == ["0", "1", "2", "3", "4"]
    else:
        assert not sent


async def test_responses_and_embeddings_batches(client: AsyncOpenAI) -> None:
    for url, body, check in (
        ("/v1/responses", {"model": "gpt-4o", "input": "batched hello"},
         lambda b: b["output"][0]["content"][0]["text"] == "echo: batched hello"),
        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": ["a", "b"]},
         lambda b: len(b["data"]) == 2),
    ):
        f = await client.files.create(file=("x.jsonl", _jsonl(url, [body])), purpose="batch")
        batch = await _finished(client, (await client.batches.create(
            input_file_id=f.id, endpoint=url, completion_window="24h")).id)  # type: ignore[arg-type]
        assert batch.status == "completed"
        (line,) = await _lines(client, batch.output_file_id)
        assert check(line["response"]["body"]), line


async def test_invalid_input_file_fails_the_batch(client: AsyncOpenAI) -> None:
    bad = b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {}}\nnot json\n'
    f = await client.files.create(file=("bad.jsonl", bad), purpose="batch")
    batch = await client.batches.create(
        input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.status == "failed"
    assert batch.errors is not None and batch.errors.data[0].line == 2
    with pytest.raises(BadRequestError):
        await client.batches.create(input_file_id=f.id, endpoint="/v1/nope",  # type: ignore[arg-type]
                                    completion_window="24h")


async def test_cancel_a_running_batch(
    client: AsyncOpenAI, fake_openai: FakeOpenAI, running: Running
) -> None:
    if running.config.batch.provider_batches:
        pytest.skip("the fake provider answers its batches at once: nothing to cancel")
    fake_openai.delay_s = 0.2
    bodies = [{"model": "gpt-4o", "messages": [{"role": "user", "content": f"slow {i}"}]}
              for i in range(40)]
    f = await client.files.create(file=("slow.jsonl", _jsonl("/v1/chat/completions", bodies)),
                                  purpose="batch")
    batch = await client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                        completion_window="24h")
    await asyncio.sleep(0.5)
    cancelling = await client.batches.cancel(batch.id)
    assert cancelling.status in ("cancelling", "cancelled")
    done = await _finished(client, batch.id)
    assert done.status == "cancelled"
    assert done.request_counts is not None and done.request_counts.completed < 40
    assert len(fake_openai.requests) < 40


async def test_files_are_per_tenant(client: AsyncOpenAI, running: Running) -> None:
    f = await client.files.create(file=("mine.jsonl", b"{}\n"), purpose="user_data")
    assert any(x.id == f.id for x in (await client.files.list()).data)
    other = running.new_key(tenant="globex", user="eve")
    async with AsyncOpenAI(base_url=running.base_url, api_key=other, max_retries=0) as c:
        with pytest.raises(NotFoundError):
            await c.files.retrieve(f.id)
        with pytest.raises(NotFoundError):
            await c.files.content(f.id)
        assert all(x.id != f.id for x in (await c.files.list()).data)
    assert (await client.files.delete(f.id)).deleted
    with pytest.raises(NotFoundError):
        await client.files.retrieve(f.id)
    assert b"{}" not in (running.data_dir / "state.db").read_bytes()[-4096:]


async def test_a_cancel_written_by_another_worker_is_seen(
    client: AsyncOpenAI, running: Running, fake_openai: FakeOpenAI
) -> None:
    from appliance.audit.sealed_store import SealedStore

    if running.config.batch.provider_batches:
        pytest.skip("the fake provider answers its batches at once: nothing to cancel")
    fake_openai.delay_s = 0.1
    bodies = [{"model": "gpt-4o", "messages": [{"role": "user", "content": f"n {i}"}]}
              for i in range(60)]
    f = await client.files.create(file=("n.jsonl", _jsonl("/v1/chat/completions", bodies)),
                                  purpose="batch")
    batch = await client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                        completion_window="24h")
    await asyncio.sleep(0.3)
    # Another worker process answers the cancel: it only writes the stored status.
    store = SealedStore.open(running.config)
    try:
        doc = store.get_json("batch", batch.id, "acme")
        doc.update(status="cancelling", cancelling_at=1)
        store.put_json("batch", batch.id, "acme", doc, {"status": "cancelling"})
    finally:
        store.close()
    done = await _finished(client, batch.id)
    assert done.status == "cancelled"
    assert done.request_counts is not None and done.request_counts.completed < 60
