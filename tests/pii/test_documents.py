"""PII on documents of any allowed size: the real analyzer pool (template and two forked
workers) on long English and German archives, with personal data planted at its cuts."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence

import pytest
import uvloop

from appliance.config.pii import PiiConfig
from appliance.pii.findings import Finding
from appliance.pii.pieces import known_digests, paragraphs
from appliance.pii.pool import AnalyzerPool
from appliance.testing.documents import Document, Planted, archive, at_cuts
from tests.pii.test_pieces import cuts_within_runs

CONFIG = PiiConfig(workers=2)


@pytest.fixture(scope="module")
def pool() -> Iterator[AnalyzerPool]:
    pool = AnalyzerPool(CONFIG)
    asyncio.run(pool.start())
    yield pool
    asyncio.run(pool.aclose())


def found_whole(findings: Sequence[Finding], planted: Planted, text: str) -> bool:
    """One finding covers every letter and digit of the planted value."""
    chars = [i for i in range(planted.start, planted.end) if text[i].isalnum()]
    return any(f.start <= chars[0] and chars[-1] < f.end for f in findings)


def covered(findings: Sequence[Finding], planted: Planted, text: str) -> bool:
    """Every letter and digit of the planted value lies in some finding."""
    return all(any(f.start <= i < f.end for f in findings)
               for i in range(planted.start, planted.end) if text[i].isalnum())


def test_200_kb_of_english_and_german_with_pii_at_every_cut(pool: AnalyzerPool) -> None:
    """An address that crosses a cut is found whole, once, by the piece it starts in;
    the pieces go to both workers; everything else planted is found too. (Checked: with
    the overlap set to 0, 45 of the 97 addresses at the cuts were missed.)"""
    doc = at_cuts(archive(200_000, seed=11, width=64, blank_lines=False, run_chars=10_000),
                  lambda text: cuts_within_runs(text, CONFIG))
    assert len(doc.text) >= 200_000 and len(doc.at_cuts) >= 90
    before = pool.stats()
    (findings,) = asyncio.run(pool.analyze([doc.text], ["en"], detect_pieces=True))
    after = pool.stats()

    missed_at_cuts = [doc.text[p.start:p.end] for p in doc.at_cuts
                      if not found_whole(findings, p, doc.text)]
    assert not missed_at_cuts
    for a, b in zip(findings, findings[1:], strict=False):
        assert a.end <= b.start  # nothing found twice
    structured = [p for p in doc.planted if p.entity_type in {"EMAIL_ADDRESS", "IBAN_CODE", "PHONE_NUMBER"}]
    assert all(covered(findings, p, doc.text) for p in structured)
    names = [p for p in doc.planted if p not in structured]
    missed = [doc.text[p.start:p.end] for p in names if not covered(findings, p, doc.text)]
    # Misses here are the analyzer's, not the cuts' (surnames that are ordinary German
    # nouns, "Guido Fischer"): the same text in one piece misses the same names.
    assert len(missed) <= len(names) // 100, missed
    assert after.pieces - before.pieces > 100
    assert after.workers_used == 2


def test_a_prompt_at_the_policy_limit_finishes_within_its_time_limits(pool: AnalyzerPool) -> None:
    """400 KB, the 100,000-token policy limit at four characters a token: no single
    worker call comes near its limit, since no call carries more than ``batch_chars``."""
    doc = archive(400_000, seed=12)
    before = pool.stats()
    (findings,) = asyncio.run(pool.analyze([doc.text], ["en"], detect_pieces=True))
    after = pool.stats()
    emails = [p for p in doc.planted if p.entity_type == "EMAIL_ADDRESS"]
    assert all(covered(findings, p, doc.text) for p in emails)
    assert after.chars_analysed - before.chars_analysed >= len(doc.text)
    assert pool.time_limit(CONFIG.batch_chars) == pytest.approx(10.0 + 3.2)


def test_a_repeated_segment_is_answered_from_the_tenants_cache(pool: AnalyzerPool) -> None:
    system = archive(8_000, seed=13).text  # a system prompt with names and contacts in it

    def run(tenant: str, user: str) -> tuple[list[list[Finding]], int, int]:
        before = pool.stats()
        found = asyncio.run(pool.analyze([system, user], ["en", "en"], tenant=tenant))
        after = pool.stats()
        return found, after.pieces_analysed - before.pieces_analysed, after.cache_hits - before.cache_hits

    first, analysed, _ = run("acme", "Has Anna Schmidt paid invoice 4711?")
    assert analysed >= 2
    second, analysed_again, hits = run("acme", "And what about Jonas Becker, invoice 4712?")
    assert analysed_again == 1 and hits >= 1  # only the new user turn went to a worker
    assert second[0] == first[0]
    _, other_tenant, other_hits = run("globex", "Has Anna Schmidt paid invoice 4711?")
    assert other_hits == 0 and other_tenant >= 2


def test_answer_paragraphs_that_repeat_the_redacted_request_are_not_analysed_again(
        pool: AnalyzerPool) -> None:
    request = archive(6_000, seed=14).text
    known = known_digests([request])
    answer = "echo: " + request
    before = pool.stats()
    (found,) = asyncio.run(pool.analyze([answer], ["en"], known=known))
    skipped = pool.stats().skipped_chars - before.skipped_chars
    repeated = paragraphs(answer)[1:]
    assert skipped == sum(e - s for s, e in repeated)
    first_end = paragraphs(answer)[0][1]
    assert not any(f.start >= first_end + 400 for f in found)  # only the changed paragraph


def test_a_reply_larger_than_the_socket_buffer_under_uvloop(pool: AnalyzerPool) -> None:
    """The server runs on uvloop, which makes the worker's socket non-blocking: the old
    pool read replies with a blocking call and failed every 49 KB prompt ("PII analysis
    failed", the worker replaced though alive)."""
    doc: Document = archive(49_000, seed=15)

    async def main() -> list[list[Finding]]:
        return await pool.analyze([doc.text], ["en"])

    (found,) = uvloop.run(main())
    assert len(found) > 300
