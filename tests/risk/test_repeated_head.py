"""A system prompt repeated in every request is searched by the rules once: which rule
patterns match it alone is remembered, and each request searches only what follows it.
The answers must be those of searching the whole text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from appliance.risk.classifier import RiskClassifier
from appliance.risk.taxonomy import JOINT_CHARS, HeadedText, Rule, Taxonomy, load_taxonomy
from appliance.risk.text import request_segments
from appliance.testing.prompt_shapes import SYSTEM

HERE = Path(__file__).resolve().parent
GERMAN_SYSTEM = (
    "Du bist der Assistent der Personalabteilung. Beantworte Fragen zu Urlaub, "
    "Arbeitszeiten und Reisekosten. Entscheide nie selbst über Bewerbungen oder "
    "Kündigungen, sondern verweise an die zuständige Stelle.\nBitte antworte höflich."
)


def _rules(taxonomy: Taxonomy) -> list[Rule]:
    rules = [r for a in taxonomy.areas for r in a.rules]
    rules += [*taxonomy.discussion, *taxonomy.doing]
    if taxonomy.ordinary_work is not None:
        rules += [*taxonomy.ordinary_work.rules, *taxonomy.ordinary_work.unless]
    return rules


def _turns() -> list[str]:
    items = yaml.safe_load((HERE / "eval_set.yaml").read_text("utf-8"))
    texts = [i["text"] for i in (items if isinstance(items, list) else items["items"])]
    return texts[::7]


def test_no_rule_pattern_is_anchored_at_the_end() -> None:
    """What the remembered head relies on: a match in the head stays one when text follows."""
    for rule in _rules(load_taxonomy()):
        for group in rule.groups:
            assert not re.search(r"(?<!\\)\$|\\Z", group.pattern), group.pattern


@pytest.mark.parametrize("head", [SYSTEM, GERMAN_SYSTEM], ids=["en", "de"])
def test_every_pattern_answers_as_on_the_whole_text(head: str) -> None:
    patterns = {g for r in _rules(load_taxonomy()) for g in r.groups}
    memo: dict[re.Pattern[str], bool] = {}
    turns = _turns()
    assert len(turns) > 20
    for turn in turns:
        text = f"{head}\n{turn}"
        headed = HeadedText(text, len(head), memo)
        for pattern in patterns:
            assert headed.search(pattern) == (pattern.search(text) is not None), (pattern, turn)
    assert memo  # the head's answers were remembered and reused by every later turn


def test_a_match_across_the_joint_is_found() -> None:
    pattern = re.compile(r"decide\s+whether to hire")
    head = "x" * (JOINT_CHARS * 3) + " please decide"
    headed = HeadedText(f"{head}\nwhether to hire him", len(head), {})
    assert headed.search(pattern)
    assert not HeadedText(f"{head}\nwhat to eat", len(head), {}).search(pattern)


def test_the_classifier_reads_a_repeated_system_prompt_as_it_would_afresh(
    classifier: RiskClassifier,
) -> None:
    """The rules' tags with the head remembered, as without (embeddings left out: only
    the rules' reading changed)."""
    segments = [request_segments({"messages": [{"role": "system", "content": head},
                                               {"role": "user", "content": turn}]})
                for head in (SYSTEM, GERMAN_SYSTEM) for turn in _turns()]
    plain = [classifier._risk(s.rules_text, None, False, None) for s in segments]
    headed = [classifier._risk(s.rules_text, None, False, None, context=s.context)
              for s in segments]
    assert headed == plain
    assert any(r.areas for r in plain)  # some turns are tagged by the rules alone
