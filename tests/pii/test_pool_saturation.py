"""The analyzer pool under saturation: a burst against a cold cache does each piece once,
a request after the burst is not stuck behind copies of it, and a worker starved of CPU
by a busy machine is slow, not hung (it is not killed; a stopped one is)."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest
import uvloop

from appliance.config.pii import PiiConfig
from appliance.errors import StageFailed
from appliance.pii.pool import AnalyzerPool
from appliance.testing.documents import archive
from appliance.testing.prompt_shapes import SYSTEM, short_prompt

BURST = 32


def _run_uvloop(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run under uvloop, as ``appliance serve`` does."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def test_a_burst_with_one_system_prompt_analyses_it_once_and_the_next_request_is_prompt() -> None:
    async def main() -> tuple[list[list[list[Any]]], float, int, int]:
        pool = AnalyzerPool(PiiConfig(workers=2))
        await pool.start()
        try:
            burst = [asyncio.ensure_future(pool.analyze([SYSTEM, short_prompt(i)], ["en", "en"],
                                                        tenant="t1"))
                     for i in range(BURST)]
            await asyncio.sleep(0)  # every request of the burst is queued
            began = time.perf_counter()
            (late,) = await pool.analyze(["Please call Maria Garcia tomorrow."], ["en"],
                                         tenant="t2")
            waited = time.perf_counter() - began
            found = await asyncio.gather(*burst)
            assert any(f.entity_type == "PERSON" for f in late)
            stats = pool.stats()
            return found, waited, stats.chars_analysed, stats.workers_replaced
        finally:
            await pool.aclose()

    found, waited, chars, replaced = _run_uvloop(main())
    # Every caller got the system prompt's findings, and its own turn's.
    assert all(per_request[0] == found[0][0] for per_request in found)
    for i, per_request in enumerate(found):
        turn = short_prompt(i)
        assert any(turn[f.start:f.end].endswith("@example.com") for f in per_request[1]), i
    shorts = sum(len(short_prompt(i)) for i in range(BURST))
    # The system prompt was analysed once (its pieces overlap a little), not once per request.
    assert chars < 2 * len(SYSTEM) + shorts + 200, (chars, len(SYSTEM), shorts)
    assert replaced == 0
    # Printed for the report; bounded loosely because the machine is shared.
    print(f"late request waited {waited:.2f} s; {chars} characters analysed")
    assert waited < 60


def test_a_caller_that_gives_up_does_not_fail_the_one_sharing_its_piece() -> None:
    doc = archive(20_000, seed=3).text

    async def main() -> None:
        pool = AnalyzerPool(PiiConfig(workers=1))
        await pool.start()
        try:
            busy = asyncio.ensure_future(pool.analyze([doc], ["en"]))  # occupies the worker
            await asyncio.sleep(0)
            first = asyncio.ensure_future(pool.analyze([SYSTEM], ["en"], tenant="t"))
            second = asyncio.ensure_future(pool.analyze([SYSTEM], ["en"], tenant="t"))
            await asyncio.sleep(0)
            first.cancel()
            (findings,) = await second
            await busy
            assert first.cancelled() and findings
            # A later call from the same tenant is answered from the cache.
            before = pool.stats().chars_analysed
            assert (await pool.analyze([SYSTEM], ["en"], tenant="t"))[0] == findings
            assert pool.stats().chars_analysed == before
        finally:
            await pool.aclose()

    _run_uvloop(main())


@pytest.fixture
def cpu0_hog() -> Iterator[None]:
    """A busy loop pinned to CPU 0 (the test pins the worker there too, at nice 19)."""
    hog = subprocess.Popen([sys.executable, "-c",
                            "import os\nos.sched_setaffinity(0, {0})\nwhile True: pass"])
    try:
        yield
    finally:
        hog.kill()
        hog.wait()


@pytest.mark.skipif(not os.path.exists("/proc/self/schedstat"), reason="needs /proc CPU times")
def test_a_worker_starved_of_cpu_is_slow_not_hung(cpu0_hog: None,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    text = "Call John Smith on +44 20 7946 0958 tomorrow. " * 10

    async def main() -> tuple[float, int]:
        # A limit of 0.5 s: far more CPU than the analysis needs, far less than it takes
        # on the clock while a busy loop at normal priority shares the worker's CPU.
        pool = AnalyzerPool(PiiConfig(workers=1, timeout_s=0.5, timeout_per_char_us=0))
        await pool.start()
        try:
            (pid,) = pool.pids()
            os.sched_setaffinity(pid, {0})
            os.setpriority(os.PRIO_PROCESS, pid, 19)
            began = time.perf_counter()
            (found,) = await pool.analyze([text], ["en"])
            took = time.perf_counter() - began
            assert any(f.entity_type == "PHONE_NUMBER" for f in found)
            return took, pool.stats().workers_replaced
        finally:
            await pool.aclose()

    with caplog.at_level(logging.WARNING, logger="appliance.pii.pool"):
        took, replaced = _run_uvloop(main())
    print(f"starved analysis took {took:.2f} s on the clock")
    assert took > 0.5, "the busy loop did not starve the worker: the test proves nothing"
    assert replaced == 0
    assert "timed out" not in caplog.text


def test_a_worker_that_does_not_run_at_all_is_hung(caplog: pytest.LogCaptureFixture) -> None:
    doc = archive(60_000, seed=5).text

    async def main() -> float:
        pool = AnalyzerPool(PiiConfig(workers=1, timeout_s=120))
        await pool.start()
        try:
            (pid,) = pool.pids()
            task = asyncio.ensure_future(pool.analyze([doc], ["en"]))
            await asyncio.sleep(0.3)
            os.kill(pid, signal.SIGSTOP)
            began = time.perf_counter()
            with pytest.raises(StageFailed, match="timed out"):
                await asyncio.wait_for(task, 30)
            return time.perf_counter() - began
        finally:
            await asyncio.sleep(0.5)  # the replacement task logs first
            await pool.aclose()

    with caplog.at_level(logging.WARNING, logger="appliance.pii.pool"):
        took = _run_uvloop(main())
    assert took < 30
    assert re.search(r"PII analyzer worker \d+ did not run for 5 s on a batch of \d+ texts?",
                     caplog.text), caplog.text
