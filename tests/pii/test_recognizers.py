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
