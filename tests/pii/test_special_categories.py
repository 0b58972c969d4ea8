"""GDPR Art. 9 special categories: found about a person, not as a topic; linked to the
PERSON they concern by index; left in the text by redaction unless the policy names them.

Texts here are not taken from the evaluation set (tests/pii/art9): they check behaviour
the brief names, in the real analyzer (Presidio and the identifier recognizers first).
"""

from __future__ import annotations

import pytest

from appliance.core.findings import PiiFindings
from presidio_analyzer import AnalyzerEngine

from appliance.pii.actions import ActionTable, Outcome, apply_actions
from appliance.config.pii import PiiConfig
from appliance.pii.findings import Finding
from appliance.pii.engine import analyze_texts
from appliance.pii.special.categories import SPECIAL_CATEGORIES, parse_basis
from appliance.pii.special.detector import SpecialCategoryDetector, build_special_detector
from appliance.pii.special.lexicon import LexiconError, parse_lexicon
from appliance.pii.vault import Vault
from appliance.pipeline.pii_detect import detection_findings

from .conftest import make_ctx

DETECTOR = SpecialCategoryDetector(("en", "de"), SPECIAL_CATEGORIES)


def _analyze(analyzer: AnalyzerEngine, text: str, lang: str) -> list[Finding]:
    (found,) = analyze_texts(analyzer, [text], [lang], frozenset(PiiConfig().ignore_entities),
                             DETECTOR)
    return found


def _special(found: list[Finding]) -> set[str]:
    return {f.entity_type for f in found if f.entity_type in SPECIAL_CATEGORIES}


CASES = [
    # the brief's own examples
    ("en", "Summarise the sick notes of Mr. Hamid Karimi, who has been in therapy for depression.", {"HEALTH"}),
    ("de", "Frau Petra Lang ist Mitglied der IG Metall und fragt nach Streikgeld.", {"TRADE_UNION"}),
    ("de", "Als ver.di-Mitglied möchte ich wissen, ob ich am Warnstreik teilnehmen darf.", {"TRADE_UNION"}),
    ("en", "My brother Jonah is gay and wants to bring his partner to the gala.", {"SEX_LIFE"}),
    ("de", "Befund Herr Olaf Brandt - Diagnose: F32.1, Wiedervorstellung in vier Wochen.", {"HEALTH"}),
    ("de", "Herr Karl Menke ist schwerbehindert, GdB 50, und braucht einen Parkplatz am Eingang.", {"HEALTH"}),
    ("de", "Ihre Krankschreibung liegt uns seit Montag vor.", {"HEALTH"}),
    ("de", "Unsere Auszubildende Leyla Aksoy ist Muslimin und fastet im Ramadan.", {"RELIGION"}),
    ("de", "Gehaltsabrechnung Mai, Arne Holt - Kirchensteuer: rk - Steuerklasse I.", {"RELIGION"}),
    ("en", "Our candidate Ruth Obi is a member of the Labour Party and a local councillor.", {"POLITICAL_OPINION"}),
    ("en", "The genetic test of my daughter Mia found a CFTR variant.", {"GENETIC"}),
    ("de", "Die Zeiterfassung speichert das Fingerabdruck-Template von Herrn Jonas Wirth.", {"BIOMETRIC"}),
    ("en", "I am of Kurdish descent and my manager keeps making jokes about it.", {"ETHNIC_ORIGIN"}),
    # hard negatives the brief names
    ("en", "Dr. Ellis booked the meeting room for her appointment with the auditors.", set()),
    ("en", "Summarise what the European Union decided about roaming charges.", set()),
    ("en", "The church building renovation needs a new roof and scaffolding.", set()),
    ("en", "Show that the union of two finite sets is finite.", set()),
    ("de", "Unser Lager zieht in die Gewerkschaftsstraße 7 um.", set()),
    ("en", "The health check endpoint of the API returns 200 even when the database is down.", set()),
    ("en", "Write a memo on political risk in emerging markets for the board.", set()),
    ("en", "Draft the biometric login feature spec for the mobile banking app.", set()),
    # a topic without a data subject is no one's data
    ("en", "Explain the difference between type 1 and type 2 diabetes for a school project.", set()),
    ("de", "Erkläre für ein Referat, wie Diabetes Typ 1 und Typ 2 sich unterscheiden.", set()),
]


@pytest.mark.parametrize(("lang", "text", "expected"), CASES, ids=[c[1][:40] for c in CASES])
def test_categories(analyzer: AnalyzerEngine, lang: str, text: str, expected: set[str]) -> None:
    assert _special(_analyze(analyzer, text, lang)) == expected


def test_finding_links_the_person_by_index_never_by_name(analyzer: AnalyzerEngine) -> None:
    text = "Note for HR: Sabine Roth is on sick leave; her diagnosis is long COVID."
    found = _analyze(analyzer, text, "en")
    health = [f for f in found if f.entity_type == "HEALTH"]
    assert health and all(f.person is not None for f in health)
    for f in health:
        person = found[f.person]  # type: ignore[index]
        assert person.entity_type == "PERSON"
        assert text[person.start:person.end] == "Sabine Roth"
    assert all("Sabine" not in f.recognizer for f in found)


def test_writer_speaking_of_themselves_is_not_linked_to_someone_named_later(
    analyzer: AnalyzerEngine,
) -> None:
    text = "Please write to Daniel Frost. I have epilepsy and cannot drive to the client."
    found = _analyze(analyzer, text, "en")
    health = [f for f in found if f.entity_type == "HEALTH"]
    assert health and all(f.person is None for f in health)


def test_special_findings_overlap_identifiers_without_disturbing_them(
    analyzer: AnalyzerEngine,
) -> None:
    text = "Call Maria Weber on +49 30 1234567, she is pregnant and works from home."
    with_special = _analyze(analyzer, text, "en")
    (plain,) = analyze_texts(analyzer, [text], ["en"], frozenset(PiiConfig().ignore_entities))
    assert [f for f in with_special if f.entity_type not in SPECIAL_CATEGORIES] == [
        f for f in plain
    ]
    assert _special(with_special) == {"HEALTH"}


def test_short_german_form_read_as_english_still_finds_its_category() -> None:
    # too few function words to be detected as German: the German lexicon reads it anyway
    found = DETECTOR.detect("Personalbogen Ute Kern; Konfession: ev; Eintritt 1.4.", "en")
    assert {f.entity_type for f in found} == {"RELIGION"}


def test_config_switches_categories_off() -> None:
    assert build_special_detector(PiiConfig(special_categories=False)) is None
    det = build_special_detector(PiiConfig(ignore_entities=("HEALTH",)))
    assert det is not None
    assert det.detect("I was diagnosed with asthma and my brother is gay.", "en") != []
    assert {f.entity_type for f in det.detect("I was diagnosed with asthma.", "en")} == set()


def test_redaction_leaves_special_categories_unless_the_policy_names_them() -> None:
    text = "Anna Berg has diabetes."
    findings = [Finding("PERSON", 0, 9, 0.85, "t"), Finding("HEALTH", 14, 22, 0.8, "s", person=0)]
    default = ActionTable.resolve(PiiConfig(), {"*": "mask"})
    out = apply_actions(text, findings, default, Vault(), b"salt", Outcome())
    assert out == "<PERSON_1> has diabetes."
    named = ActionTable.resolve(PiiConfig(), {"*": "mask", "HEALTH": "redact"})
    assert apply_actions(text, findings, named, Vault(), b"salt", Outcome()) == "<PERSON_1> has <HEALTH>."


def test_a_special_span_sticking_out_of_a_replacement_leaves_no_character() -> None:
    # the tagger took "Crohn" for a name; the health span covers "Crohn's disease"
    text = "Mein Crohn's disease flares."
    findings = [Finding("PERSON", 5, 10, 0.85, "t"), Finding("HEALTH", 5, 20, 0.8, "s")]
    table = ActionTable.resolve(PiiConfig(), {"*": "mask", "HEALTH": "redact"})
    out = apply_actions(text, findings, table, Vault(), b"salt", Outcome())
    assert "Crohn" not in out and "disease" not in out


def test_detection_findings_count_links() -> None:
    found = detection_findings([[Finding("PERSON", 0, 4, 0.9, "t"),
                                 Finding("HEALTH", 9, 15, 0.8, "s", 0),
                                 Finding("HEALTH", 20, 25, 0.8, "s")]], ["en"])
    assert found.counts == {"PERSON": 1, "HEALTH": 2}
    assert found.linked == {"HEALTH": 1}


async def test_pii_detect_stage_reports_special_categories(stages) -> None:  # type: ignore[no-untyped-def]
    detect, _redact, _output = stages
    ctx = make_ctx({"model": "m", "messages": [
        {"role": "user", "content": "Herr Lutz Becker ist seit Montag krankgeschrieben."}]})
    verdict = await detect.run(ctx)
    assert isinstance(verdict.findings, PiiFindings)
    assert verdict.findings.counts["HEALTH"] >= 1
    assert verdict.findings.linked["HEALTH"] >= 1


async def test_a_long_text_cut_into_pieces_keeps_its_links(analyzer_pool) -> None:  # type: ignore[no-untyped-def]
    """A fact about a person far into a long text, past the cuts of the analyzer pool's
    pieces, is still found once and still linked to the PERSON finding it concerns."""
    filler = "The quarterly figures are attached for your review before the board meeting. " * 60
    fact = "Employee Tarik Demir has been on sick leave since his heart attack in March."
    text = filler + "\n\n" + filler + "\n\n" + fact + "\n\n" + filler
    assert len(text) > 3 * 2_000  # several pieces
    (found,) = await analyzer_pool.analyze([text], ["en"])
    (alone,) = await analyzer_pool.analyze([fact], ["en"])
    at = text.index(fact)
    health = [f for f in found if f.entity_type == "HEALTH"]
    # The same facts as in the sentence analysed alone, each once ...
    assert [(f.start - at, f.end - at) for f in health] == [
        (f.start, f.end) for f in alone if f.entity_type == "HEALTH"] != []
    # ... each linked to the person named in its sentence.
    for f in health:
        assert f.person is not None
        person = found[f.person]
        assert person.entity_type == "PERSON" and text[person.start:person.end] == "Tarik Demir"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"categories": {"HEALTH": [{"terms": ["ok"], "subject": "sometimes"}]}}, "subject must be"),
        ({"categories": {"WEALTH": [{"terms": ["rich"]}]}}, "unknown categories"),
        ({"categories": {"HEALTH": [{"patterns": ["(unclosed"]}]}}, "HEALTH#0: bad pattern"),
        ({"categories": {"HEALTH": [{"terms": ["a b", "c-"], "veto": ["two words"]}]}}, "HEALTH#0"),
        ({"categories": {"HEALTH": [{"terms": ["x"], "colour": "red"}]}}, "unknown keys"),
        ({"categories": {"HEALTH": [{"terms": ["x"], "trigger": ["y"]}]}}, "only gate patterns"),
    ],
)
def test_a_bad_lexicon_fails_at_load_naming_the_place(doc: dict[str, object], message: str) -> None:
    with pytest.raises(LexiconError, match=message):
        parse_lexicon(doc, "xx")


def test_pattern_triggers_see_words_inside_longer_tokens() -> None:
    # "500mg" and "GdB50" are single tokens: the trigger words match them as affixes
    found = DETECTOR.detect("Herr Kurz, GdB50, nimmt 500mg Metformin täglich.", "de")
    assert {f.entity_type for f in found} == {"HEALTH"}
    assert "GdB50" in {"Herr Kurz, GdB50, nimmt 500mg Metformin täglich."[f.start:f.end]
                       for f in found}


def test_basis_specs_are_checked() -> None:
    assert parse_basis("health=Health_Care") == ("HEALTH", "health_care")
    assert parse_basis("*=explicit_consent") == ("*", "explicit_consent")
    for bad, msg in (("HEALTH", "CATEGORY=BASIS"), ("WEALTH=employment", "unknown special"),
                     ("HEALTH=legitimate_interest", r"unknown Art\. 9\(2\)")):
        with pytest.raises(ValueError, match=msg):
            parse_basis(bad)
