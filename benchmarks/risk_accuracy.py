"""Accuracy and latency of the EU AI Act risk classifier on the labelled evaluation set.

    .venv/bin/python benchmarks/risk_accuracy.py [--data-dir DIR] [--no-embeddings]

Prints, for each split and for all items: per-class
precision and recall, the confusion matrix, and per-language recall. Then the latency
the classify stage adds per request (median and p95 over the set, CPU, the real ONNX
model), against the 10 ms bar. The bar for recall is 0.95 on prohibited and high.

Splits (see the comments in the eval set): tune = even positions of `items`, holdout =
odd positions (both written before the classifier, by the same author), fresh = written
after the first version and then used for improvements (not held out any more), unseen =
written after the second version (then partly used: glossary vocabulary), unseen2 =
written after that version was frozen (session 1's held-out figure; its errors were seen
before the session-2 training corpus was written), unseen3 = written in session 2 before
the classifier was changed (held out in round 1, its errors read in round 2: development
now), unseen4 = written at the start of round 2 before any change, FROZEN, run once at the
end: the held-out figure. unseen5 (tests/risk/eval_unseen5.yaml, prohibited/high/limited
only) = written for the "no false blocks on ordinary work" change before it touched the
classifier, FROZEN, run once at the end; some of its items came out close to older corpus
sentences (it was written without reading the corpus), so its recall is also printed on
the items whose nearest training sentence is below USE cosine 0.7 ("decontaminated"). The
trained area model (appliance/risk/training.py) learns from the exemplars, its own
paraphrase corpus and the tune/holdout/fresh/unseen splits, never from unseen2-5.

unseen6 (tests/risk/eval_unseen6.yaml, prohibited/high only) = written after the one run
of unseen4/unseen5 had shown a recall loss and BEFORE its fix, FROZEN, run once after the
fix (the figures of unseen4/unseen5 after the fix are no longer held out).

unseen7 (tests/risk/eval_unseen7.yaml) = documents with an instruction: Annex III(4)
requests stated inside or after a longer text, and ordinary business documents that use
the same words in their everyday sense ("Dear colleagues", "terminate this agreement",
German "Rate", "Gewährleistung"). Written after the real-prompt benchmark found such
documents classed high-risk and BEFORE the workers'-management rule was changed, FROZEN,
run once after the change.

`--splits` limits the run to some splits; by default unseen4-6 are left out, so
development runs never look at them (name them explicitly for the final figures).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from appliance.config import load_config
from appliance.risk.classifier import RiskClassifier, Segments
from appliance.risk.engine import build_classifier
from appliance.risk.taxonomy import RISK_CLASSES

CLASSES = tuple(reversed(RISK_CLASSES))  # prohibited, high, limited, minimal
EVAL_SET = ROOT / "tests" / "risk" / "eval_set.yaml"
UNSEEN5 = ROOT / "tests" / "risk" / "eval_unseen5.yaml"
UNSEEN6 = ROOT / "tests" / "risk" / "eval_unseen6.yaml"
UNSEEN7 = ROOT / "tests" / "risk" / "eval_unseen7.yaml"
RECALL_BAR = 0.95
SPLITS = ("tune", "holdout", "fresh", "unseen", "unseen2", "unseen3", "unseen4", "unseen5",
          "unseen6", "unseen7")
#: The splits the recall bar is judged on (never trained on, never run during development).
HELD_OUT_SPLITS = ("unseen4", "unseen5", "unseen6", "unseen7")
#: USE cosine to the nearest training sentence from which a held-out item counts as
#: decontaminated (the bar tests/risk/test_multilingual.py keeps the corpus under).
CONTAMINATION_COSINE = 0.7
#: Development runs score these; the held-out split only when named with --splits.
DEFAULT_SPLITS = tuple(s for s in SPLITS if s not in HELD_OUT_SPLITS)
LATENCY_BAR_MS = 10.0


def load_items(path: Path = EVAL_SET) -> list[dict[str, Any]]:
    raw = yaml.safe_load(path.read_text("utf-8"))
    items = []
    for i, it in enumerate(raw["items"]):
        items.append({**it, "split": "tune" if i % 2 == 0 else "holdout"})
    for it in raw.get("fresh") or ():
        items.append({**it, "split": "fresh"})
    for it in raw.get("unseen") or ():
        items.append({**it, "split": "unseen"})
    for split in ("unseen2", "unseen3", "unseen4"):
        for it in raw.get(split) or ():
            items.append({**it, "split": split})
    for split, path in (("unseen5", UNSEEN5), ("unseen6", UNSEEN6), ("unseen7", UNSEEN7)):
        for it in yaml.safe_load(path.read_text("utf-8"))[split]:
            items.append({**it, "split": split})
    return items


def decontaminated(clf: RiskClassifier, items: list[dict[str, Any]]) -> list[bool]:
    """Per item: whether no training sentence of the head is as close as
    ``CONTAMINATION_COSINE`` (USE-multilingual) to it."""
    from appliance.risk.training import training_set

    if clf.multilingual is None:
        return [True] * len(items)
    texts, _ = training_set(clf)  # what the shipped head was trained on
    train = clf.multilingual.embed(texts)
    near = (clf.multilingual.embed([it["text"] for it in items]) @ train.T).max(axis=1)
    return [bool(c < CONTAMINATION_COSINE) for c in near]


def report(name: str, items: list[dict[str, Any]], predicted: list[str]) -> dict[str, float]:
    confusion: Counter[tuple[str, str]] = Counter(
        (it["class"], p) for it, p in zip(items, predicted, strict=True)
    )
    print(f"\n== {name}: {len(items)} items ==")
    print(f"{'class':<11} {'precision':>9} {'recall':>7} {'support':>8}")
    recalls: dict[str, float] = {}
    for c in CLASSES:
        tp = confusion[(c, c)]
        support = sum(confusion[(c, p)] for p in CLASSES)
        claimed = sum(confusion[(t, c)] for t in CLASSES)
        precision = tp / claimed if claimed else float("nan")
        recall = tp / support if support else float("nan")
        recalls[c] = recall
        print(f"{c:<11} {precision:>9.3f} {recall:>7.3f} {support:>8}")
    accuracy = sum(confusion[(c, c)] for c in CLASSES) / max(1, len(items))
    print(f"accuracy {accuracy:.3f}")
    print("confusion (rows: expected, columns: predicted)")
    print(" " * 11 + "".join(f"{c[:10]:>11}" for c in CLASSES))
    for t in CLASSES:
        print(f"{t:<11}" + "".join(f"{confusion[(t, p)]:>11}" for p in CLASSES))
    for lang in ("en", "de"):
        idx = [i for i, it in enumerate(items) if it["lang"] == lang]
        parts = []
        for c in ("prohibited", "high"):
            sup = [i for i in idx if items[i]["class"] == c]
            if sup:
                hit = sum(predicted[i] == c for i in sup)
                parts.append(f"{c} recall {hit / len(sup):.3f} ({hit}/{len(sup)})")
        print(f"  {lang}: " + ", ".join(parts))
    return recalls


def latency(
    clf: RiskClassifier, items: list[dict[str, Any]], rounds: int
) -> tuple[list[float], list[float]]:
    """Per-request wall and CPU time of what the classify stage runs (tags + safety, one
    embedding). CPU time is printed too because a shared machine inflates wall time."""
    system = "You are a helpful assistant of ACME GmbH. Answer briefly."
    for it in items[:10]:  # warm-up: sessions, caches
        clf.analyse(Segments(rules_text=it["text"], context=system, content=it["text"]))
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(rounds):
        for it in items:
            seg = Segments(
                rules_text=system + "\n" + it["text"],
                context=system,
                content=it["text"],
                safety_text=it["text"],
            )
            t0, c0 = time.perf_counter(), time.process_time()
            clf.analyse(seg)
            wall.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
    return wall, cpu


def long_latency(clf: RiskClassifier, items: list[dict[str, Any]]) -> list[float]:
    """CPU time per request for long inputs (~1900 characters: eval items joined), where
    the embedding cut (``embed_max_chars``) matters; the short items above never reach it."""
    system = "You are a helpful assistant of ACME GmbH. Answer briefly."
    texts = [it["text"] for it in items]
    longs = [" ".join(texts[i : i + 25])[:1900] for i in range(0, max(1, len(texts) - 25), 10)]
    cpu: list[float] = []
    for text in longs[:40]:
        seg = Segments(rules_text=system + "\n" + text, context=system, content=text,
                       safety_text=text)
        c0 = time.process_time()
        clf.analyse(seg)
        cpu.append((time.process_time() - c0) * 1000)
    return cpu


def sweep(clf: RiskClassifier, items: list[dict[str, Any]]) -> None:
    """Recall of prohibited/high and precision of the risky classes per split, with the
    embedding floor and ceiling shifted down (more sensitive) or up (more precise)."""
    base = clf.calibration
    print(
        "\nsweep: shift of area_floor/area_ceiling (EN and glossed DE) ->"
        " recall prohibited / recall high / precision of prohibited+high, per split"
    )
    for shift in (0.1, 0.05, 0.0, -0.05, -0.1):
        clf.calibration = replace(
            base, area_floor=base.area_floor + shift, area_ceiling=base.area_ceiling + shift
        )
        cells = []
        for split in ("holdout", "fresh", "unseen", "unseen2", "unseen3", "unseen4"):
            sub = [it for it in items if it["split"] == split]
            if not sub:
                continue
            pred = [clf.classify(it["text"]).risk_class for it in sub]
            rec = []
            for c in ("prohibited", "high"):
                sup = [p for it, p in zip(sub, pred, strict=True) if it["class"] == c]
                rec.append(sum(p == c for p in sup) / max(1, len(sup)))
            claimed = [
                it["class"] for it, p in zip(sub, pred, strict=True) if p in ("prohibited", "high")
            ]
            prec = sum(c in ("prohibited", "high") for c in claimed) / max(1, len(claimed))
            cells.append(f"{split} {rec[0]:.2f}/{rec[1]:.2f}/{prec:.2f}")
        print(f"  shift {shift:+.2f}: " + "  ".join(cells))
    clf.calibration = base


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, default=None, help="where the ONNX model is cached")
    ap.add_argument("--no-embeddings", action="store_true", help="rules only")
    ap.add_argument("--rounds", type=int, default=3, help="latency rounds over the set")
    ap.add_argument("--show-errors", action="store_true", help="print misclassified items")
    ap.add_argument(
        "--sweep",
        action="store_true",
        help="also print the recall/precision trade-off when the embedding calibration is "
        "shifted (a curve for operators, not a tuning step: defaults are not changed)",
    )
    ap.add_argument("--splits", nargs="*", default=list(DEFAULT_SPLITS), choices=SPLITS,
                    help="splits to score (default: all but the held-out unseen4-6)")
    ap.add_argument("--no-multilingual", action="store_true",
                    help="all-MiniLM only (the trained head is then not used)")
    ap.add_argument("--area-model", type=Path, default=None,
                    help="trained head weights (default: the shipped area_model.json)")
    args = ap.parse_args()
    risk: dict[str, object] = {"embeddings": not args.no_embeddings}
    if args.area_model is not None:
        risk["area_model_path"] = str(args.area_model)
    if args.no_multilingual:  # only then: the key is new, older checkouts run this file too
        risk["multilingual"] = False
    overrides = {"risk": risk}
    config = load_config(None, data_dir=args.data_dir, overrides=overrides)
    clf = build_classifier(config)
    items = [it for it in load_items() if it["split"] in args.splits]
    predicted = [clf.classify(it["text"]).risk_class for it in items]
    mode = (
        "rules only"
        if args.no_embeddings
        else "rules + all-MiniLM-L6-v2 int8 (ONNX Runtime)"
        + ("" if args.no_multilingual else " + USE-multilingual v3 (ONNX Runtime) trained head")
    )
    print(f"risk classifier: {mode}; eval set {EVAL_SET.relative_to(ROOT)}")
    ok = True
    for split in (*SPLITS, "all"):
        idx = [i for i, it in enumerate(items) if split == "all" or it["split"] == split]
        if not idx:
            continue
        label = {
            "unseen2": "development: never trained on, errors seen",
            "unseen3": "development: never trained on, errors seen in round 2",
            "unseen4": "HELD OUT",
            "unseen5": "HELD OUT",
            "unseen6": "HELD OUT after the fix",
            "unseen7": "HELD OUT: documents with an instruction",
            "all": "the splits scored",
        }.get(split, "seen in training")
        recalls = report(f"{split} ({label})", [items[i] for i in idx], [predicted[i] for i in idx])
        if split in HELD_OUT_SPLITS:
            ok &= all(recalls[c] >= RECALL_BAR for c in ("prohibited", "high"))
        if split in ("unseen5", "unseen6") and not args.no_embeddings:
            clean = decontaminated(clf, [items[i] for i in idx])
            kept = [i for i, c in zip(idx, clean, strict=True) if c]
            report(f"{split}, decontaminated ({len(idx) - len(kept)} items within cosine"
                   f" {CONTAMINATION_COSINE} of a training sentence left out)",
                   [items[i] for i in kept], [predicted[i] for i in kept])
    if args.show_errors:
        print("\nmisclassified:")
        for it, p in zip(items, predicted, strict=True):
            if p != it["class"]:
                print(f"  [{it['split']}] {it['class']} -> {p}: {it['text'][:100]}")
    if args.sweep:
        sweep(clf, items)
    times, cpu = latency(clf, items, args.rounds)
    median = statistics.median(times)
    p95 = sorted(times)[int(0.95 * (len(times) - 1))]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"\nlatency per request (classify stage work, {len(times)} runs, {os.cpu_count()} CPUs,"
        f" load average {load:.1f}): median {median:.2f} ms, p95 {p95:.2f} ms;"
        f" CPU time median {statistics.median(cpu):.2f} ms; bar {LATENCY_BAR_MS:.0f} ms ->"
        f" {median / LATENCY_BAR_MS:.2f} of the bar"
    )
    long_cpu = long_latency(clf, items)
    if long_cpu:
        print(
            f"long requests (~1900 characters, {len(long_cpu)} runs): CPU time median"
            f" {statistics.median(long_cpu):.2f} ms (embedded: the first"
            f" {clf.calibration.embed_max_chars - clf.calibration.embed_tail_chars} and last"
            f" {clf.calibration.embed_tail_chars} characters)"
        )
    ok &= median < LATENCY_BAR_MS
    print(
        f"bars (recall >= {RECALL_BAR} on prohibited and high, median < {LATENCY_BAR_MS} ms): "
        f"{'hold' if ok else 'DO NOT hold'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
