from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from appliance.errors import ConfigError
from appliance.risk.glossary import load_glossary
from appliance.risk.lexicon import Threshold, ThresholdStore, load_lexicon, parse_thresholds
from appliance.risk.taxonomy import load_taxonomy

ROOT = Path(__file__).resolve().parents[2]

REQUIRED = {
    **{f"art5_1_{x}": ("prohibited", f"Art. 5(1)({x})") for x in "abcdefgh"},
    **{f"annex3_{n}": ("high", f"Annex III({n})") for n in range(1, 9)},
    "art6_3_profiling": ("high", "Art. 6(3)"),
    "art50_1": ("limited", "Art. 50(1)"),
    "art50_2": ("limited", "Art. 50(2)"),
    "art50_4": ("limited", "Art. 50(4)"),
}


@pytest.mark.parametrize(("area_id", "expected"), sorted(REQUIRED.items()))
def test_every_practice_and_area_is_in_the_taxonomy(
    area_id: str, expected: tuple[str, str]
) -> None:
    area = load_taxonomy().area(area_id)
    assert (area.risk_class, area.article) == expected
    assert area.exemplars and area.rules and area.description


@pytest.mark.parametrize(
    ("area_id", "date"),
    [("art5_1_a", "2025-02-02"), ("annex3_4", "2026-08-02"), ("art50_1", "2026-08-02")],
)
def test_application_dates_come_from_the_data(area_id: str, date: str) -> None:
    assert load_taxonomy().area(area_id).applies_from == dt.date.fromisoformat(date)


def test_application_dates_are_overridable_per_class_and_per_area() -> None:
    later = dt.date(2027, 12, 2)
    tax = load_taxonomy(None, {"high": later, "art50_1": dt.date(2027, 1, 1)})
    assert tax.area("annex3_4").applies_from == later
    assert tax.area("art6_3_profiling").applies_from == later
    assert tax.area("art50_1").applies_from == dt.date(2027, 1, 1)
    assert tax.area("art5_1_c").applies_from == dt.date(2025, 2, 2)
    assert not tax.area("annex3_4").in_force(dt.date(2026, 9, 1))


def test_unknown_date_override_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown areas"):
        load_taxonomy(None, {"annex3_9": dt.date(2027, 1, 1)})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("areas: [{id: x, class: nonsense}]", "unknown class"),
        ("areas: [{id: x, class: high, rules: [{weight: 0.5, all: ['(']}]}]", "rules"),
        ("areas: [{id: x, class: high}, {id: x, class: high}]", "duplicate"),
        ("areas: []", "no areas"),
    ],
)
def test_a_broken_taxonomy_fails_loudly(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError, match=message):
        load_taxonomy(path)


def test_packaged_thresholds_match_the_policy_data() -> None:
    policy = yaml.safe_load((ROOT / "policies" / "data" / "safety.yaml").read_text())
    packaged = yaml.safe_load((ROOT / "appliance" / "risk" / "data" / "safety.yaml").read_text())
    assert policy == packaged


def test_thresholds_cover_every_category() -> None:
    cats = tuple(c.id for c in load_lexicon())
    assert set(cats) == {
        "violence",
        "self_harm",
        "sexual_minors",
        "hate",
        "weapons_cbrn",
        "prompt_injection",
    }
    raw = yaml.safe_load((ROOT / "policies" / "data" / "safety.yaml").read_text())
    t = parse_thresholds(raw, "safety.yaml", cats)
    assert set(t.prompt) == set(cats)
    assert t.answer["prompt_injection"] == Threshold(None, None)


@pytest.mark.parametrize(
    ("threshold", "score", "action"),
    [
        (Threshold(0.8, 0.5), 0.9, "block"),
        (Threshold(0.8, 0.5), 0.8, "block"),
        (Threshold(0.8, 0.5), 0.6, "flag"),
        (Threshold(0.8, 0.5), 0.4, "allow"),
        (Threshold(None, 0.5), 1.0, "flag"),
        (Threshold(None, None), 1.0, "allow"),
    ],
)
def test_threshold_actions(threshold: Threshold, score: float, action: str) -> None:
    assert threshold.action(score) == action


def test_threshold_file_is_reread_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "safety.yaml"
    path.write_text("safety: {violence: {block: 0.9, flag: 0.5}}\n")
    store = ThresholdStore(path, ("violence",), interval_s=0.0)
    assert store.current().prompt["violence"] == Threshold(0.9, 0.5)
    path.write_text("safety: {violence: {block: null, flag: 0.2}}\n")
    import os

    os.utime(path, (1, 1))
    assert store.current().prompt["violence"] == Threshold(None, 0.2)
    path.write_text("safety: {violence: {block: 7}}\n")  # broken edit keeps the last good
    os.utime(path, (2, 2))
    assert store.current().prompt["violence"] == Threshold(None, 0.2)


@pytest.mark.parametrize(
    ("german", "english_words"),
    [
        ("Bewerte die Bewerber für die Stelle", {"evaluate", "applicant", "job"}),
        ("Gemeinderatswahl", {"municipality", "election"}),
        ("Berechne die Kreditwürdigkeit", {"calculate", "creditworthiness"}),
    ],
)
def test_glossary_translates_domain_words(german: str, english_words: set[str]) -> None:
    gloss = load_glossary().gloss(german)
    assert english_words <= set(gloss.split())
