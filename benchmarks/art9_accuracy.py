"""Art. 9 special categories: precision and recall per category, English and German apart.

Usage: .venv/bin/python benchmarks/art9_accuracy.py [--held-out] [--errors] [--gold-language]

Data: tests/pii/art9/dev.yaml (development) and tests/pii/art9/heldout.yaml (frozen,
scored only with --held-out: run it once, at the end), both written before the detector
(their header says how texts are labelled); tests/pii/art9/dev_extra.yaml, development
texts written after the first detector run, scored apart.

Each text runs through the appliance's own path: the PII analyzer with its identifier
recognizers (whose PERSON findings the special-category layer reads), then the special
categories, in the language the server would detect (--gold-language: the labelled one).
Scoring is per text and category: a category the detector reports for a text is a true
positive when the text is labelled with it, a false positive otherwise; a labelled
category it misses is a false negative. The bar is precision >= 0.85 and recall >= 0.90
per category (EN and DE together).

"person link": of the labelled (text, category) pairs whose data subject is named in the
text and that the detector found, the share whose finding links to a PERSON finding over
that name. It depends on the identifier recognizers finding the name at all.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance.config.pii import PiiConfig
from appliance.pii.findings import Finding
from appliance.pii.engine import analyze_texts, build_analyzer
from appliance.pii.language import detect_language
from appliance.pii.special.categories import CATEGORIES, SPECIAL_CATEGORIES
from appliance.pii.special.detector import build_special_detector

DATA = Path(__file__).resolve().parents[1] / "tests" / "pii" / "art9"
BAR_P, BAR_R = 0.85, 0.90


@dataclass
class Tally:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def load(part: str) -> list[dict[str, Any]]:
    return list(yaml.safe_load((DATA / f"{part}.yaml").read_text("utf-8"))["items"])


def run(items: list[dict[str, Any]], gold_language: bool) -> tuple[list[list[Finding]], list[str], float]:
    config = PiiConfig()
    analyzer = build_analyzer(config)
    special = build_special_detector(config)
    texts = [i["text"] for i in items]
    langs = [i["lang"] if gold_language else detect_language(i["text"], default=config.languages[0])
             for i in items]
    ignore = frozenset(config.ignore_entities)
    analyze_texts(analyzer, texts[:8], langs[:8], ignore, special)  # warm up
    began = time.perf_counter()
    found = analyze_texts(analyzer, texts, langs, ignore, special)
    return found, langs, (time.perf_counter() - began) / len(texts) * 1000


def score(name: str, items: list[dict[str, Any]], found: list[list[Finding]], errors: bool) -> bool:
    tallies: dict[tuple[str, str], Tally] = {}
    links = Counter[str]()
    wrong: list[str] = []
    for item, findings in zip(items, found, strict=True):
        gold = set(item["cats"])
        pred = {f.entity_type for f in findings if f.entity_type in SPECIAL_CATEGORIES}
        for lang in (item["lang"], "all"):
            for cat in SPECIAL_CATEGORIES:
                t = tallies.setdefault((lang, cat), Tally())
                t.tp += cat in gold and cat in pred
                t.fp += cat in pred and cat not in gold
                t.fn += cat in gold and cat not in pred
        if gold != pred:
            wrong.append(f"  {item['id']:<22} gold={sorted(gold)} got={sorted(pred)}\n    {item['text']}\n"
                         + "".join(f"      {f.entity_type} {item['text'][f.start:f.end]!r} {f.recognizer}\n"
                                   for f in findings if f.entity_type in SPECIAL_CATEGORIES))
        person = item.get("person")
        if person:
            at = item["text"].find(person)
            span = (at, at + len(person))
            for cat in gold & pred:
                links["pairs"] += 1
                ok = any(
                    f.entity_type == cat and f.person is not None
                    and findings[f.person].start < span[1] and findings[f.person].end > span[0]
                    for f in findings
                )
                links["linked"] += ok
    print(f"\n== {name}: {len(items)} texts "
          f"({sum(1 for i in items if i['lang'] == 'en')} en, {sum(1 for i in items if i['lang'] == 'de')} de)")
    print(f"{'category':<18} {'en P':>6} {'en R':>6} {'de P':>6} {'de R':>6} {'all P':>6} {'all R':>6}"
          f"  {'TP':>3} {'FP':>3} {'FN':>3}  bar")
    met = True
    for cat in CATEGORIES:
        en, de, al = tallies[("en", cat)], tallies[("de", cat)], tallies[("all", cat)]
        ok = al.precision >= BAR_P and al.recall >= BAR_R
        met &= ok
        print(f"{cat:<18} {en.precision:6.2f} {en.recall:6.2f} {de.precision:6.2f} {de.recall:6.2f} "
              f"{al.precision:6.2f} {al.recall:6.2f}  {al.tp:3d} {al.fp:3d} {al.fn:3d}  "
              f"{'met' if ok else 'NOT met'}")
    tot = Tally(*(sum(getattr(tallies[("all", c)], k) for c in CATEGORIES) for k in ("tp", "fp", "fn")))
    print(f"{'micro-average':<18} {'':>6} {'':>6} {'':>6} {'':>6} {tot.precision:6.2f} {tot.recall:6.2f}"
          f"  {tot.tp:3d} {tot.fp:3d} {tot.fn:3d}")
    negatives = [i for i in items if not i["cats"]]
    clean = sum(1 for i, f in zip(items, found, strict=True) if not i["cats"]
                and not any(x.entity_type in SPECIAL_CATEGORIES for x in f))
    print(f"negatives with no special-category finding: {clean}/{len(negatives)}")
    if links["pairs"]:
        print(f"person link: {links['linked']}/{links['pairs']} found (text, category) pairs with a "
              f"named subject link to a PERSON finding over that name "
              f"({links['linked'] / links['pairs']:.0%})")
    if errors:
        print(f"\nerrors ({len(wrong)} texts):")
        print("".join(wrong))
    return met


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--held-out", action="store_true", help="also score the frozen held-out part")
    ap.add_argument("--errors", action="store_true", help="list the dev parts' errors")
    ap.add_argument("--gold-language", action="store_true",
                    help="analyse each text in its labelled language, not the detected one")
    args = ap.parse_args()
    parts = ["dev", "dev_extra"] + (["heldout"] if args.held_out else [])
    for part in parts:
        items = load(part)
        found, langs, ms = run(items, args.gold_language)
        misdetected = sum(1 for i, lang in zip(items, langs, strict=True) if i["lang"] != lang)
        met = score(part, items, found, args.errors and part != "heldout")
        print(f"language: {'labelled' if args.gold_language else 'detected'} "
              f"({misdetected} texts detected as the other language); "
              f"{ms:.2f} ms per text for the whole PII analysis (identifiers + special categories)")
        print(f"bars (P >= {BAR_P}, R >= {BAR_R} per category) on {part}: {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
