"""The analyzer pool: concurrent requests share batches, and failures stay contained."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from appliance.errors import StageFailed
from appliance.config.pii import PiiConfig
from appliance.pii.engine import analyze_texts
from appliance.pii.pool import AnalyzerPool

TEXTS = [
    "Call John Smith on +44 20 7946 0958 tomorrow.",
    "Summarise the quarterly report in one line.",
    "Meine IBAN ist DE89 3704 0044 0532 0130 00, Grüße von Anna Schmidt aus Köln.",
    "Send it to maria.garcia@example.com and cc the Madrid office.",
    "",
    "My card 4111 1111 1111 1111 expires 04/28; ship to 221B Baker Street, London.",
]
LANGS = ["en", "en", "de", "en", "en", "en"]


def test_concurrent_requests_batched_get_their_own_findings(analyzer) -> None:
    """Twelve callers at once through one worker: batched together, each answer is the
    one an in-process analysis of its own texts gives."""
    requests = [(TEXTS[i % len(TEXTS):] + TEXTS[: i % len(TEXTS)], LANGS[i % len(LANGS):]
                 + LANGS[: i % len(LANGS)]) for i in range(12)]
    expected = [analyze_texts(analyzer, t, lang, frozenset(PiiConfig().ignore_entities))
                for t, lang in requests]

    async def main() -> list[list[list[object]]]:
        pool = AnalyzerPool(PiiConfig(workers=1))
        await pool.start()
        try:
            return await asyncio.gather(*(pool.analyze(t, lang) for t, lang in requests))
        finally:
            await pool.aclose()

    got = asyncio.run(main())
    assert got == expected
    assert any(f for per_request in got for f in per_request)


def test_small_batches_split_by_characters() -> None:
    """A batch limit below one request's size still serves every request (one per batch)."""
    async def main() -> list[list[list[object]]]:
        pool = AnalyzerPool(PiiConfig(workers=1, batch_chars=10))
        await pool.start()
        try:
            return await asyncio.gather(*(pool.analyze([t], ["en"]) for t in TEXTS[:4]))
        finally:
            await pool.aclose()

    got = asyncio.run(main())
    assert [bool(r[0]) for r in got] == [True, False, True, True]


def test_a_killed_worker_fails_closed_and_is_replaced() -> None:
    async def main() -> None:
        pool = AnalyzerPool(PiiConfig(workers=1))
        await pool.start()
        try:
            (pid,) = pool.pids()
            os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(0.2)
            # The dead worker is noticed when it is handed a batch: replaced, not used.
            findings = await asyncio.wait_for(pool.analyze([TEXTS[0]], ["en"]), 60)
            assert findings[0]
            assert pool.pids() and pool.pids() != [pid]
        finally:
            await pool.aclose()

    asyncio.run(main())


def test_a_timed_out_batch_fails_every_caller_in_it() -> None:
    async def main() -> None:
        pool = AnalyzerPool(PiiConfig(workers=1, timeout_s=0.0005))
        await pool.start()
        try:
            results = await asyncio.gather(
                *(pool.analyze([TEXTS[5] * 20], ["en"]) for _ in range(3)),
                return_exceptions=True,
            )
            assert all(isinstance(r, StageFailed) for r in results), results
            assert "timed out" in str(results[0])
        finally:
            await pool.aclose()

    asyncio.run(main())


def test_analyze_before_start_fails_closed() -> None:
    async def main() -> None:
        with pytest.raises(StageFailed):
            await AnalyzerPool(PiiConfig(workers=1)).analyze(["hello John"], ["en"])

    asyncio.run(main())
