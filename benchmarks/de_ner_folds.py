"""Choose the German tagger's recipe and operating point without scoring it on what it learnt.

The shipped tagger learns every dev part (LER's DEV half, GermEval's train and tune parts),
so their figures no longer say how it does on text it has not seen, and the held-out
parts must stay untouched. So a fold model learns generated text plus LER DEV quarter A
(the DEV half cut once more, in file order, by the same split function) plus GermEval's
train part, and is scored on LER DEV quarter B and on GermEval's tune part: dev parts it
never saw. Every ``Arbitration`` setting of the grid is scored through the whole German
analyzer (pattern recognizers, gazetteer rules, Presidio's merging) exactly as
benchmarks/pii_accuracy.py scores it, the two tune sets pooled.

Usage: .venv/bin/python benchmarks/de_ner_folds.py [--recipe field=value,...] [--work DIR]
       [--no-sweep] [--errors N]
Fold models are cached in --work (by recipe code and recipe), so a rerun only re-scores.
``--errors N`` prints the fold model's most frequent misses and spurious tokens on the
tune sets (the only place errors are read).

The choice, per class (the bars are per class): the highest F2 of that class, where
settings within 0.005 of it are a tie broken by fewer leaked words (recall first).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import itertools
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pii_accuracy import GERMEVAL_GOLD, Scores, evaluate, german_samples  # noqa: E402

from appliance.config.pii import PiiConfig  # noqa: E402
from appliance.pii.de import germeval  # noqa: E402
from appliance.pii.de.build import ENV_DIR, build_model, fingerprint, is_built  # noqa: E402
from appliance.pii.de.ler import Sentence, dev_half, split_halves, to_sample  # noqa: E402
from appliance.pii.de.synth import Sample  # noqa: E402
from appliance.pii.de.train import Recipe  # noqa: E402
from appliance.pii.de.recognizer import Arbitration, Evidence, GermanNerRecognizer  # noqa: E402
from appliance.pii.engine import analyze_texts, build_analyzer  # noqa: E402

ADD = (0.2, 0.3, 0.4, 0.5, 0.6)
VETO_PERSON = (0.95, 1.01)
VETO_LOCATION = (0.95, 1.01)


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


def fold_model(work: Path, recipe: Recipe, court: Sequence[Sentence],
               general: Sequence[Sample]) -> Path:
    tag = hashlib.sha256(repr(recipe).encode()).hexdigest()[:8]
    out = work / f"{fingerprint()}-{tag}"
    if is_built(out):
        return out
    out.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    build_model(out, progress=lambda m, _f=None: print("  " + m, flush=True), recipe=recipe,
                real=[to_sample(s) for s in court], general=general)
    print(f"  fold model trained in {time.perf_counter() - t:.0f} s", flush=True)
    return out


def german_recognizer(engine: Any) -> GermanNerRecognizer:
    return next(r for r in engine.registry.recognizers if isinstance(r, GermanNerRecognizer))


class FoldScorer:
    """The whole German analyzer over one fold model, scoring its held-out quarter."""

    def __init__(self, model_dir: Path, samples: Sequence[Any]) -> None:
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
        self._samples = list(samples)

    def _analyze(self, text: str) -> list[Any]:
        return analyze_texts(self._engine, [text], ["de"], self._ignore)[0]

    def run(self, arb: Arbitration, samples: Sequence[Any] | None = None) -> Any:
        """One setting over ``samples`` (default: all the scorer's)."""
        self._rec.arbitration = arb
        return evaluate(list(samples or self._samples), self._analyze, self._ignore)

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
    ap.add_argument("--recipe", default="", help="Recipe fields to change: samples=8000,epochs=3")
    ap.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "de-ner-folds")
    ap.add_argument("--no-sweep", action="store_true", help="score the current setting only")
    ap.add_argument("--errors", type=int, default=0, help="most frequent errors on the tune sets")
    args = ap.parse_args()
    changes: dict[str, Any] = {}
    for item in filter(None, args.recipe.split(",")):
        key, value = item.split("=")
        changes[key] = type(getattr(Recipe(), key))(value)
    recipe = replace(Recipe(), **changes)
    quarter_a, quarter_b = split_halves(dev_half())
    train, tune = germeval.packaged()
    print(f"fold model: {recipe}\n  learns LER quarter A ({len(quarter_a)}) + GermEval train "
          f"({len(train)}); scored on LER quarter B ({len(quarter_b)}) + GermEval tune ({len(tune)})")
    model = fold_model(args.work, recipe, quarter_a, [germeval.to_sample(s) for s in train])
    tune_sets = {
        "LER quarter B": german_samples(quarter_b, "dev"),
        "GermEval tune": german_samples(list(tune), "dev", GERMEVAL_GOLD),
    }
    scorer = FoldScorer(model, [s for v in tune_sets.values() for s in v])
    current = Arbitration()
    for name, samples in tune_sets.items():
        run = scorer.run(current, samples)
        print(line(f"{name} at {current}", run.whole))
        if args.errors:
            for cls in ("PERSON", "LOCATION"):
                missed = [(tok, n) for (g, tok), n in run.whole.missed.most_common() if g == cls]
                print(f"  missed {cls}: " + ", ".join(f"{t!r}x{n}" for t, n in missed[:args.errors]))
                spurious = [(f"{tok!r}[{by}]", n) for (p, by, tok), n in run.whole.spurious.most_common()
                            if p == cls]
                print(f"  spurious {cls}: " + ", ".join(f"{t}x{n}" for t, n in spurious[:args.errors]))
    print(f"median analysis time {statistics.median(run.whole.ms):.2f} ms/sentence (cached evidence)")
    if args.no_sweep:
        return
    # Each class's knobs move its own figures (token classes hardly interact), so the
    # persons' and the places' knobs are swept separately, the other class held as it is.
    person_grid = [replace(current, add_person=a, veto_person=v)
                   for a, v in itertools.product(ADD, VETO_PERSON)]
    place_grid = [replace(current, add_location=a, veto_location=v)
                  for a, v in itertools.product(ADD, VETO_LOCATION)]
    people = list(zip(person_grid, scorer.scores(person_grid), strict=True))
    places = list(zip(place_grid, scorer.scores(place_grid), strict=True))
    ap_, al = choose(people, "PERSON"), choose(places, "LOCATION")
    chosen = replace(current, add_person=ap_.add_person, veto_person=ap_.veto_person,
                     add_location=al.add_location, veto_location=al.veto_location)
    now, sc = scorer.scores([current, chosen])
    print(line(f"pooled, current {current}", now))
    print(line(f"pooled, chosen  {chosen}", sc))
    for cls, results in (("PERSON", people), ("LOCATION", places)):
        print(f"{cls} sweep, best 5 by F2:")
        for a, s in sorted(results, key=lambda r: -r[1].row(cls)[2])[:5]:
            print(line(f"  {a}", s))


if __name__ == "__main__":
    main()
