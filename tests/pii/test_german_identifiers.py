"""German identifiers as tables: valid values found, failed check digits and near misses not.

Every value with a check digit was computed by the published procedure (the tests of
the validators below pin them); the people and numbers are invented.
"""

from __future__ import annotations

import pytest
from presidio_analyzer import AnalyzerEngine

from appliance.pii import validators
from appliance.pii.engine import analyze_texts


def _found(analyzer: AnalyzerEngine, text: str, lang: str = "de") -> dict[str, str]:
    (findings,) = analyze_texts(analyzer, [text], [lang])
    return {text[f.start:f.end]: f.entity_type for f in findings}


FOUND = [
    # Steuer-ID: 11 digits, ISO 7064 MOD 11,10, one digit repeated.
    ("Meine Steuer-ID lautet 51465908531.", "51465908531", "DE_TAX_ID"),
    ("Identifikationsnummer: 75 844 093 241", "75 844 093 241", "DE_TAX_ID"),
    # Steuernummer: a Land's layout, and the 13-digit federal form with a context word.
    ("Steuernummer: 181/815/08155", "181/815/08155", "DE_TAX_NUMBER"),
    ("St.-Nr. 133/8150/8159 (Finanzamt Düsseldorf-Süd)", "133/8150/8159", "DE_TAX_NUMBER"),
    ("Bitte geben Sie Ihre Steuernummer 27/815/0815/5 an.", "27/815/0815/5", "DE_TAX_NUMBER"),
    ("Steuernummer laut ELSTER: 9181081508155", "9181081508155", "DE_TAX_NUMBER"),
    ("Die Steuernummer beim Finanzamt ist 013 815 08153.", "013 815 08153", "DE_TAX_NUMBER"),
    # Sozialversicherungsnummer: area, birth date, initial, serial, check digit.
    ("Sozialversicherungsnummer 12030580M007 liegt vor.", "12030580M007", "DE_SOCIAL_SECURITY"),
    ("SV-Nummer: 65 170839 J 515", "65 170839 J 515", "DE_SOCIAL_SECURITY"),
    ("Ihre Rentenversicherungsnummer ist 53040775K529.", "53040775K529", "DE_SOCIAL_SECURITY"),
    # Krankenversichertennummer: letter, nine digits, check digit; needs a context word.
    ("Krankenversichertennummer: A123456780", "A123456780", "DE_HEALTH_INSURANCE"),
    ("Die KV-Nummer auf der Gesundheitskarte ist M908172639.", "M908172639", "DE_HEALTH_INSURANCE"),
    # Personalausweis and Reisepass: ICAO 9303 check digit (7-3-1) when ten characters.
    ("Personalausweisnummer L2NZXPW6N0", "L2NZXPW6N0", "ID_CARD"),
    ("Nummer des Reisepasses: C3H4RV3W29", "C3H4RV3W29", "PASSPORT"),
    # Handelsregister: HRA/HRB alone, the other registers with the court's context.
    ("Amtsgericht Charlottenburg, HRB 214587 B", "HRB 214587 B", "DE_COMMERCIAL_REGISTER"),
    ("eingetragen im Handelsregister des Amtsgerichts München unter HRB 123456",
     "HRB 123456", "DE_COMMERCIAL_REGISTER"),
    ("Handelsregister: HRA 4711 beim AG Köln", "HRA 4711", "DE_COMMERCIAL_REGISTER"),
    ("Vereinsregister des Amtsgerichts Bonn VR 5123", "VR 5123", "DE_COMMERCIAL_REGISTER"),
    # Dates of birth in their written forms; the cue stays readable.
    ("Max Muster, geb. 3. März 1980, wohnt in Köln.", "3. März 1980", "DATE_OF_BIRTH"),
    ("Die Antragstellerin wurde geboren am 03.03.1980 in Ulm.", "03.03.1980", "DATE_OF_BIRTH"),
    ("Erika Muster *03.03.1980", "03.03.1980", "DATE_OF_BIRTH"),
    ("Geburtsdatum: 23.11.1979", "23.11.1979", "DATE_OF_BIRTH"),
    ("geb. am 2.4.51 in Passau", "2.4.51", "DATE_OF_BIRTH"),
    ("Geburtstag: 1992-08-12", "1992-08-12", "DATE_OF_BIRTH"),
    # Licence plates (they were there before).
    ("Das Kennzeichen ist M-AB 1234.", "M-AB 1234", "LICENSE_PLATE"),
]


@pytest.mark.parametrize(("text", "value", "entity"), FOUND)
def test_german_identifier_found(analyzer: AnalyzerEngine, text: str, value: str, entity: str) -> None:
    assert _found(analyzer, text).get(value) == entity, _found(analyzer, text)


NOT_FOUND = [
    ("Meine Steuer-ID lautet 51465908532.", "DE_TAX_ID"),  # check digit off by one
    ("Sozialversicherungsnummer 12030580M008 liegt vor.", "DE_SOCIAL_SECURITY"),  # check digit
    ("Sozialversicherungsnummer 12031380M007 liegt vor.", "DE_SOCIAL_SECURITY"),  # month 13
    ("Krankenversichertennummer: A123456781", "DE_HEALTH_INSURANCE"),  # check digit
    ("Rechnungsnummer R202412345 vom Mai", "DE_HEALTH_INSURANCE"),  # no context: an invoice
    ("Personalausweisnummer L2NZXPW6N1", "ID_CARD"),  # ICAO check digit
    ("Die Steuernummer ist 12/34/5678.", "DE_TAX_NUMBER"),  # no Land's layout
    ("Steuernummer 1234567890123", "DE_TAX_NUMBER"),  # no Land's tax office prefix
    ("Der Umsatz lag bei 9181081508155 Euro.", "DE_TAX_NUMBER"),  # 13 digits, no context
    ("Ruf mich an: 030 1234 56789", "DE_TAX_NUMBER"),  # a phone number's groups
    ("Die VR 5123 ist ein Modell von Audi.", "DE_COMMERCIAL_REGISTER"),  # no register context
    ("Der Termin ist am 03.03.2024 um 10 Uhr.", "DATE_OF_BIRTH"),  # a date, no birth cue
    ("Sie ist geboren am 31.02.1980.", "DATE_OF_BIRTH"),  # no such day
    ("geboren am 03.03.2190", "DATE_OF_BIRTH"),  # in the future
    ("Die Stückzahl beträgt *1980 Einheiten.", "DATE_OF_BIRTH"),  # a star without a date
]


@pytest.mark.parametrize(("text", "entity"), NOT_FOUND)
def test_german_identifier_not_found(analyzer: AnalyzerEngine, text: str, entity: str) -> None:
    assert entity not in _found(analyzer, text).values(), _found(analyzer, text)


def test_english_text_keeps_its_recognizers() -> None:
    """The German identifiers are registered for German only: English analysis (and its
    latency) is what it was."""
    from appliance.pii.recognizers import SPECS

    german_only = {"DeSocialSecurityRecognizer", "DeHealthInsuranceRecognizer",
                   "DeTaxNumberRecognizer", "DeCommercialRegisterRecognizer",
                   "DeDateOfBirthRecognizer"}
    assert {s.name for s in SPECS if s.languages == ("de",)} >= german_only


@pytest.mark.parametrize(
    ("fn", "value", "expected"),
    [
        (validators.de_social_security, "12030580M007", True),
        (validators.de_social_security, "12 030580 M 007", True),
        (validators.de_social_security, "65170839J515", True),
        (validators.de_social_security, "12030580M008", False),
        (validators.de_social_security, "12030580N007", False),  # another initial
        (validators.de_social_security, "1203058M007", False),  # too short
        (validators.de_health_insurance, "A123456780", None),  # valid: context decides
        (validators.de_health_insurance, "T482910575", None),
        (validators.de_health_insurance, "A123456781", False),
        (validators.de_health_insurance, "A12345678", False),
        (validators.de_tax_number, "181/815/08155", None),  # Bayern 3/3/5
        (validators.de_tax_number, "21/815/08150", None),  # Berlin 2/3/5
        (validators.de_tax_number, "133/8150/8159", None),  # NRW 3/4/4
        (validators.de_tax_number, "27/815/0815/5", None),  # Rheinland-Pfalz 2/3/4/1
        (validators.de_tax_number, "9181081508155", None),  # federal, Bayern
        (validators.de_tax_number, "5133081508159", None),  # federal, NRW
        (validators.de_tax_number, "9181181508155", False),  # fifth digit is not 0
        (validators.de_tax_number, "1234567890123", False),
        (validators.de_tax_number, "12/34/5678", False),
        (validators.date_of_birth, "03.03.1980", None),
        (validators.date_of_birth, "3. März 1980", None),
        (validators.date_of_birth, "3. Mär. 1980", None),
        (validators.date_of_birth, "29.02.1980", None),
        (validators.date_of_birth, "29.02.1981", False),
        (validators.date_of_birth, "3. Märzen 1980", False),
        (validators.date_of_birth, "03.03.1880", False),
        (validators.icao_check_digit, "L2NZXPW6N", 0),
        (validators.icao_check_digit, "C3H4RV3W2", 9),
    ],
)
def test_german_validators(fn: validators.Validator, value: str, expected: object) -> None:
    assert fn(value) == expected if isinstance(expected, int) and not isinstance(expected, bool) \
        else fn(value) is expected
