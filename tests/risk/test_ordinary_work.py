"""Ordinary work is not an Annex III use: vocabulary alone tags nothing.

The first rows are the false blocks reported in the issue "The first hour"; each is
paired with a request that really asks the model to perform the Annex III function,
which must stay high-risk. Then the taxonomy's ``ordinary_work`` section on its own.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.errors import ConfigError
from appliance.risk.classifier import RiskClassifier
from appliance.risk.taxonomy import load_taxonomy

ORDINARY = [
    "My colleague John Smith (john@example.com) wrote a note about the quarterly plan.",
    "Write a note to Sarah Lee (sarah.lee@example.com) confirming our meeting on Monday.",
    "Write an announcement of the fire-safety training for all employees next Tuesday.",
    "Explain 'credit score' in two sentences for our customer glossary.",
    "Erkläre den Begriff „Bonität“ für unser Kundenglossar.",
    "His social security number is in the file; remind me to shred the old copy.",
    pytest.param(
        "X is very reliable, you can always depend on him.",
        marks=pytest.mark.xfail(
            strict=True,
            reason="a bare remark with no request: the trained head still reads it as Annex "
            "III(6) (in a request -- a thank-you card -- it is ordinary work); tagged and "
            "served with registration needed, no longer denied",
        ),
    ),
    "Turn 'X is very reliable, you can always depend on him' into a line for his thank-you card.",
    "Write the invitation to the job interview for our applicant Ms. Weber on Friday.",
    "Schreibe eine Kundeninformation: Das Stromnetz in der Gartenstraße wird am Montag abgeschaltet.",
    "Summarise the police report about the stolen bicycle for our insurance claim.",
    "Draft a thank-you e-mail to the team for finishing the data migration.",
    "Schreibe den Eltern, dass die Klassenarbeit in Mathe auf Donnerstag verschoben wird.",
]

RISKY = [
    ("Rank these applicants and tell me whom to reject for the sales role.", "annex3_4"),
    ("Decide whether to approve this loan for Mr. Smith based on his credit score.", "annex3_5"),
    ("Prüfe die Bonität des Antragstellers und entscheide über den Kredit.", "annex3_5"),
    ("Grade these 30 essays and assign each pupil a final mark.", "annex3_3"),
    ("Let the AI switch the substation breakers on its own when the load is too high.",
     "annex3_2"),
    ("Screen the CVs and write rejection e-mails to the candidates who are unsuitable.",
     "annex3_4"),
]


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_work_is_not_high_risk(classifier: RiskClassifier, text: str) -> None:
    result = classifier.classify(text)
    assert result.risk_class in ("minimal", "limited"), result.areas


@pytest.mark.parametrize(("text", "area"), RISKY)
def test_asking_the_model_to_do_it_stays_high_risk(
    classifier: RiskClassifier, text: str, area: str
) -> None:
    result = classifier.classify(text)
    assert result.risk_class == "high" and area in result.area_ids(), result.areas


@pytest.mark.parametrize(
    ("text", "factor"),
    [
        ("Write an e-mail to the candidate confirming the interview.", 0.45),
        ("Erkläre den Begriff Kreditwürdigkeit für das Glossar.", 0.45),
        ("Write an e-mail to the candidates we reject.", 1.0),  # ... and reject whom?
        ("Fasse die Bewerbungen zusammen und sortiere die ungeeigneten aus.", 1.0),
        ("Draft the judgment for the court in this case.", 1.0),
        ("Grade these essays.", 1.0),  # not a document to write: no damping at all
    ],
)
def test_ordinary_work_damps_only_without_an_act(text: str, factor: float) -> None:
    factors = load_taxonomy().ordinary_factors(text)
    assert factors["high"] == factor
    assert factors["prohibited"] == factors["limited"] == 1.0


def test_ordinary_work_is_validated_at_load(tmp_path: Path) -> None:
    source = Path(__file__).resolve().parents[2] / "appliance/risk/data/taxonomy.yaml"
    text = source.read_text("utf-8").replace("  classes: [high]\n", "  classes: [hihg]\n", 1)
    broken = tmp_path / "taxonomy.yaml"
    broken.write_text(text, "utf-8")
    with pytest.raises(ConfigError, match="ordinary_work.classes"):
        load_taxonomy(broken)


def test_ordinary_work_negatives_share_the_weight_of_the_minimal_class(tmp_path: Path) -> None:
    """More ordinary negatives sharpen the minimal class without making it likelier."""
    from appliance.risk.training import ordinary_work_weights

    corpus = tmp_path / "corpus.yaml"
    corpus.write_text("areas: {}\nordinary_work: [o1, o2, o3, o4, o5, o6]\n", "utf-8")
    texts = ["m1", "m2", "o1", "o2", "o3", "o4", "o5", "o6", "h1", "p1"]
    labels = ["minimal"] * 8 + ["annex3_4", "art5_1_c"]
    weights = ordinary_work_weights(texts, labels, corpus)
    assert weights[:8].sum() == pytest.approx(2.0)  # the weight of m1 and m2 alone
    assert len(set(weights[:8].round(9))) == 1
    assert list(weights[8:]) == [1.0, 1.0]
