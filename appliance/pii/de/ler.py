"""The LER corpus (German court decisions, IOB2) and its one dev/test split.

Real in-domain labels are what the generated text cannot give the tagger (how courts
write names, places and their many look-alikes), but only the DEV half of
``ler_dev.conll`` may be learnt from: the TEST half is the held-out figure. This module
is the single place that splits the file (the benchmark imports it, so the two can
never drift), maps LER's classes to the scored ones, and reads the DEV half the package
ships in ``data/`` (see ``data/NOTICE.txt``).

``python -m appliance.pii.de.ler SRC`` rewrites the packaged file from a copy of
``ler_dev.conll`` (byte-identical output for the same input).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import sys
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TypeVar

from appliance.pii.de.synth import Sample

#: The packaged DEV half: the first half of ler_dev.conll's sentences in file order.
DATA_FILE = Path(__file__).parent / "data" / "ler_dev_half.conll.gz"
#: Sentences in the whole ler_dev.conll; its first half is what the package ships.
FULL_SENTENCES = 6666

#: LER classes by what the appliance (and the benchmark) make of them.
PERSON_CLASSES = ("PER", "RR", "AN")  # persons, judges, lawyers
PLACE_CLASSES = ("LD", "ST", "STR", "LDS")  # countries, towns, streets, landscapes
ORGANISATION_CLASSES = ("ORG", "UN", "INN", "GRT", "MRK")  # not personal data, not scored
#: LER class -> the tagger's label; every other class (laws, case law, literature,
#: organisations) is an ordinary word to the tagger, as for the benchmark's scoring.
TAGGER_LABEL = {**dict.fromkeys(PERSON_CLASSES, "PER"), **dict.fromkeys(PLACE_CLASSES, "LOC")}

Sentence = tuple[tuple[str, str], ...]  # (word, IOB2 tag) per token
T = TypeVar("T")


def read_conll(text: str) -> list[Sentence]:
    """Sentences of a CoNLL text: one ``word tag`` per line, a blank line between them."""
    out: list[Sentence] = []
    words: list[tuple[str, str]] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 2:
            if words:
                out.append(tuple(words))
            words = []
        else:
            words.append((parts[0], parts[1]))
    if words:
        out.append(tuple(words))
    return out


def split_halves(sentences: Sequence[T]) -> tuple[list[T], list[T]]:
    """(DEV, TEST): the first half in file order, and the second (held out)."""
    cut = len(sentences) // 2
    return list(sentences[:cut]), list(sentences[cut:])


def sentence_text(sentence: Sentence) -> tuple[str, list[tuple[int, int, str]]]:
    """The words joined by single spaces, and each word's (start, end, IOB2 tag)."""
    text, words = "", []
    for word, tag in sentence:
        if text:
            text += " "
        words.append((len(text), len(text) + len(word), tag))
        text += word
    return text, words


def to_sample(sentence: Sentence) -> Sample:
    """A training sample: PER/LOC spans over the words, everything else unlabelled."""
    text, words = sentence_text(sentence)
    spans: list[tuple[int, int, str]] = []
    open_label: str | None = None
    for start, end, tag in words:
        label = TAGGER_LABEL.get(tag[2:]) if tag != "O" else None
        if label and tag.startswith("I-") and open_label == label:
            spans[-1] = (spans[-1][0], end, label)
        elif label:
            spans.append((start, end, label))
        open_label = label
    return Sample(text, tuple(spans))


@cache
def dev_half() -> tuple[Sentence, ...]:
    """The packaged DEV half, read once per process."""
    with gzip.open(DATA_FILE, "rt", encoding="utf-8") as f:
        return tuple(read_conll(f.read()))


def dev_half_samples() -> list[Sample]:
    return [to_sample(s) for s in dev_half()]


def data_digest() -> str:
    """SHA-256 of the packaged file: part of the tagger's build fingerprint."""
    return hashlib.sha256(DATA_FILE.read_bytes()).hexdigest()


def write_dev_half(source: Path, target: Path = DATA_FILE) -> int:
    """Write the DEV half of ``source`` (the whole ler_dev.conll) gzipped; returns its size."""
    sentences = read_conll(source.read_text("utf-8"))
    if len(sentences) != FULL_SENTENCES:
        raise ValueError(f"{source}: {len(sentences)} sentences, expected {FULL_SENTENCES}")
    dev, _test = split_halves(sentences)
    body = "\n\n".join("\n".join(f"{w} {t}" for w, t in s) for s in dev) + "\n"
    buf = io.BytesIO()
    # mtime 0 and no file name: the same input gives the same bytes (and fingerprint).
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(body.encode("utf-8"))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(buf.getvalue())
    return len(dev)


if __name__ == "__main__":
    print(write_dev_half(Path(sys.argv[1])), "sentences written to", DATA_FILE)
