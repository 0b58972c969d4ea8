"""What a PII worker process holds: Presidio and spaCy, not torch or transformers."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from presidio_analyzer import AnalyzerEngine

from appliance.config.pii import PiiConfig
from appliance.errors import StageFailed
from appliance.pii.engine import analyze_texts
from appliance.pii.pool import AnalyzerPool


def _mapped(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def test_a_worker_finds_pii_without_loading_torch() -> None:
    async def main() -> None:
        pool = AnalyzerPool(PiiConfig(workers=1))
        await pool.start()
        try:
            (pid,) = pool.pids()
            found = await pool.analyze(
                ["Hans Müller wohnt in Berlin.", "John Smith lives at 5 Main Street."],
                ["de", "en"])
            maps = _mapped(pid)
        finally:
            await pool.aclose()
        assert "libtorch" not in maps
        assert "spacy" in maps or "thinc" in maps or "blis" in maps  # the analyzer is there
        assert {f.entity_type for f in found[0]} >= {"PERSON", "LOCATION"}
        assert "PERSON" in {f.entity_type for f in found[1]}

    asyncio.run(main())


def test_unseen_words_leave_nothing_behind_in_the_analyzer(analyzer: AnalyzerEngine) -> None:
    """A serving worker reads an endless stream of words it has never seen (names, codes,
    addresses); spaCy would keep each in its vocabulary for good (the soak's workers grew
    by 1.5 MiB per 1,000 requests). After a batch, the string stores are as they were."""
    def sizes() -> list[int]:
        nlp = analyzer.nlp_engine.nlp  # type: ignore[attr-defined]
        # (``len(vocab)`` counts lexemes ever added; the zone frees them all the same)
        return [len(nlp[lang].vocab.strings) for lang in sorted(nlp)]

    analyze_texts(analyzer, ["Warm up, Mr Smith.", "Warm up, Herr Müller."], ["en", "de"])
    before = sizes()
    for n in range(300):
        found = analyze_texts(
            analyzer,
            [f"Write to Qorvath{n} Blenkinsop{n} at q{n}.blenk@zy{n}x-mail.com, code ZX-{n}-Q.",
             f"Bitte an Frau Wubbelmann{n}, Quendelweg {n}, {10000 + n} Berlin schreiben."],
            ["en", "de"])
        assert any(f.entity_type == "EMAIL_ADDRESS" for f in found[0])
    assert sizes() == before


def test_a_worker_that_read_many_new_words_is_swapped_for_a_fresh_fork_without_failing_a_request() -> None:
    """The memory zones free each batch's new words, but spaCy's hash table keeps their
    slots until it doubles (the soak's workers stepped up 15 MiB after ~3,600 English
    analyses): a worker past ``recycle_after_words`` is replaced by a fresh fork of the
    template. Requests keep coming meanwhile; none may fail or wait on a missing worker."""
    async def main() -> None:
        # A budget each worker crosses: since the NLP artifacts stopped looking up every
        # lower-cased word, half as many new words reach the vocabulary (400 was crossed
        # only once in a run of the suite).
        pool = AnalyzerPool(PiiConfig(workers=2, recycle_after_words=150))
        await pool.start()
        try:
            first = set(pool.pids())
            for round_ in range(12):
                texts = [f"Mail Qorvath{round_}x{n} Blenkinsop{n} at q{round_}x{n}@zy{n}x-mail.com "
                         f"about order ZX-{round_}-{n}-Q and invoice {round_}{n}77."
                         for n in range(8)]
                found = await asyncio.gather(*(pool.analyze([t], ["en"]) for t in texts))
                for (per_text,) in found:
                    assert "EMAIL_ADDRESS" in {f.entity_type for f in per_text}
            await asyncio.sleep(0.5)  # the last swap, if one was under way
            stats, last = pool.stats(), set(pool.pids())
        finally:
            await pool.aclose()
        assert stats.workers_recycled >= 2
        assert stats.workers_replaced == 0  # recycled, not replaced after a failure
        assert len(last) == 2 and last.isdisjoint(first)
        for pid in first:  # collected by the template, not left as zombies
            assert not Path(f"/proc/{pid}").exists()

    asyncio.run(main())


def test_a_recycled_worker_that_dies_in_its_last_batch_is_not_replaced_twice() -> None:
    """The fresh fork already serves in its place: the pool must not fork another one
    when the old worker then fails its last batch (the pool would grow by one)."""
    async def main() -> None:
        pool = AnalyzerPool(PiiConfig(workers=1, recycle_after_words=1))
        await pool.start()
        try:
            (old,) = pool.pids()
            long_text = " ".join(f"Write to Qorvath{n} at q{n}@zy{n}x-mail.com about order ZX-{n}."
                                 for n in range(1500))
            # The short text's answer says "spent"; the long one is queued behind it, so the
            # old worker takes it while its replacement is forked.
            first = asyncio.ensure_future(pool.analyze(["Mail Blenkinsop at b@zy-mail.com."], ["en"]))
            second = asyncio.ensure_future(pool.analyze([long_text], ["en"]))
            await first
            for _ in range(200):  # until the replacement serves and the old one is retired
                if len(pool.pids()) == 2 and pool.stats().workers_recycled == 1:
                    break
                await asyncio.sleep(0.01)
            os.kill(old, signal.SIGKILL)
            with pytest.raises(StageFailed):
                await second
            # Every worker here is recycled after each batch, so swaps may still be under
            # way: wait for them. A second replacement would stay for good (two workers).
            for _ in range(100):
                await asyncio.sleep(0.1)
                if len(pool.pids()) == 1:
                    break
            await asyncio.sleep(0.5)
            pids = pool.pids()
            found = await pool.analyze(["Mail Blenkinsop at b@zy-mail.com."], ["en"])
        finally:
            await pool.aclose()
        assert len(pids) == 1 and old not in pids
        assert "EMAIL_ADDRESS" in {f.entity_type for f in found[0]}

    asyncio.run(main())
