"""Build the German tagger offline, once, and find it again: the recipe of ``de-ner``.

``python -m appliance.pii.de.build [DIR]`` builds into DIR (default: the cache
directory below). The analyzer calls :func:`ensure_model`, which builds in a child
process (torch stays out of the analyzer workers) under a file lock, so racing workers
and test processes build it once; ``serve`` calls it before the workers start, with a
progress report. The child reports its progress (data, then every training batch of
every ensemble member, then the export) through the pipe the parent hands it. The cache
key covers the recipe and the code that shapes the training data, so a change to either
builds a new model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.progress import Report, log_report

if TYPE_CHECKING:  # torch stays out of the analyzer workers that import this module
    from appliance.pii.de.synth import Sample
    from appliance.pii.de.train import Recipe

log = logging.getLogger(__name__)
_LOGGED: Report = log_report(log)

#: Environment variable naming the model directory (wins over the cache default).
ENV_DIR = "APPLIANCE_DE_NER_DIR"
#: The built model's files (the recognizer reads them from here).
MODEL_FILE = "model.onnx"
META_FILE = "meta.json"
_SOURCES = ("features.py", "lexicon.py", "synth.py", "train.py", "wiktionary.py", "ler.py")
#: The packaged LER DEV half (:data:`appliance.pii.de.ler.DATA_FILE`), by path: finding
#: the model must not import the recipe (it pulls in Presidio and the word lists, seconds
#: and hundreds of MB in the server process that only checks whether the model is built).
_LER_DATA = Path(__file__).parent / "data" / "ler_dev_half.conll.gz"


def fingerprint() -> str:
    """Hash of the recipe code, the packaged LER DEV half and the word lists' versions."""
    from importlib.metadata import version

    h = hashlib.sha256()
    here = Path(__file__).parent
    for name in _SOURCES:
        h.update((here / name).read_bytes())
    h.update(hashlib.sha256(_LER_DATA.read_bytes()).hexdigest().encode())
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


#: Shares of the build's progress: data (word lists, generated text, vocabulary), the
#: training batches, the export.
_DATA_SHARE, _TRAIN_SHARE = 0.08, 0.9
#: Seconds the default recipe's build takes on the 2-core kind of machine CI has
#: (measured), for the first line of a first start: finding it out from the recipe would
#: import torch into the server. The progress bar follows the training's measured pace
#: once it runs; whoever changes the recipe's cost updates this.
EXPECTED_S = 176.0


def build_model(out: Path, progress: Report = _LOGGED,
                recipe: Recipe | None = None, real: Sequence[Sample] | None = None,
                ) -> dict[str, object]:
    """Generate data, train, export: fills the empty directory ``out``; returns the meta.

    ``real`` is the labelled real text mixed in (default: the packaged LER DEV half);
    benchmarks/de_ner_folds.py passes a quarter of it to choose thresholds honestly.
    """
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
    )

    started = time.perf_counter()
    recipe = recipe or Recipe()
    progress("loading word lists and the real sentences", 0.0)
    real = dev_half_samples() if real is None else real
    lex = load_lexicon()
    progress("generating training text", _DATA_SHARE / 2)
    seeds = [recipe.seed + k for k in range(recipe.members)]
    mixed = oversample(real, recipe)
    texts = {seed: generate(lex, recipe.samples, seed) + mixed for seed in seeds}
    progress(f"{recipe.members} x ({recipe.samples} generated + {len(mixed)} real) "
             f"samples in {time.perf_counter() - started:.1f} s")
    vocab = build_vocab([s for samples in texts.values() for s in samples], recipe)
    workers = min(recipe.members, os.cpu_count() or 1)

    def trained(fraction: float) -> None:
        progress("", _DATA_SHARE + _TRAIN_SHARE * fraction)

    if workers > 1:
        # One single-threaded member per core: same weights as one after the other (each
        # seeds its own torch RNG), in about half the time on the 2 cores CI has.
        progress(f"training the taggers of seeds {seeds} in {workers} processes", _DATA_SHARE)
        jobs = [(texts[seed], recipe, vocab, seed) for seed in seeds]
        weights = _train_in_processes(jobs, workers, trained)
        members = [from_weights(w, recipe, vocab) for w in weights]
    else:
        members = []
        for k, seed in enumerate(seeds):
            progress(f"training the tagger of seed {seed}", _DATA_SHARE)

            def tick(done: int, total: int, k: int = k) -> None:
                trained((k + done / total) / len(seeds))

            members.append(train(texts[seed], lex, recipe, vocab=vocab, seed=seed,
                                 tick=tick)[0])
    progress("exporting the ensemble to ONNX", _DATA_SHARE + _TRAIN_SHARE)
    export(Ensemble(members), out / MODEL_FILE)
    from appliance.pii.de.features import FLAGS, TAGS

    meta: dict[str, object] = {
        "name": "de-ner", "tags": list(TAGS), "flags": list(FLAGS), "vocab": vocab,
        "recipe": dataclasses.asdict(recipe), "fingerprint": fingerprint(),
        "real_sentences": len(real),
        "build_seconds": round(time.perf_counter() - started, 1),
    }
    (out / META_FILE).write_text(json.dumps(meta, ensure_ascii=False), "utf-8")
    progress(f"built in {meta['build_seconds']} s, "
             f"{(out / MODEL_FILE).stat().st_size / 1e6:.1f} MB", 1.0)
    return meta


#: In a training worker: the array its member's progress goes to (set by the pool's
#: initializer, the one way to hand a shared array to a pool's processes).
_PROGRESS: Any = None


def _start_trainer(parent: int, shared: Any) -> None:
    from appliance.models.build_cache import exit_with_parent

    global _PROGRESS
    exit_with_parent(parent)
    _PROGRESS = shared


def _train_counting(job: tuple[int, Any]) -> Any:
    """One member (``train_member``), its batches counted in the shared array."""
    from appliance.pii.de.train import train_member

    index, member_job = job

    def tick(done: int, total: int) -> None:
        _PROGRESS[2 * index] = done
        _PROGRESS[2 * index + 1] = total

    return train_member(member_job, tick=tick)


def _train_in_processes(jobs: list[Any], workers: int,
                        trained: Callable[[float], None]) -> list[Any]:
    """The members' weights, trained in ``workers`` processes; ``trained(fraction)`` is
    told about every batch of all members together (polled twice a second)."""
    ctx = multiprocessing.get_context("spawn")
    shared = ctx.Array("q", 2 * len(jobs), lock=False)
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_start_trainer,
                             initargs=(os.getpid(), shared)) as pool:
        futures = [pool.submit(_train_counting, (k, job)) for k, job in enumerate(jobs)]
        while True:
            done, pending = wait(futures, timeout=0.5, return_when=FIRST_EXCEPTION)
            totals = [shared[2 * k + 1] for k in range(len(jobs))]
            if all(totals):
                trained(sum(shared[2 * k] for k in range(len(jobs))) / sum(totals))
            if not pending or any(f.exception() for f in done):
                break
        return [f.result() for f in futures]


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
