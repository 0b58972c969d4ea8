"""Request-path cost of PII detection: one pool round trip per request, and how it scales.

Usage: .venv/bin/python benchmarks/art9_latency.py [--requests N] [--special-only]

Measures, for a typical chat request (system + two user messages, ~60 words), the
latency of ``AnalyzerPool.analyze`` sequentially (what one request adds) and the
throughput with concurrent requests for 1 worker and one worker per core, next to the
in-process analyzer called directly (the floor: no inter-process hop).

Then what the GDPR Art. 9 special-category layer adds, measured against the same
analysis without it in the same run, interleaved request by request (the machine's
load drifts; alternating cancels the drift): in-process and through two one-worker
pools (``pii.special_categories`` on and off), for the typical request, for one that
holds special categories (a sick-leave e-mail), and for a 2 KB document.
``--special-only`` skips the first part.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance.config.pii import PiiConfig
from appliance.pii.engine import analyze_texts, build_analyzer
from appliance.pii.pool import AnalyzerPool
from appliance.pii.special.detector import build_special_detector

TEXTS = [
    "You are a helpful assistant for the billing department.",
    "Hi, my name is John Smith and I live at 29 Hornsey Road, London. Please call me on "
    "+44 20 7946 0958 or mail john.smith@example.com about invoice 4711.",
    "Bitte überweisen Sie den Betrag auf DE89 3704 0044 0532 0130 00, Herr Dr. Müller.",
]
LANGS = ["en", "en", "de"]

#: A request that holds special categories (health, in both languages).
ART9_TEXTS = [
    "You are an assistant for the HR team.",
    "Please summarise: Employee Sarah Connor has been on sick leave since 3 May after a "
    "burnout; her GP certificate mentions depression and she takes sertraline.",
    "Herr Jan Becker ist seit Montag krankgeschrieben und Mitglied der IG Metall.",
]
#: A 2 KB document (an HR case file, English), as one text piece.
DOCUMENT = " ".join([
    "Case file 2026-114, prepared for the HR review board. The employee joined the company "
    "in 2019 as a warehouse operator and was promoted to shift lead in 2022. Performance "
    "reviews describe reliable work, good relations with the team and punctual reporting.",
    "In March the employee asked for a meeting with the works council about the new rota. "
    "The rota was changed after consultation; overtime was reduced by four hours a week.",
    "From 12 April to 30 May the employee was absent; a sick note from the GP was received. "
    "On return, a phased return-to-work plan was agreed with occupational health.",
    "The employee is a member of the union and asked for a union representative to attend "
    "the next review. The manager, Tom Baker, agreed and proposed a date in July.",
] * 3)


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def special_in_process(n: int) -> None:
    """The in-process analyzer with and without the special layer, alternating calls."""
    config = PiiConfig()
    analyzer = build_analyzer(config)
    special = build_special_detector(config)
    ignore = frozenset(config.ignore_entities)
    for name, texts, langs in (("typical", TEXTS, LANGS), ("art9", ART9_TEXTS, LANGS),
                               ("2 KB document", [DOCUMENT], ["en"])):
        for _ in range(5):
            analyze_texts(analyzer, texts, langs, ignore, special)
        off: list[float] = []
        on: list[float] = []
        for i in range(n):
            for layer in ((None, special) if i % 2 == 0 else (special, None)):
                t = time.perf_counter()
                analyze_texts(analyzer, texts, langs, ignore, layer)
                (off if layer is None else on).append(time.perf_counter() - t)
        alone: list[float] = []
        identifiers = analyze_texts(analyzer, texts, langs, ignore)
        assert special is not None
        for _ in range(n):
            t = time.perf_counter()
            for text, lang, found in zip(texts, langs, identifiers, strict=True):
                special.findings(text, lang, found)
            alone.append(time.perf_counter() - t)
        print(f"in-process, {name:<13}: {_median_ms(off):6.2f} ms without, {_median_ms(on):6.2f} ms "
              f"with special categories (+{_median_ms(on) - _median_ms(off):.3f} ms median; "
              f"the layer alone {_median_ms(alone):.3f} ms)")


async def special_pool(n: int) -> None:
    """Two one-worker pools, special categories on and off, requests alternating."""
    pools = {flag: AnalyzerPool(PiiConfig(workers=1, special_categories=flag))
             for flag in (False, True)}
    await asyncio.gather(*(p.start() for p in pools.values()))
    try:
        for name, texts, langs in (("typical", TEXTS, LANGS), ("art9", ART9_TEXTS, LANGS),
                                   ("2 KB document", [DOCUMENT], ["en"])):
            lat: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(5):
                for p in pools.values():
                    await p.analyze(texts, langs)
            for i in range(n):
                for flag in ((False, True) if i % 2 == 0 else (True, False)):
                    t = time.perf_counter()
                    await pools[flag].analyze(texts, langs)
                    lat[flag].append(time.perf_counter() - t)
            off, on = _median_ms(lat[False]), _median_ms(lat[True])
            print(f"pool (1 worker), {name:<13}: {off:6.2f} ms without, {on:6.2f} ms with "
                  f"special categories (+{on - off:.3f} ms per request, median)")
    finally:
        await asyncio.gather(*(p.aclose() for p in pools.values()))


async def pool_run(workers: int, n: int) -> tuple[float, float]:
    pool = AnalyzerPool(PiiConfig(workers=workers))
    await pool.start()
    try:
        for _ in range(5):
            await pool.analyze(TEXTS, LANGS)
        lat = []
        for _ in range(n):
            t = time.perf_counter()
            await pool.analyze(TEXTS, LANGS)
            lat.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        await asyncio.gather(*(pool.analyze(TEXTS, LANGS) for _ in range(n)))
        rps = n / (time.perf_counter() - t)
        return statistics.median(lat), rps
    finally:
        await pool.aclose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--special-only", action="store_true",
                    help="only the special-category comparison")
    args = ap.parse_args()
    n = args.requests
    if not args.special_only:
        baseline(n)
    print(f"\nGDPR Art. 9 special categories, with and without, interleaved ({n} requests each); "
          f"load average: {os.getloadavg()[0]:.1f}")
    special_in_process(n)
    asyncio.run(special_pool(n))


def baseline(n: int) -> None:
    analyzer = build_analyzer(PiiConfig())
    for _ in range(5):
        analyze_texts(analyzer, TEXTS, LANGS)
    lat = []
    for _ in range(n):
        t = time.perf_counter()
        analyze_texts(analyzer, TEXTS, LANGS)
        lat.append((time.perf_counter() - t) * 1000)
    base = statistics.median(lat)
    print(f"cores: {os.cpu_count()}; load average: {os.getloadavg()[0]:.1f}")
    print(f"in-process analyzer: {base:.2f} ms/request median (baseline, blocks the loop)")
    for workers in sorted({1, os.cpu_count() or 1}):
        med, rps = asyncio.run(pool_run(workers, n))
        print(f"pool, {workers} worker(s): {med:.2f} ms/request median sequential "
              f"({med / base:.2f}x in-process), {rps:.0f} requests/s concurrent")


if __name__ == "__main__":
    main()
