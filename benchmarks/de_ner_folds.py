"""Choose the German tagger's operating point without scoring it on what it learnt from.

The shipped tagger trains on the whole DEV half of ler_dev.conll (appliance.pii.de.ler),
so DEV-half figures no longer say how it does on decisions it has not seen, and the TEST
half must stay untouched. So the DEV half is cut once more, in file order, into quarter A
and quarter B (the same split function): a quick single tagger is trained on A plus
generated text and scored on B, another on B and scored on A. The two folds' counts are
pooled, and every ``Arbitration`` setting of the grid is scored through the whole German
analyzer (pattern recognizers, gazetteer rules, Presidio's merging) exactly as
benchmarks/pii_accuracy.py scores it. Each mix of real and generated text (``--mixes``)
is a separate pair of fold models; the generated-only mix (``0:0``) is the reference.

Usage: .venv/bin/python benchmarks/de_ner_folds.py [--mixes 0:0,2:0] [--samples N]
       [--epochs N] [--work DIR] [--shift-check]
Fold models are cached in --work (by recipe code, mix and size), so a rerun only re-scores.

``--shift-check`` asks whether the TEST half is like the DEV half: fold A's model, at the
current setting, scored on quarter B (DEV sentences it has not seen) and on the TEST half,
totals only. It chooses nothing and prints no errors; it tells whether the folds' figures
can be expected on the TEST half at all.

The choice, per class (the bars are per class): the highest F2 of that class, where
settings within 0.005 of it are a tie broken by fewer leaked words (recall first).
"""

from __future__ import annotations

import argparse
import copy
import itertools
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pii_accuracy import Scores, evaluate, german_samples  # noqa: E402

from appliance.pii.config import PiiConfig  # noqa: E402
from appliance.pii.de.build import ENV_DIR, build_model, fingerprint, is_built  # noqa: E402
from appliance.pii.de.ler import (  # noqa: E402
    Sentence,
    dev_half,
    read_conll,
    split_halves,
    to_sample,
)
from appliance.pii.de.recognizer import Arbitration, Evidence, GermanNerRecognizer  # noqa: E402
from appliance.pii.engine import analyze_texts, build_analyzer  # noqa: E402

ADD = (0.5, 0.6, 0.7, 0.8, 0.9)
VETO_PERSON = (0.9, 0.95, 0.98, 1.01)
VETO_LOCATION = (0.9, 0.95, 0.98, 1.01)


@dataclass(frozen=True)
class Mix:
    real_repeat: int
    real_entity_repeat: int

    @property
    def name(self) -> str:
        return f"{self.real_repeat}:{self.real_entity_repeat}"


class _CachedEvidence(GermanNerRecognizer):
    """Evidence computed once per text: the grid re-runs only the arbitration."""

    def __init__(self, model_dir: Path, rules: Any) -> None:
        super().__init__(model_dir, rules=rules)
        self._seen: dict[str, Evidence] = {}

    def evidence(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> Evidence:
        if text not in self._seen:
            self._seen[text] = super().evidence(text, entities, nlp_artifacts)
        ev = self._seen[text]
        # Presidio adjusts results in place (context, scores): hand out copies.
        return replace(ev, rules=[copy.deepcopy(r) for r in ev.rules])


def fold_model(work: Path, mix: Mix, fold: str, train_on: Sequence[Sentence],
               samples: int, epochs: int) -> Path:
    from appliance.pii.de.train import Recipe

    out = work / (f"{fingerprint()}-mix{mix.real_repeat}-{mix.real_entity_repeat}"
                  f"-s{samples}-e{epochs}-{fold}")
    if is_built(out):
        return out
    out.mkdir(parents=True, exist_ok=True)
    recipe = replace(Recipe(), members=1, samples=samples, epochs=epochs,
                     real_repeat=mix.real_repeat, real_entity_repeat=mix.real_entity_repeat)
    t = time.perf_counter()
    build_model(out, progress=lambda m, _f=None: m and print("  " + m, flush=True), recipe=recipe,
                real=[to_sample(s) for s in train_on])
    print(f"  fold {fold} of mix {mix.name}: trained in {time.perf_counter() - t:.0f} s", flush=True)
    return out


def german_recognizer(engine: Any) -> GermanNerRecognizer:
    return next(r for r in engine.registry.recognizers if isinstance(r, GermanNerRecognizer))


class FoldScorer:
    """The whole German analyzer over one fold model, scoring its held-out quarter."""

    def __init__(self, model_dir: Path, scored: Sequence[Sentence]) -> None:
        from appliance.pii.gazetteer import GazetteerRecognizer

        self.model_dir = model_dir
        os.environ[ENV_DIR] = str(model_dir)  # build_analyzer loads this model
        config = PiiConfig(languages=("de",))
        self._engine = build_analyzer(config)
        registry = self._engine.registry.recognizers
        assert isinstance(registry, list)  # Presidio keeps them in a list it reads per call
        self._rec = _CachedEvidence(model_dir, GazetteerRecognizer("de"))
        registry[registry.index(german_recognizer(self._engine))] = self._rec
        self._ignore = frozenset(config.ignore_entities)
        self._samples = german_samples(scored, "dev")

    def _analyze(self, text: str) -> list[Any]:
        return analyze_texts(self._engine, [text], ["de"], self._ignore)[0]

    def scores(self, grid: Sequence[Arbitration]) -> list[Scores]:
        out = []
        for arb in grid:
            self._rec.arbitration = arb
            out.append(evaluate(self._samples, self._analyze, self._ignore).whole)
        return out


def pooled(parts: Sequence[Scores]) -> Scores:
    total = Scores()
    for p in parts:
        total.tp.update(p.tp)
        total.fp.update(p.fp)
        total.fn.update(p.fn)
        total.pii_words += p.pii_words
        total.leaked += p.leaked
        total.ordinary_words += p.ordinary_words
        total.destroyed += p.destroyed
        total.ms += p.ms
    return total


def figures(sc: Scores) -> tuple[float, float, float, float]:
    """PERSON F2, LOCATION F2, leaked share, destroyed share."""
    return (sc.row("PERSON")[2], sc.row("LOCATION")[2], sc.leaked / max(sc.pii_words, 1),
            sc.destroyed / max(sc.ordinary_words, 1))


def choose(results: Sequence[tuple[Arbitration, Scores]], cls: str) -> Arbitration:
    """The best ``cls`` F2; settings within 0.005 of it tie, fewer leaked words win."""
    best = max(sc.row(cls)[2] for _, sc in results)
    tied = [(a, sc) for a, sc in results if sc.row(cls)[2] >= best - 0.005]
    return min(tied, key=lambda r: (r[1].leaked, -r[1].row(cls)[2]))[0]


def line(label: str, sc: Scores) -> str:
    per, loc, leaked, destroyed = figures(sc)
    return (f"{label:<58} PERSON F2 {per:.3f}  LOCATION F2 {loc:.3f}  leaked {leaked:5.1%} "
            f"of {sc.pii_words}  destroyed {destroyed:.2%}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mixes", default="0:0,2:0",
                    help="real_repeat:real_entity_repeat pairs, comma-separated")
    ap.add_argument("--samples", type=int, default=12000, help="generated samples per fold model")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "de-ner-folds")
    ap.add_argument("--shift-check", action="store_true",
                    help="fold A's model on quarter B and on the TEST half, totals only")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "pii",
                    help="where ler_dev.conll is (--shift-check)")
    args = ap.parse_args()
    mixes = [Mix(*map(int, m.split(":"))) for m in args.mixes.split(",")]
    quarter_a, quarter_b = split_halves(dev_half())
    print(f"DEV half {len(dev_half())} sentences: quarter A {len(quarter_a)}, quarter B "
          f"{len(quarter_b)}; fold models: 1 tagger, {args.samples} generated samples, "
          f"{args.epochs} epochs (the shipped one: 2 taggers, the whole DEV half)")
    current = Arbitration()
    # Each class's knobs move its own figures (token classes hardly interact), so the
    # persons' and the places' knobs are swept separately, the other class held as it is.
    person_grid = [replace(current, add_person=a, veto_person=v)
                   for a, v in itertools.product(ADD, VETO_PERSON)]
    place_grid = [replace(current, add_location=a, veto_location=v)
                  for a, v in itertools.product(ADD, VETO_LOCATION)]
    for mix in mixes:
        print(f"\n== mix {mix.name} (real_repeat:real_entity_repeat) ==", flush=True)
        folds = [FoldScorer(fold_model(args.work, mix, fold, train_on, args.samples,
                                       args.epochs), scored)
                 for fold, train_on, scored in (("A", quarter_a, quarter_b),
                                                ("B", quarter_b, quarter_a))]

        def sweep(grid: Sequence[Arbitration]) -> list[tuple[Arbitration, Scores]]:
            per_fold = [f.scores(grid) for f in folds]  # noqa: B023
            return [(arb, pooled([f[i] for f in per_fold])) for i, arb in enumerate(grid)]

        t = time.perf_counter()
        people, places = sweep(person_grid), sweep(place_grid)
        ap_, al = choose(people, "PERSON"), choose(places, "LOCATION")
        chosen = replace(current, add_person=ap_.add_person, veto_person=ap_.veto_person,
                         add_location=al.add_location, veto_location=al.veto_location)
        (_, now), (_, sc) = sweep([current, chosen])
        print(f"  {len(person_grid) + len(place_grid) + 2} settings scored on both folds in "
              f"{time.perf_counter() - t:.0f} s")
        print(line(f"current {current}", now))
        print(line(f"chosen  {chosen}", sc))
        for cls, results in (("PERSON", people), ("LOCATION", places)):
            print(f"{cls} sweep, best 5 by F2:")
            for a, s in sorted(results, key=lambda r: -r[1].row(cls)[2])[:5]:
                print(line(f"  {a}", s))
        print(f"median analysis time {statistics.median(sc.ms):.2f} ms/sentence (cached evidence)")
        if args.shift_check:
            test = split_halves(read_conll((args.data / "ler_dev.conll").read_text("utf-8")))[1]
            print(f"shift check, fold A's model at {current}:")
            print(line("  on quarter B (DEV, unseen)", folds[0].scores([current])[0]))
            print(line("  on the TEST half", FoldScorer(folds[0].model_dir, test).scores([current])[0]))

if __name__ == "__main__":
    main()
