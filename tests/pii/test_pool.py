"""The analyzer pool: concurrent requests share batches, and failures stay contained."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
from pathlib import Path

import pytest

from appliance.errors import StageFailed
from appliance.config.pii import PiiConfig
from appliance.pii.engine import analyze_texts
from appliance.pii.findings import Finding
from appliance.pii.pool import AnalyzerPool
from appliance.pii.revision import analyzer_revision
from appliance.testing.documents import archive

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

    async def main() -> list[list[list[Finding]]]:
        pool = AnalyzerPool(PiiConfig(workers=1))
        await pool.start()
        try:
            return list(await asyncio.gather(*(pool.analyze(t, lang) for t, lang in requests)))
        finally:
            await pool.aclose()

    def spans(found: list[list[list[Finding]]]) -> list[list[list[tuple[object, ...]]]]:
        # Presidio keeps one of two equal results (same span, type and score) in set
        # order, which differs between processes: the recognizer's name is not compared.
        return [[[(f.entity_type, f.start, f.end, f.score) for f in per_text]
                 for per_text in per_request] for per_request in found]

    got = asyncio.run(main())
    assert spans(got) == spans(expected)
    assert any(f for per_request in got for f in per_request)


def test_small_batches_split_by_characters() -> None:
    """A batch limit below one request's size still serves every request (one per batch)."""
    async def main() -> list[list[list[Finding]]]:
        pool = AnalyzerPool(PiiConfig(workers=1, batch_chars=10))
        await pool.start()
        try:
            return list(await asyncio.gather(*(pool.analyze([t], ["en"]) for t in TEXTS[:4])))
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
        pool = AnalyzerPool(PiiConfig(workers=1, timeout_s=0.0005, timeout_per_char_us=0))
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


def test_a_worker_that_dies_says_why_and_nothing_of_the_text(caplog: pytest.LogCaptureFixture) -> None:
    doc = archive(120_000, seed=21)

    async def main() -> None:
        pool = AnalyzerPool(PiiConfig(workers=1))
        await pool.start()
        try:
            (pid,) = pool.pids()
            task = asyncio.ensure_future(pool.analyze([doc.text], ["en"]))
            await asyncio.sleep(0.5)
            os.kill(pid, signal.SIGKILL)
            with pytest.raises(StageFailed, match="PII analysis failed"):
                await task
            for _ in range(600):  # the replacement is forked from the template
                if pool.pids() and pool.pids() != [pid]:
                    break
                await asyncio.sleep(0.1)
            assert (await pool.analyze([TEXTS[0]], ["en"]))[0]
            assert pool.stats().workers_replaced == 1
        finally:
            await pool.aclose()

    with caplog.at_level(logging.WARNING, logger="appliance.pii.pool"):
        asyncio.run(main())
    assert re.search(r"PII analyzer worker \d+ died while analysing a batch of \d+ texts?, \d+ "
                     r"characters: killed by signal SIGKILL", caplog.text), caplog.text
    values = [doc.text[p.start:p.end] for p in doc.planted]
    assert not any(v in caplog.text for v in values)


def test_a_timed_out_worker_is_killed_and_the_log_says_after_how_long(
        caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        pool = AnalyzerPool(PiiConfig(workers=1, timeout_s=0.0005, timeout_per_char_us=0))
        await pool.start()
        try:
            with pytest.raises(StageFailed, match="timed out"):
                await pool.analyze([TEXTS[5] * 20], ["en"])
        finally:
            await asyncio.sleep(0.5)  # the replacement task logs first
            await pool.aclose()

    with caplog.at_level(logging.WARNING, logger="appliance.pii.pool"):
        asyncio.run(main())
    assert re.search(r"PII analyzer worker \d+ timed out after 0\.0 s on a batch of 1 text, "
                     r"1540 characters: killed \(signal SIGKILL\); replacing it", caplog.text), caplog.text


def test_an_error_inside_the_analysis_fails_the_request_and_keeps_the_worker(
        caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        pool = AnalyzerPool(PiiConfig(workers=1))
        await pool.start()
        try:
            pids = pool.pids()
            with pytest.raises(StageFailed, match="PII analysis failed"):
                await pool.analyze(["Bonjour Marie, appelez-moi."], ["fr"])  # no French analyzer
            assert pool.pids() == pids
            assert (await pool.analyze([TEXTS[0]], ["en"]))[0]
        finally:
            await pool.aclose()

    with caplog.at_level(logging.ERROR, logger="appliance.pii.pool"):
        asyncio.run(main())
    assert re.search(r"PII analysis failed in analyzer worker \d+: \w+ \(a batch of 1 text, "
                     r"27 characters\); the worker stays", caplog.text), caplog.text
    assert "Marie" not in caplog.text


def _mapped(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def _rollup(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, value = line.partition(":")
        out[key] = int(value.split()[0])
    return out


@pytest.mark.skipif(not Path("/proc/self/smaps_rollup").exists(), reason="needs Linux /proc")
def test_workers_are_forked_from_one_template_and_share_its_memory() -> None:
    """One load for every worker: the template is single-threaded when it forks, no
    process loads torch, and most of a worker's memory is the template's, shared."""
    async def main() -> None:
        pool = AnalyzerPool(PiiConfig(workers=2))
        await pool.start()
        try:
            await pool.analyze(TEXTS, LANGS)
            template = pool.template_pid()
            assert template is not None
            assert len(os.listdir(f"/proc/{template}/task")) == 1
            for pid in (template, *pool.pids()):
                assert "libtorch" not in _mapped(pid)
                assert "en_core_web_sm" in _mapped(pid) or "spacy" in _mapped(pid)
            for pid in pool.pids():
                m = _rollup(pid)
                private = m["Private_Clean"] + m["Private_Dirty"]
                assert private < m["Rss"] / 2, m
        finally:
            await pool.aclose()

    asyncio.run(main())


def test_the_revision_changes_with_the_configuration_and_the_models(tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"weights v1")
    base = analyzer_revision(PiiConfig(), [model])
    assert analyzer_revision(PiiConfig(), [model]) == base
    assert analyzer_revision(PiiConfig(score_threshold=0.6), [model]) != base
    assert analyzer_revision(PiiConfig(ignore_entities=("URL",)), [model]) != base
    model.write_bytes(b"weights v2")
    assert analyzer_revision(PiiConfig(), [model]) != base


def test_a_dead_template_is_started_again_when_a_worker_needs_replacing(
        caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        pool = AnalyzerPool(PiiConfig(workers=1))
        await pool.start()
        try:
            template = pool.template_pid()
            assert template is not None
            os.kill(template, signal.SIGKILL)
            (pid,) = pool.pids()
            os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(0.2)
            findings = await asyncio.wait_for(pool.analyze([TEXTS[0]], ["en"]), 300)
            assert findings[0]
            assert pool.template_pid() not in (None, template)
        finally:
            await pool.aclose()

    with caplog.at_level(logging.WARNING, logger="appliance.pii.pool"):
        asyncio.run(main())
    assert "PII analyzer template exited (killed by signal SIGKILL" in caplog.text, caplog.text
