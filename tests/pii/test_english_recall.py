"""English names, places, addresses and phone numbers that single patterns and the small
spaCy model used to leak, and ordinary text that must stay untouched.

Every sentence here is written for this test (none comes from the evaluation data).
"""

from __future__ import annotations

import pytest
from presidio_analyzer import AnalyzerEngine

from appliance.pii.address import AddressBlockRecognizer, AddressGrammarRecognizer
from appliance.config.pii import PiiConfig
from appliance.pii.findings import Finding
from appliance.pii.engine import _resolve_overlaps, analyze_texts

IGNORE = frozenset(PiiConfig().ignore_entities)


def masked(analyzer: AnalyzerEngine, text: str) -> list[str]:
    return [text[f.start:f.end] for f in analyze_texts(analyzer, [text], ["en"], IGNORE)[0]]


def covered(analyzer: AnalyzerEngine, text: str, value: str) -> bool:
    """Every character of ``value`` (first occurrence) lies inside some finding."""
    start = text.index(value)
    found = analyze_texts(analyzer, [text], ["en"], IGNORE)[0]
    return all(any(f.start <= i < f.end for f in found)
               for i in range(start, start + len(value)) if not text[i].isspace())


@pytest.fixture(scope="module")
def grammar() -> AddressGrammarRecognizer:
    rec = AddressGrammarRecognizer()
    rec.load()
    return rec


@pytest.mark.parametrize(("text", "address"), [
    ("Please ship it to 12 Baker Street, Apt. 4, Springfield, IL 62704. Thanks!",
     "12 Baker Street, Apt. 4, Springfield, IL 62704"),
    ("my new place is 7 rua das flores 210, apt. 33, porto, portugal 4050 for now",
     "7 rua das flores 210, apt. 33, porto, portugal 4050"),
    ("Deliver to 88 Via Garibaldi 12\n Suite 5\n Bologna\n Italy 40121",
     "88 Via Garibaldi 12\n Suite 5\n Bologna\n Italy 40121"),
    ("We meet at the corner of Orchard Road and Kellerman Street tomorrow",
     "the corner of Orchard Road and Kellerman Street"),
    ("Send the parcel to Ottilie and Brunnenweg 14 in case I am out.", "Ottilie and Brunnenweg 14"),
    ("The unit is at PSC 4410, Box 2231\nAPO AE 09012 now", "PSC 4410, Box 2231\nAPO AE 09012"),
    ("My address is Hraunás 84, Reykjavík.", "Hraunás 84, Reykjavík"),
    ("Ship to 4410 Kessler Parkways\nEast Marlow, MT 59601 please", "4410 Kessler Parkways\nEast Marlow, MT 59601"),
    ("Write to 22 Ferndale Prairie\nLittle Wexcombe\nS6 3DX next week", "22 Ferndale Prairie\nLittle Wexcombe\nS6 3DX"),
    ("Send it to Vrchlického 412\n159 08 Nová Ves please", "Vrchlického 412\n159 08 Nová Ves"),
    ("Deliver to Kirkebakken 465, 7529 Holmestrand. Thanks", "Kirkebakken 465, 7529 Holmestrand"),
    ("She lives at Sorlaskeid 32 since May.", "Sorlaskeid 32"),
])
def test_grammar_masks_the_whole_address(grammar: AddressGrammarRecognizer, text: str, address: str) -> None:
    spans = [text[r.start:r.end] for r in grammar.analyze(text, [])]
    assert address in spans


@pytest.mark.parametrize("text", [
    "Please send the report via e-mail by Friday.",
    "She walked down the street and bought 3 apples.",
    "The meeting is at 10 in Room 4 of the main office.",
    "Chapter 5 explains the method; see also Table 2.",
    "My IP address is 10.0.0.1 today.",
    "Shopping list:\n1. Buy milk\n2. Call the bank",
    "Install Python 3.12 and run step 2 twice.",
    "The address of the page is 5 levels deep.",
])
def test_grammar_leaves_ordinary_text(grammar: AddressGrammarRecognizer, text: str) -> None:
    assert grammar.analyze(text, []) == []


def test_address_block_skips_bullets() -> None:
    text = "* 14 Larkspur Lane\n* Suite 9\n* Dunmore\n* Ireland"
    spans = [text[r.start:r.end] for r in AddressBlockRecognizer("en").analyze(text, [])]
    assert spans == ["14 Larkspur Lane", "Suite 9", "Dunmore", "Ireland"]


@pytest.mark.parametrize(("text", "value"), [
    ("Yesterday Quirinus Vandermolen called about the invoice.", "Quirinus Vandermolen"),
    ("The contract was signed by Henrike van der Stappen last week.", "Henrike van der Stappen"),
    ("I flew back from Tromsnes after the conference.", "Tromsnes"),
    ("the princess visited kirkjubaer in the summer", "kirkjubaer"),
    ("we moved here from new zealand last year", "new zealand"),
    ("please add yolanda fiorelli to the list", "yolanda fiorelli"),
    ("She named him Hunter after her grandfather.", "Hunter"),
    ("I'm so tired! said Bramwell to nobody", "Bramwell"),
    ("They're not answering at 41-27-93-55", "41-27-93-55"),
    ("You can call me on 0361 4478120 tonight", "0361 4478120"),
])
def test_names_places_and_phones_are_masked(analyzer: AnalyzerEngine, text: str, value: str) -> None:
    assert covered(analyzer, text, value)


@pytest.mark.parametrize(("text", "word"), [
    ("You said your email is fine. Is that correct?", "said"),
    ("Capitalized words like Patience and Discipline are not names.", "Discipline"),
    ("Excuse me, but I really don't like this tone", "tone"),
    ("Date: 2011-04-12, phone follows later", "2011-04-12"),
    ("We export ONNX models and keep the settings in TOML files.", "ONNX"),
])
def test_everyday_words_are_not_masked(analyzer: AnalyzerEngine, text: str, word: str) -> None:
    assert not covered(analyzer, text, word)


def test_possessive_is_not_part_of_the_name(analyzer: AnalyzerEngine) -> None:
    text = "We read Ingrid Halvorsen's Collected Letters in class."
    assert "Ingrid Halvorsen" in masked(analyzer, text)
    assert not covered(analyzer, text, "'s")


def test_overlapping_place_findings_widen_instead_of_leaking() -> None:
    street = Finding("ADDRESS", 0, 20, 0.65, "grammar")
    person = Finding("PERSON", 15, 30, 0.85, "spacy")
    card = Finding("CREDIT_CARD", 25, 41, 1.0, "card")
    assert _resolve_overlaps([street, person]) == [Finding("ADDRESS", 0, 30, 0.65, "grammar")]
    # A validated value keeps its own span; the name it cuts into does not swallow it,
    # and the name's part outside it still widens the street (nothing of it leaks).
    assert _resolve_overlaps([street, person, card]) == [Finding("ADDRESS", 0, 25, 0.65, "grammar"), card]


def test_an_address_that_runs_into_an_iban_keeps_its_own_lines() -> None:
    """"29 Hornsey Road / London N7 7LR / DE89 ..." read as one address: the IBAN wins its
    span, and the lines before it stay masked as an address (they were dropped whole)."""
    address = Finding("ADDRESS", 0, 60, 0.65, "grammar")
    iban = Finding("IBAN_CODE", 30, 60, 1.0, "iban")
    assert _resolve_overlaps([address, iban]) == [Finding("ADDRESS", 0, 30, 0.65, "grammar"), iban]
    # A sliver too short to be anything is not kept.
    assert _resolve_overlaps([Finding("ADDRESS", 28, 60, 0.65, "grammar"), iban]) == [iban]


def test_context_boost_does_not_make_a_unit_beat_its_address() -> None:
    unit = Finding("ADDRESS", 20, 28, 0.95, "pattern")
    whole = Finding("ADDRESS", 0, 50, 0.65, "grammar")
    assert _resolve_overlaps([unit, whole]) == [whole]


def test_lines_of_phone_numbers_stay_phone_numbers(analyzer: AnalyzerEngine) -> None:
    text = "Call me at 555-123-4567\n555 987 6543"
    found = analyze_texts(analyzer, [text], ["en"], IGNORE)[0]
    assert [(f.entity_type, text[f.start:f.end]) for f in found] == [
        ("PHONE_NUMBER", "555-123-4567"), ("PHONE_NUMBER", "555 987 6543")]
