"""Build the German tagger offline, once, and find it again: the recipe of ``de-ner``.

``python -m appliance.pii.de.build [DIR]`` builds into DIR (default: the cache
directory below). The analyzer calls :func:`ensure_model`, which builds in a child
process (torch stays out of the analyzer workers) under a file lock, so racing workers
and test processes build it once. The cache key covers the recipe and the code that
shapes the training data, so a change to either builds a new model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.pii.de.recognizer import META_FILE, MODEL_FILE

if TYPE_CHECKING:  # torch stays out of the analyzer workers that import this module
    from appliance.pii.de.synth import Sample
    from appliance.pii.de.train import Recipe

log = logging.getLogger(__name__)

#: Environment variable naming the model directory (wins over the cache default).
ENV_DIR = "APPLIANCE_DE_NER_DIR"
_SOURCES = ("features.py", "lexicon.py", "synth.py", "train.py", "wiktionary.py", "ler.py")


def fingerprint() -> str:
    """Hash of the recipe code, the packaged LER DEV half and the word lists' versions."""
    from importlib.metadata import version

    from appliance.pii.de.ler import data_digest

    h = hashlib.sha256()
    here = Path(__file__).parent
    for name in _SOURCES:
        h.update((here / name).read_bytes())
    h.update(data_digest().encode())
    for dist in ("faker", "zufallsworte", "german-nouns", "torch"):
        h.update(version(dist).encode())
    return h.hexdigest()[:12]


def default_model_dir() -> Path:
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "appliance" / f"de-ner-{fingerprint()}"


def is_built(model_dir: Path) -> bool:
    return (model_dir / MODEL_FILE).is_file() and (model_dir / META_FILE).is_file()


def build_model(out: Path, progress: Callable[[str], None] = log.info,
                recipe: Recipe | None = None, real: Sequence[Sample] | None = None,
                ) -> dict[str, object]:
    """Generate data, train, export: fills the empty directory ``out``; returns the meta.

    ``real`` is the labelled real text mixed in (default: the packaged LER DEV half);
    benchmarks/de_ner_folds.py passes a quarter of it to choose thresholds honestly.
    """
    from appliance.models.build_cache import exit_with_parent
    from appliance.pii.de.ler import dev_half_samples
    from appliance.pii.de.lexicon import load_lexicon
    from appliance.pii.de.synth import generate
    from appliance.pii.de.train import (
        Ensemble,
        Recipe,
        build_vocab,
        export,
        from_weights,
        train,
        train_member,
    )

    started = time.perf_counter()
    recipe = recipe or Recipe()
    real = dev_half_samples() if real is None else real
    lex = load_lexicon()
    seeds = [recipe.seed + k for k in range(recipe.members)]
    mixed = oversample(real, recipe)
    texts = {seed: generate(lex, recipe.samples, seed) + mixed for seed in seeds}
    progress(f"de-ner: {recipe.members} x ({recipe.samples} generated + {len(mixed)} real) "
             f"samples in {time.perf_counter() - started:.1f} s")
    vocab = build_vocab([s for samples in texts.values() for s in samples], recipe)
    workers = min(recipe.members, os.cpu_count() or 1)
    if workers > 1:
        # One single-threaded member per core: same weights as one after the other (each
        # seeds its own torch RNG), in about half the time on the 2 cores CI has.
        progress(f"de-ner: training the taggers of seeds {seeds} in {workers} processes")
        jobs = [(texts[seed], recipe, vocab, seed) for seed in seeds]
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=exit_with_parent, initargs=(os.getpid(),)) as pool:
            members = [from_weights(w, recipe, vocab) for w in pool.map(train_member, jobs)]
    else:
        members = []
        for seed in seeds:
            progress(f"de-ner: training the tagger of seed {seed}")
            members.append(train(texts[seed], lex, recipe, progress, vocab=vocab, seed=seed)[0])
    export(Ensemble(members), out / MODEL_FILE)
    from appliance.pii.de.features import FLAGS, TAGS

    meta: dict[str, object] = {
        "name": "de-ner", "tags": list(TAGS), "flags": list(FLAGS), "vocab": vocab,
        "recipe": dataclasses.asdict(recipe), "fingerprint": fingerprint(),
        "real_sentences": len(real),
        "build_seconds": round(time.perf_counter() - started, 1),
    }
    (out / META_FILE).write_text(json.dumps(meta, ensure_ascii=False), "utf-8")
    progress(f"de-ner: built in {meta['build_seconds']} s, "
             f"{(out / MODEL_FILE).stat().st_size / 1e6:.1f} MB")
    return meta


def oversample(real: Sequence[Sample], recipe: Recipe) -> list[Sample]:
    """``real_repeat`` copies of every real sentence, plus extra ones of those with entities."""
    with_entities = [s for s in real if s.spans]
    return [*real] * recipe.real_repeat + with_entities * recipe.real_entity_repeat


def ensure_model(model_dir: Path | None = None) -> Path:
    """The model directory, built first (in a child process) if it is missing."""
    from appliance.models.build_cache import build_once

    target = model_dir or default_model_dir()

    def _build(tmp: Path) -> None:
        log.info("German NER model missing at %s: building it offline (once, about a minute)",
                 target)
        subprocess.run([sys.executable, "-m", "appliance.pii.de.build", str(tmp)], check=True)

    return build_once(target, _build, is_done=is_built)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    if args:
        from appliance.models.build_cache import exit_with_parent

        exit_with_parent(os.getppid())
        out = Path(args[0])
        out.mkdir(parents=True, exist_ok=True)
        build_model(out)
    else:
        print(ensure_model())
    return 0


if __name__ == "__main__":
    sys.exit(main())
