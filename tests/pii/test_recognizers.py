"""Recognizers as tables: valid values found, checksum failures and look-alikes not."""

from __future__ import annotations

from typing import Any

import pytest
from presidio_analyzer import AnalyzerEngine

from appliance.pii import validators
from appliance.pii.engine import analyze_texts


def _types(analyzer: AnalyzerEngine, text: str, lang: str = "en") -> dict[str, str]:
    (found,) = analyze_texts(analyzer, [text], [lang])
    return {text[f.start:f.end]: f.entity_type for f in found}


FOUND = [
    ("en", "Please wire it to DE89 3704 0044 0532 0130 00 today.", "DE89 3704 0044 0532 0130 00", "IBAN_CODE"),
    ("de", "Meine IBAN lautet DE89370400440532013000.", "DE89370400440532013000", "IBAN_CODE"),
    ("en", "my iban is gb82west12345698765432", "gb82west12345698765432", "IBAN_CODE"),
    ("de", "Meine Steuer-ID ist 86095742719.", "86095742719", "DE_TAX_ID"),
    ("en", "My German tax id is 65929970489.", "65929970489", "DE_TAX_ID"),
    ("de", "Personalausweis Nummer L01X00T471 liegt vor.", "L01X00T471", "ID_CARD"),
    ("de", "Reisepass C01X00T478 wurde verlängert.", "C01X00T478", "PASSPORT"),
    ("de", "Ruf mich an unter +49 30 12345678, danke.", "+49 30 12345678", "PHONE_NUMBER"),
    ("de", "Telefon: 030 12345678", "030 12345678", "PHONE_NUMBER"),
    ("de", "Ich wohne in der Hauptstraße 12 in Köln.", "Hauptstraße 12", "ADDRESS"),
    ("en", "Ship it to 1600 Amphitheatre Parkway please.", "1600 Amphitheatre Parkway", "ADDRESS"),
    ("de", "Das Kennzeichen ist B-MW 1234.", "B-MW 1234", "LICENSE_PLATE"),
    ("de", "Unsere USt-IdNr. lautet DE136695976.", "DE136695976", "VAT_ID"),
    ("en", "The VAT number is ATU12345678.", "ATU12345678", "VAT_ID"),
    ("en", "use key sk-proj-abcdefghijklmnopqrstuvwxyz123456 for it", "sk-proj-abcdefghijklmnopqrstuvwxyz123456", "SECRET"),
    ("en", "AWS key AKIAIOSFODNN7EXAMPLE leaked", "AKIAIOSFODNN7EXAMPLE", "SECRET"),
    ("en", "token ghp_abcdefghijklmnopqrstuvwxyz0123456789 here", "ghp_abcdefghijklmnopqrstuvwxyz0123456789", "SECRET"),
    ("en", "Authorization: Bearer abcdef0123456789abcdef.xyz", "abcdef0123456789abcdef.xyz", "SECRET"),
    ("en", "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U end",
     "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "SECRET"),
    ("en", "Write to jane.doe@example.com now", "jane.doe@example.com", "EMAIL_ADDRESS"),
    ("en", "Card 4111 1111 1111 1111 expires soon", "4111 1111 1111 1111", "CREDIT_CARD"),
    ("de", "Der Zeuge K. sagte aus, Herr Dr. Müller sei in München gewesen.", "K.", "PERSON"),
    ("de", "Der Zeuge K. sagte aus, Herr Dr. Müller sei in München gewesen.", "Müller", "PERSON"),
    ("de", "Der Zeuge K. sagte aus, Herr Dr. Müller sei in München gewesen.", "München", "LOCATION"),
    ("en", "My name is John Smith.", "John Smith", "PERSON"),
]


@pytest.mark.parametrize(("lang", "text", "value", "entity"), FOUND)
def test_found(analyzer: AnalyzerEngine, lang: str, text: str, value: str, entity: str) -> None:
    assert _types(analyzer, text, lang).get(value) == entity


PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo\n4lgOEePzNm0tRgeLezV6ffAt0gunVTLw\n-----END RSA PRIVATE KEY-----"


def test_pem_private_key_is_one_secret(analyzer: AnalyzerEngine) -> None:
    assert _types(analyzer, f"here is my key:\n{PEM}\nthanks").get(PEM) == "SECRET"


NOT_FOUND = [
    ("en", "Please wire it to DE89 3704 0044 0532 0130 01 today.", "IBAN_CODE"),  # bad mod-97
    ("de", "Meine Steuer-ID ist 86095742718.", "DE_TAX_ID"),  # bad check digit
    ("de", "Meine Steuer-ID ist 11111111111.", "DE_TAX_ID"),  # repeated digits rule
    ("de", "Personalausweis Nummer L01X00T472 liegt vor.", "ID_CARD"),  # bad ICAO digit
    ("de", "Unsere USt-IdNr. lautet DE136695977.", "VAT_ID"),  # bad MOD 11,10
    ("en", "The weather is nice and the meeting is at noon.", None),
    ("de", "Der Anspruch ergibt sich aus § 3 Abs. 1 S. 2 BGB.", None),
    ("de", "Die Klage ist zulässig, aber unbegründet.", None),
    ("de", "Vgl. BGH, NJW-RR 1999, 1234; OLG Köln GRUR-RR 2010 S. 12.", "LICENSE_PLATE"),  # citations
]


@pytest.mark.parametrize(("lang", "text", "entity"), NOT_FOUND)
def test_not_found(analyzer: AnalyzerEngine, lang: str, text: str, entity: str | None) -> None:
    types = set(_types(analyzer, text, lang).values())
    if entity is None:
        assert types == set()
    else:
        assert entity not in types


@pytest.mark.parametrize(
    ("fn", "value", "expected"),
    [
        (validators.iban, "DE89 3704 0044 0532 0130 00", True),
        (validators.iban, "GB82 WEST 1234 5698 7654 32", True),
        (validators.iban, "GB82 WEST 1234 5698 7654 33", False),
        (validators.iban, "DE89 3704 0044 0532 0130", False),  # wrong length for DE
        (validators.steuer_id, "86095742719", True),
        (validators.steuer_id, "65929970489", True),
        (validators.steuer_id, "86095742710", False),
        (validators.steuer_id, "06095742719", False),
        (validators.steuer_id, "12345678901", False),  # no repeated digit
        (validators.de_document_number, "L01X00T471", True),
        (validators.de_document_number, "L01X00T47", None),
        (validators.de_document_number, "L01X00T479", False),
        (validators.de_vat_id, "DE136695976", True),
        (validators.de_vat_id, "DE136695975", False),
        (validators.de_vat_id, "ATU12345678", None),
        (validators.luhn, "4111 1111 1111 1111", True),
        (validators.luhn, "4111 1111 1111 1112", False),
        (validators.not_all_same_digit, "030 0000000", None),
        (validators.not_all_same_digit, "0000 000000", False),
    ],
)
def test_validators(fn: validators.Validator, value: str, expected: bool | None) -> None:
    assert fn(value) is expected


@pytest.mark.parametrize("text", [
    "Call +44 20 7946 0958 ext. 123 or (030) 1234-5678 after 18:30.",
    "x" * 45 + " (+49) 30 12345678" + "y" * 60 + "\n+1 (415) 555-2671, Telefon 0221/9876543",
    "Kein Anruf heute. " * 10 + "Tel.: 089 / 2190 - 4711" + " Ende." * 20,
    "Numbers far apart: 12 " + "word " * 30 + "0171 2345678 " + "word " * 30 + "2024.",
    # International numbers alone in their zone (the other regions are skipped) ...
    "Tel. +49 30 1234567, Fax +49 30 1234568. Mobil +49 171 2345678.",
    "Kind regards, Jane Doe, +44 20 7946 0958 ext. 12",
    # ... and beside digits that other regions read differently.
    "Tel. +49 30 1234567 or 030 1234568",
    "+1 415 555 2671 / 0044 20 7946 0958 / 001 415 555 2672",
    "Call +49 30 1234567 on 12.03.2026 about invoice 4711.",
    "(+49) 30 12345678 and +33 1 42 68 53 00",
])
def test_the_phone_recognizer_reads_only_around_digits_and_finds_the_same(text: str) -> None:
    """Scanning zones around digits finds exactly what Presidio's scan of the whole text
    finds, region by region (that is what makes it safe to skip the rest)."""
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    from appliance.pii.engine import _PhoneRecognizer

    zoned = _PhoneRecognizer("en")
    whole = PhoneRecognizer(supported_language="en", supported_regions=zoned.supported_regions)

    def spans(rs: list[Any]) -> list[tuple[int, int]]:
        return sorted((r.start, r.end) for r in rs)

    expected = spans(whole.analyze(text, ["PHONE_NUMBER"]))
    assert expected and spans(zoned.analyze(text, ["PHONE_NUMBER"])) == expected


def test_the_phone_recognizer_finds_what_presidio_finds_in_generated_mixes() -> None:
    """Seeded mixes of international, national and 00-prefixed numbers with dates,
    invoice numbers and extensions between them: the same spans as Presidio's scan."""
    import random

    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    from appliance.pii.engine import _PhoneRecognizer

    zoned = _PhoneRecognizer("en")
    whole = PhoneRecognizer(supported_language="en", supported_regions=zoned.supported_regions)
    numbers = ["+49 30 {7}", "030 {7}", "(030) {7}", "+44 20 7946 {4}", "020 7946 {4}",
               "0049 30 {7}", "+1 (415) 555-{4}", "415-555-{4}", "+33 1 42 68 {2} {2}",
               "+49 (0)30 {7}", "+41 44 668 {2} {2}", "+43 1 {7}", "+91 98765 {5}"]
    between = [" ", ", ", " or ", " / ", " am 12.03.2026 ", " Rechnung 4711 ", "\n", " ext. 12 "]
    rng = random.Random(7)

    def digits(n: int) -> str:
        return str(rng.randint(10 ** (n - 1), 10**n - 1))

    for _ in range(150):
        parts = []
        for _ in range(rng.randint(1, 3)):
            parts.append(rng.choice(numbers).replace("{7}", digits(7)).replace("{5}", digits(5))
                         .replace("{4}", digits(4)).replace("{2}", digits(2)))
            parts.append(rng.choice(between))
        text = "Call " + "".join(parts)
        expected = sorted((r.start, r.end) for r in whole.analyze(text, ["PHONE_NUMBER"]))
        assert sorted((r.start, r.end) for r in zoned.analyze(text, ["PHONE_NUMBER"])) == expected, text


@pytest.mark.parametrize("lang, text", [
    ("en", "Hi, this is Jane Doe (jane.doe@example.com): call me at +44 20 7946 0958, the Tel: line."),
    ("de", "Bitte rufen Sie Herrn Müller unter Telefon: 030 1234567 an; die Rechnung ist über "
           "Tel.-Nr. und E-Mail zu klären. Wir sind die GmbH aus Köln!"),
])
def test_nlp_artifacts_hold_the_lemmas_and_keywords_presidio_derives(
    analyzer: AnalyzerEngine, lang: str, text: str
) -> None:
    """The artifacts built from the tokens' own lexemes equal Presidio's derivation with
    the lower-cased word as lemma (what context words are matched against)."""
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    engine = analyzer.nlp_engine
    ours = engine._doc_to_nlp_artifact(engine.nlp[lang](text), lang)  # type: ignore[attr-defined]
    doc = engine.nlp[lang](text)  # type: ignore[attr-defined]
    for token in doc:
        token.lemma_ = token.lower_
    theirs = SpacyNlpEngine._doc_to_nlp_artifact(engine, doc, lang)  # type: ignore[arg-type]
    assert ours.keywords and ours.keywords == theirs.keywords
    assert (ours.lemmas, ours.tokens_indices, ours.scores) == (
        theirs.lemmas, theirs.tokens_indices, theirs.scores)
    assert [(e.start, e.end, e.label_) for e in ours.entities] == [
        (e.start, e.end, e.label_) for e in theirs.entities]
