"""Skipping to a pattern's literal prefixes answers exactly as a search of the whole text.

Every shipped risk, safety and prompt-attack pattern, against the risk evaluation set,
the ordinary prompts, the prompt-attack corpus and the benchmark shapes (2 KB e-mail
threads, 20 KB retrieved contexts in English and German), plus texts built to trip the
skip: matches at the very start and end, a look-behind reaching before the first
literal, upper case, umlauts, and characters whose lower case does not stand in for
case-insensitive matching.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from appliance.risk.attacks import load_attack_rules
from appliance.risk.lexicon import load_lexicon
from appliance.risk.literals import literal_prefixes, lowered, search_from
from appliance.risk.taxonomy import HeadedText, ScanText, load_taxonomy
from appliance.testing.prompt_shapes import body

ROOT = Path(__file__).resolve().parents[2]


def _patterns() -> list[re.Pattern[str]]:
    taxonomy = load_taxonomy()
    rules = [r for a in taxonomy.areas for r in a.rules]
    rules += [*taxonomy.discussion, *taxonomy.doing]
    if taxonomy.ordinary_work is not None:
        rules += [*taxonomy.ordinary_work.rules, *taxonomy.ordinary_work.unless]
    rules += [r for c in load_lexicon() for r in c.rules]
    found = [g for r in rules for g in r.groups]
    found += [p for r in load_attack_rules() for p in (*r.all, *r.unless)]
    return list(dict.fromkeys(found))


def _texts() -> list[str]:
    texts = [str(i["text"]) for i in yaml.safe_load((ROOT / "tests/risk/eval_set.yaml").read_text())["items"]]
    for name in ("dev.yaml", "heldout.yaml"):
        raw = yaml.safe_load((ROOT / "benchmarks/data/ordinary_prompts" / name).read_text())
        items = raw.get("items", raw) if isinstance(raw, dict) else raw
        texts += [str(i["text"]) if isinstance(i, dict) else str(i) for i in items]
        raw = yaml.safe_load((ROOT / "benchmarks/data/prompt_attacks" / name).read_text())
        items = raw.get("items", raw) if isinstance(raw, dict) else raw
        texts += [str(i["text"]) if isinstance(i, dict) else str(i) for i in items]
    for shape in ("S", "M", "L"):
        texts += [body(shape, i)["messages"][-1]["content"] for i in range(4)]
    return texts


PATTERNS = _patterns()
TEXTS = _texts()


def test_the_corpora_are_read() -> None:
    assert len(PATTERNS) > 150 and len(TEXTS) > 500
    # Most patterns have prefixes to skip to, so the comparison below exercises the skip.
    assert sum(literal_prefixes(p) is not None for p in PATTERNS) > len(PATTERNS) * 0.6


@pytest.mark.parametrize("chunk", range(4))
def test_same_answer_as_a_whole_search(chunk: int) -> None:
    texts = TEXTS[chunk::4]
    for text in texts:
        low = lowered(text)
        for pattern in PATTERNS:
            assert search_from(pattern, text, low) == (pattern.search(text) is not None), (
                pattern.pattern[:60], text[:60])


@pytest.mark.parametrize(("pattern", "text", "expected"), [
    (r"\b(schools?|universit\w*)", "UNIVERSITY", True),
    (r"\b(schools?|universit\w*)", "the school", True),
    (r"\b(schools?|universit\w*)", "preschool", False),  # \b sees the letter before
    (r"(?<!dear )colleagues", "dear colleagues, colleagues", True),
    (r"(?<!dear )colleagues", "dear colleagues", False),
    (r"\b(straße|strasse)\b", "Die STRASSE und die Straße", True),
    (r"\b(straße|strasse)\b", "Hauptstraße 5", False),
    (r"\bschool", "\u017fchool", True),  # the long s: re.IGNORECASE matches, lower() does not
    (r"\bistanbul", "\u0130stanbul", True),  # the dotted capital I lower-cases to two characters
    (r"\b(cv|résumé)s?\b", "Send the CVs", True),
])
def test_edge_cases(pattern: str, text: str, expected: bool) -> None:
    compiled = re.compile(pattern, re.IGNORECASE)
    assert (compiled.search(text) is not None) is expected
    assert search_from(compiled, text, lowered(text)) is expected
    assert ScanText(text).search(compiled) is expected


def test_prefixes_are_those_every_match_starts_with() -> None:
    assert literal_prefixes(re.compile(r"\b(school\w*|universit\w*|college)", re.I)) == {
        "school", "universit", "college"}
    assert literal_prefixes(re.compile(r"\w*video\w*", re.I)) is None  # no literal start
    assert literal_prefixes(re.compile(r"(^|\n)\s*override", re.I)) is None
    assert literal_prefixes(re.compile(r"\b(a|bc)", re.I)) is None  # too short to skip to
    assert lowered("\u017fchool") is None and lowered("Straße") == "straße"


def test_a_repeated_head_still_finds_a_match_after_its_joint() -> None:
    head = "You are a helpful assistant for the admissions office. " * 20
    pattern = re.compile(r"\b(rank|score)\w*\b.{0,40}\b(applicants?|candidates?)", re.I)
    text = f"{head}\nPlease rank the applicants by grade."
    assert HeadedText(text, len(head), {}).search(pattern)
    assert not HeadedText(f"{head}\nPlease summarise the brochure.", len(head), {}).search(pattern)
