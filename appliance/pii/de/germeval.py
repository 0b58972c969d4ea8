"""GermEval 2014 (German Wikipedia and news, persons and places marked) and its one split.

General German is what the court decisions of :mod:`.ler` cannot teach the tagger, and
GermEval's 7,300 sentences (the README says 7,298; the test file holds 5,100) are the
only other labelled German text the appliance may learn from (CC BY 4.0, see
``data/NOTICE.txt``). Its two files are cut once, here, and the benchmark imports the cut, so what the tagger learns and what it is scored on can
never drift apart. The cut was fixed before any model was trained or scored on it:

* ``train``: the first half of ``germeval2014_test.tsv`` in file order (2,550 sentences);
* ``tune``: all of ``germeval2014_dev.tsv`` (2,200): thresholds and recipes are chosen
  on it with a model that learnt ``train`` only; errors are read only here;
* ``held_out``: the second half of ``germeval2014_test.tsv`` (2,550): never trained on,
  tuned on or read for errors; its figure is the one quoted.

The shipped tagger learns ``train`` and ``tune`` (the package holds both, gzipped, with
the notice); the held-out half is not in the package.

Classes: PER is a person, LOC a place; ORG and OTH are named things that are neither
(organisations, works, events) and are not scored; the ``deriv`` variants ("deutsche")
are ordinary words and the ``part`` variants ("Berlin-Marathon") are not scored. Only the
outer tag counts: a place inside an organisation's name ("Universität Köln") is part of
that name, as in LER.

``python -m appliance.pii.de.germeval DIR`` rewrites the packaged file from the two
files in DIR (byte-identical output for the same input).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from appliance.pii.de.synth import Sample

DEV_FILE = "germeval2014_dev.tsv"
TEST_FILE = "germeval2014_test.tsv"
#: The packaged dev parts (train, then tune), one ``word tag`` per line like LER.
DATA_FILE = Path(__file__).parent / "data" / "germeval2014_train_tune.conll.gz"
DEV_SENTENCES = 2200
TEST_SENTENCES = 5100  # the README says 5,098; the file holds 5,100

#: GermEval outer tag -> the tagger's label ("PER", "LOC") or None (ordinary word).
TAGGER_LABEL = {"PER": "PER", "LOC": "LOC"}
#: Tags left out of the scores: named things that are no person or place, and words
#: that only contain one ("part").
UNSCORED_CLASSES = ("ORG", "OTH", "ORGpart", "OTHpart", "PERpart", "LOCpart",
                    "ORGderiv", "OTHderiv")
#: Scored as ordinary words: adjectives of a place or person ("deutsche", "kafkaesk").
ORDINARY_CLASSES = ("LOCderiv", "PERderiv")

Sentence = tuple[tuple[str, str], ...]  # (word, outer IOB2 tag) per token


@dataclass(frozen=True)
class Parts:
    train: list[Sentence]
    tune: list[Sentence]
    held_out: list[Sentence]


def read_tsv(text: str) -> list[Sentence]:
    """Sentences of a GermEval file: ``index word outer inner`` per line, blank between."""
    out: list[Sentence] = []
    words: list[tuple[str, str]] = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) < 3 or not parts[1]:
            if words:
                out.append(tuple(words))
            words = []
        else:
            words.append((parts[1], parts[2]))
    if words:
        out.append(tuple(words))
    return out


def split(dev: Sequence[Sentence], test: Sequence[Sentence]) -> Parts:
    """The one cut (module docstring): ``dev`` and ``test`` are the two files' sentences."""
    cut = len(test) // 2
    return Parts(train=list(test[:cut]), tune=list(dev), held_out=list(test[cut:]))


def read_split(directory: Path) -> Parts:
    """The three parts from the two files in ``directory`` (``../shared/data/pii``)."""
    dev = read_tsv((directory / DEV_FILE).read_text("utf-8"))
    test = read_tsv((directory / TEST_FILE).read_text("utf-8"))
    if (len(dev), len(test)) != (DEV_SENTENCES, TEST_SENTENCES):
        raise ValueError(f"{directory}: {len(dev)} + {len(test)} sentences, expected "
                         f"{DEV_SENTENCES} + {TEST_SENTENCES}")
    return split(dev, test)


def to_sample(sentence: Sentence) -> Sample:
    """A training sample: PER/LOC spans over the words joined by single spaces."""
    text, spans = "", list[tuple[int, int, str]]()
    open_label: str | None = None
    for word, tag in sentence:
        if text:
            text += " "
        start = len(text)
        text += word
        label = TAGGER_LABEL.get(tag[2:]) if tag != "O" else None
        if label and tag.startswith("I-") and open_label == label and spans:
            spans[-1] = (spans[-1][0], len(text), label)
        elif label:
            spans.append((start, len(text), label))
        open_label = label
    return Sample(text, tuple(spans))


@cache
def packaged() -> tuple[tuple[Sentence, ...], tuple[Sentence, ...]]:
    """(train, tune) as the package ships them, read once per process."""
    with gzip.open(DATA_FILE, "rt", encoding="utf-8") as f:
        body = f.read()
    train_text, tune_text = body.split("\n\n#tune\n\n", 1)
    from appliance.pii.de.ler import read_conll

    return tuple(read_conll(train_text)), tuple(read_conll(tune_text))


def train_samples() -> list[Sample]:
    return [to_sample(s) for s in packaged()[0]]


def tune_samples() -> list[Sample]:
    return [to_sample(s) for s in packaged()[1]]


def data_digest() -> str:
    """SHA-256 of the packaged file: part of the tagger's build fingerprint."""
    return hashlib.sha256(DATA_FILE.read_bytes()).hexdigest()


def write_packaged(directory: Path, target: Path = DATA_FILE) -> tuple[int, int]:
    """Write the train and tune parts gzipped (never the held-out part); their sizes."""
    parts = read_split(directory)

    def conll(sentences: Sequence[Sentence]) -> str:
        return "\n\n".join("\n".join(f"{w} {t}" for w, t in s) for s in sentences)

    body = conll(parts.train) + "\n\n#tune\n\n" + conll(parts.tune) + "\n"
    buf = io.BytesIO()
    # mtime 0 and no file name: the same input gives the same bytes (and fingerprint).
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(body.encode("utf-8"))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(buf.getvalue())
    return len(parts.train), len(parts.tune)


if __name__ == "__main__":
    print(write_packaged(Path(sys.argv[1])), "sentences (train, tune) written to", DATA_FILE)
