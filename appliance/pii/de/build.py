"""Build the German tagger offline, once, and find it again: the recipe of ``de-ner``.

``python -m appliance.pii.de.build [DIR]`` builds into DIR (default: the cache
directory below). ``serve`` and the analyzer call :func:`ensure_model`, which builds in a
child process (its memory is returned when it exits) under a file lock, so racing workers
and test processes build it once; the child reports its progress (data, features, every
epoch, the save) through the pipe the parent hands it. The cache key covers the recipe and
the code that shapes the training data, so a change to either builds a new model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.pii.de.features import TAGS
from appliance.pii.de.train import META_FILE, MODEL_FILE, Recipe
from appliance.progress import Report, log_report
from appliance.models.prepare import Step

if TYPE_CHECKING:
    from appliance.pii.de.synth import Sample

log = logging.getLogger(__name__)
_LOGGED: Report = log_report(log)

#: Environment variable naming the model directory (wins over the cache default).
ENV_DIR = "APPLIANCE_DE_NER_DIR"
_SOURCES = ("features.py", "lexicon.py", "synth.py", "train.py", "wiktionary.py", "ler.py",
            "germeval.py", "places.py")


def fingerprint() -> str:
    """Hash of the recipe code, the packaged real text and the word lists' versions."""
    from importlib.metadata import version

    from appliance.pii.de import germeval, ler, places

    h = hashlib.sha256()
    here = Path(__file__).parent
    for name in _SOURCES:
        h.update((here / name).read_bytes())
    h.update(ler.data_digest().encode())
    h.update(germeval.data_digest().encode())
    h.update(places.data_digest().encode())
    for dist in ("faker", "zufallsworte", "german-nouns", "wordfreq", "numpy"):
        h.update(version(dist).encode())
    return h.hexdigest()[:12]


def default_model_dir() -> Path:
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "appliance" / f"de-ner-{fingerprint()}"


def is_built(model_dir: Path) -> bool:
    return (model_dir / MODEL_FILE).is_file() and (model_dir / META_FILE).is_file()


#: Seconds the default recipe's build takes on two quiet cores (measured: about 22 s of
#: CPU, one thread), for the first line of a first start; the bar then follows the
#: build's own pace. Whoever changes the recipe's cost updates this.
EXPECTED_S = 30.0


def build_model(out: Path, progress: Report = _LOGGED,
                recipe: Recipe | None = None, real: Sequence[Sample] | None = None,
                general: Sequence[Sample] | None = None) -> dict[str, object]:
    """Generate data, featurize, train, save: fills the empty directory ``out``; returns the meta.

    ``real`` is the labelled court text mixed in (default: the packaged LER DEV half) and
    ``general`` the labelled general German (default: GermEval's packaged train and tune
    parts); benchmarks/de_ner_folds.py passes parts of them to tune on the rest honestly.
    Progress is reported per stage and epoch, with the share of the build done.
    """
    from appliance.pii.de import germeval
    from appliance.pii.de.features import Featurizer
    from appliance.pii.de.ler import dev_half_samples
    from appliance.pii.de.lexicon import load_lexicon
    from appliance.pii.de.synth import generate
    from appliance.pii.de.train import featurize, fit, save

    started = time.perf_counter()

    def say(share: float, what: str) -> None:
        progress(what, share)

    recipe = recipe or Recipe()
    real = dev_half_samples() if real is None else real
    general = germeval.train_samples() + germeval.tune_samples() if general is None else general
    lex = load_lexicon()
    say(0.05, "word lists loaded")
    samples = (generate(lex, recipe.samples, recipe.seed) + oversample(real, recipe)
               + [*general] * recipe.germeval_repeat)
    say(0.10, f"{len(samples)} samples ({recipe.samples} generated, {len(real)} court, "
              f"{len(general)} general sentences)")
    featurizer = Featurizer(lex, cache_words=2_000_000)  # a build's words are finite
    data = featurize(samples, featurizer,
                     lambda done: say(0.10 + 0.35 * done, f"features of {done:.0%} of the samples"))
    say(0.45, f"{len(data.tags)} tokens, {len(data.ids)} feature ids")
    weights, bias = fit(data, recipe, lambda epoch, loss: say(
        0.45 + 0.5 * epoch / recipe.epochs, f"epoch {epoch}/{recipe.epochs}, loss {loss:.4f}"))
    save(out / MODEL_FILE, weights, bias)
    from appliance.pii.de.features import BUCKETS

    meta: dict[str, object] = {
        "name": "de-ner", "tags": list(TAGS), "buckets": BUCKETS,
        "recipe": dataclasses.asdict(recipe), "fingerprint": fingerprint(),
        "real_sentences": len(real), "general_sentences": len(general),
        "tokens": len(data.tags),
        "build_seconds": round(time.perf_counter() - started, 1),
    }
    (out / META_FILE).write_text(json.dumps(meta, ensure_ascii=False), "utf-8")
    say(1.0, f"built, {(out / MODEL_FILE).stat().st_size / 1e6:.1f} MB")
    return meta


def oversample(real: Sequence[Sample], recipe: Recipe) -> list[Sample]:
    """``real_repeat`` copies of every real sentence, plus extra ones of those with entities."""
    with_entities = [s for s in real if s.spans]
    return [*real] * recipe.real_repeat + with_entities * recipe.real_entity_repeat


def ensure_model(model_dir: Path | None = None, *, report: Report | None = None,
                 nice: int = 0) -> Path:
    """The model directory, built first (in a child process) if it is missing.

    ``report`` receives the child's progress (``serve`` passes its progress bar's step);
    without one the phases are logged. ``nice`` lowers the child's priority.
    """
    from appliance.models.child import build_in_child

    target = model_dir or default_model_dir()
    if is_built(target):
        return target
    if report is None:
        log.info("German NER model missing at %s: building it offline (once, about %.0f s)",
                 target, EXPECTED_S)
    return build_in_child(target, "appliance.pii.de.build", [], report or _LOGGED,
                          is_done=is_built, nice=nice)


def build_step() -> Step:
    """The first-start step that trains the tagger into the cache directory."""

    target = default_model_dir()
    return Step(
        "de-ner", "German persons and places (PII), trained offline", target, is_built,
        EXPECTED_S,
        lambda report, nice: ensure_model(target, report=report, nice=nice),
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args:
        from appliance.models.child import child_main

        return child_main(lambda out, report: build_model(out, report), args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    print(ensure_model())
    return 0


if __name__ == "__main__":
    sys.exit(main())
