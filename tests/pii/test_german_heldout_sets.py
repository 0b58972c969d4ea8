"""The German evaluation splits: fixed in code, frozen on disk, held-out parts never packaged."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from appliance.pii.de import germeval, ler

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data" / "pii"
sys.path.insert(0, str(ROOT / "benchmarks"))

import de_registers  # noqa: E402

#: The hand-written register set as committed before any tuning; changing the file is
#: changing the held-out figure, so this hash may only change with a note saying why.
REGISTERS_SHA256 = "b3721f6fd5a55156f368344418efcdb73b26cd5a2584ecce2f16cb598761d8e1"


def test_hand_written_register_set_is_frozen() -> None:
    assert hashlib.sha256(de_registers.FILE.read_bytes()).hexdigest() == REGISTERS_SHA256


def test_register_set_covers_every_register_with_persons_and_places() -> None:
    samples = de_registers.load()
    assert {s.register for s in samples} == set(de_registers.REGISTERS)
    for register in de_registers.REGISTERS:
        classes = {c for s in samples if s.register == register for *_, c in s.spans}
        assert {"PER", "LOC"} <= classes, register
    for s in samples:
        assert all(s.text[a:b].strip() == s.text[a:b] and a < b for a, b, _ in s.spans)


def test_register_markup_is_parsed_into_spans() -> None:
    (sample,) = de_registers.parse("@ chat\nhallo {PER:Tim} aus {LOC:Köln}")
    assert sample.text == "hallo Tim aus Köln"
    assert [(sample.text[a:b], c) for a, b, c in sample.spans] == [("Tim", "PER"), ("Köln", "LOC")]
    with pytest.raises(ValueError):
        de_registers.parse("@ diary\nnichts")


def test_germeval_cut_trains_on_half_the_test_file_and_tunes_on_the_dev_file() -> None:
    dev = [((f"d{i}", "O"),) for i in range(4)]
    test = [((f"t{i}", "O"),) for i in range(7)]
    parts = germeval.split(dev, test)
    assert parts.train == test[:3] and parts.tune == dev and parts.held_out == test[3:]


def test_germeval_reader_maps_outer_tags_to_the_taggers_labels() -> None:
    text = ("1\tHerr\tO\tO\n2\tMax\tB-PER\tO\n3\tMüller\tI-PER\tO\n4\taus\tO\tO\n"
            "5\tder\tO\tO\n6\tUniversität\tB-ORG\tO\n7\tKöln\tI-ORG\tB-LOC\n8\tfuhr\tO\tO\n"
            "9\tnach\tO\tO\n10\tBonn\tB-LOC\tO\n11\tdeutsche\tB-LOCderiv\tO\n\n1\tJa\tO\tO\n")
    sentences = germeval.read_tsv(text)
    assert len(sentences) == 2
    sample = germeval.to_sample(sentences[0])
    assert [(sample.text[a:b], label) for a, b, label in sample.spans] == [
        ("Max Müller", "PER"), ("Bonn", "LOC")]


@pytest.mark.skipif(not (SHARED / germeval.TEST_FILE).is_file(), reason="no evaluation files here")
def test_package_holds_the_germeval_train_and_tune_parts_and_nothing_held_out() -> None:
    parts = germeval.read_split(SHARED)
    train, tune = germeval.packaged()
    assert list(train) == parts.train and list(tune) == parts.tune
    assert len(parts.held_out) == germeval.TEST_SENTENCES // 2


@pytest.mark.skipif(not (SHARED / "ler_dev.conll").is_file(), reason="no evaluation files here")
def test_no_held_out_part_is_in_the_package() -> None:
    """Neither LER's TEST half nor GermEval's held-out half ships (sentences that also
    occur word for word in a training part aside)."""
    _, ler_test = ler.split_halves(ler.read_conll((SHARED / "ler_dev.conll").read_text("utf-8")))
    packaged = set(ler.dev_half()) | set().union(*map(set, germeval.packaged()))
    assert sum(s in packaged for s in ler_test) < len(ler_test) // 20
    held = germeval.read_split(SHARED).held_out
    assert sum(s in packaged for s in held) < len(held) // 50
