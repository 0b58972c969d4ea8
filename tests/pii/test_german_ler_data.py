"""The real labelled text the German tagger learns from: the LER DEV half, and only it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from appliance.pii.de import ler
from appliance.pii.de.build import fingerprint, oversample
from appliance.pii.de.features import TAGS
from appliance.pii.de.train import Recipe

SHARED_LER = Path(__file__).resolve().parents[3] / "shared" / "data" / "pii" / "ler_dev.conll"


def test_split_takes_the_first_half_in_file_order_as_dev() -> None:
    dev, test = ler.split_halves(list(range(7)))
    assert dev == [0, 1, 2] and test == [3, 4, 5, 6]


def test_conll_reader_handles_crlf_and_blank_lines() -> None:
    text = "Herr O\r\nMüller B-PER\r\n\r\n\r\nin O\r\nKöln B-ST\r\n"
    assert ler.read_conll(text) == [(("Herr", "O"), ("Müller", "B-PER")),
                                    (("in", "O"), ("Köln", "B-ST"))]


def test_ler_classes_map_to_the_taggers_labels_as_the_benchmark_scores_them() -> None:
    sentence = (("Richter", "O"), ("Dr.", "B-RR"), ("Fischer", "I-RR"), ("und", "O"),
                ("A", "B-PER"), ("B", "B-PER"), ("vom", "O"), ("OLG", "B-GRT"),
                ("Frankfurt", "I-GRT"), ("in", "O"), ("Frankfurt", "B-ST"), ("am", "I-ST"),
                ("Main", "I-ST"), ("nach", "O"), ("§", "B-GS"), ("3", "I-GS"), ("Hauptstr.", "B-STR"))
    sample = ler.to_sample(sentence)
    assert [(sample.text[a:b], label) for a, b, label in sample.spans] == [
        ("Dr. Fischer", "PER"), ("A", "PER"), ("B", "PER"),
        ("Frankfurt am Main", "LOC"), ("Hauptstr.", "LOC")]
    tags = [TAGS[t] for t in sample.tags()]
    # Two persons side by side stay two persons; the court's town is an ordinary word.
    assert tags[5:7] == ["B-PER", "B-PER"] and tags[8:10] == ["O", "O"]


def test_the_package_ships_the_dev_half_with_entities_of_both_kinds() -> None:
    sentences = ler.dev_half()
    assert len(sentences) == ler.FULL_SENTENCES // 2
    labels = [label for s in ler.dev_half_samples() for *_, label in s.spans]
    assert labels.count("PER") > 100 and labels.count("LOC") > 80
    assert (ler.DATA_FILE.parent / "NOTICE.txt").is_file()


@pytest.mark.skipif(not SHARED_LER.is_file(), reason="the evaluation file is not on this machine")
def test_packaged_file_is_exactly_the_dev_half() -> None:
    """Sentence for sentence, in file order; the TEST half is not in the package."""
    dev, test = ler.split_halves(ler.read_conll(SHARED_LER.read_text("utf-8")))
    assert list(ler.dev_half()) == dev and len(dev) + len(test) == ler.FULL_SENTENCES


def test_real_sentences_are_oversampled_next_to_the_generated_ones() -> None:
    samples = ler.dev_half_samples()[:40]
    with_entities = sum(1 for s in samples if s.spans)
    recipe = replace(Recipe(), real_repeat=3, real_entity_repeat=2)
    mixed = oversample(samples, recipe)
    assert len(mixed) == 3 * len(samples) + 2 * with_entities
    assert oversample(samples, replace(recipe, real_repeat=0, real_entity_repeat=0)) == []


def test_build_fingerprint_covers_the_packaged_data(monkeypatch: pytest.MonkeyPatch) -> None:
    before = fingerprint()
    monkeypatch.setattr(ler, "data_digest", lambda: "another file")
    assert fingerprint() != before
