"""The recognizers European users need, written as data: patterns, context words, a validator.

Presidio ships the generic ones (e-mail, credit card, phone, IP, URL, US ids); this table
adds IBAN with its checksum, the German tax id, identity card and passport numbers,
German phone numbers, street addresses, licence plates, EU VAT ids and secrets. A new
recognizer is one more :class:`RecognizerSpec` row, never new code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from presidio_analyzer import Pattern, PatternRecognizer, RecognizerResult

from appliance.pii.validators import VALIDATORS

_CASE = re.DOTALL | re.MULTILINE
_NOCASE = _CASE | re.IGNORECASE


@dataclass(frozen=True, slots=True)
class RecognizerSpec:
    name: str
    entity: str
    #: (pattern name, regex, base score) triples.
    patterns: tuple[tuple[str, str, float], ...]
    context: tuple[str, ...] = ()
    #: Name of a function in :data:`appliance.pii.validators.VALIDATORS`.
    validator: str | None = None
    languages: tuple[str, ...] = ("en", "de")
    ignore_case: bool = False


class SpecRecognizer(PatternRecognizer):
    """A pattern recognizer whose validation hook is named in its spec.

    Regex flags are the spec's own (the analyzer's global case-insensitive default
    would turn ``[A-Z]`` into any letter and flood the results).
    """

    def __init__(self, spec: RecognizerSpec, language: str) -> None:
        if spec.validator is not None and spec.validator not in VALIDATORS:
            raise ValueError(f"recognizer {spec.name}: unknown validator {spec.validator!r}")
        super().__init__(
            supported_entity=spec.entity,
            name=spec.name,
            supported_language=language,
            patterns=[Pattern(n, rx, score) for n, rx, score in spec.patterns],
            context=list(spec.context),
            global_regex_flags=_NOCASE if spec.ignore_case else _CASE,
        )
        self._validator = VALIDATORS[spec.validator] if spec.validator else None

    def analyze(
        self,
        text: str,
        entities: list[str],
        nlp_artifacts: Any = None,
        regex_flags: int | None = None,
    ) -> list[RecognizerResult]:
        return super().analyze(text, entities, nlp_artifacts, self.global_regex_flags)

    def validate_result(self, pattern_text: str) -> bool | None:
        return self._validator(pattern_text) if self._validator else None


_DOC_ALPHABET = "CFGHJKLMNPRTVWXYZ0-9"
_STREET_SUFFIX = (
    r"(?:stra(?:ß|ss)e|str\.|weg|allee|platz|gasse|ring|damm|ufer|chaussee|steig|pfad|markt)"
)
#: Put before a plate's number: not a citation's year and page ("NJW-RR 1999, 1234",
#: "GRUR-RR 2010 S. 12"), which read like a plate.
_NOT_CITATION = r"(?!(?:19|20)\d\d(?:,[ ]?\d|[ ]S\.[ ]?\d))"

_MONTH_WORDS = ("Januar|Jänner|Februar|März|Maerz|April|Mai|Juni|Juli|August|September|Oktober"
                "|November|Dezember|Jan|Feb|Mär|Mrz|Apr|Jun|Jul|Aug|Sept|Sep|Okt|Nov|Dez")
#: A date as German writes it: "03.03.1980", "3.3.80", "3. März 1980", "3. Mär. 1980", ISO.
_DATE = (rf"(?:\d{{1,2}}\.[ ]?\d{{1,2}}\.[ ]?(?:\d{{4}}|\d{{2}})|\d{{1,2}}\.[ ]?(?:{_MONTH_WORDS})\.?[ ]?\d{{4}}"
         rf"|\d{{4}}-\d{{2}}-\d{{2}})(?![\d.]\d)")
#: What announces a date of birth (a look-behind: the cue itself stays readable).
_DOB_CUE = (r"(?<=\b(?:[Gg]eb\.|[Gg]eboren|GEBOREN|[Gg]eburtsdatum|[Gg]eb\.-[Dd]atum|[Gg]eburtstag"
            r"|[Gg]eburtsdat\.|Geb\.[ ]?Dat\.|geb\.[ ]?am)(?:[ ]+(?:am|den|ist|war))?[ ]*:?[ ]*)")

SPECS: tuple[RecognizerSpec, ...] = (
    RecognizerSpec(
        name="IbanChecksumRecognizer",
        entity="IBAN_CODE",
        patterns=(
            ("iban_grouped", r"\b[A-Z]{2}\d{2}(?: ?[0-9A-Z]{4}){2,7}(?: ?[0-9A-Z]{1,3})?\b", 0.3),
        ),
        context=("iban", "konto", "account", "bank", "überweisung", "transfer"),
        validator="iban",
        ignore_case=True,  # "my iban is gb50mvfc..." (chat text is often lower-cased)
    ),
    RecognizerSpec(
        name="DeTaxIdRecognizer",
        entity="DE_TAX_ID",
        patterns=(
            ("steuer_id_plain", r"\b[1-9]\d{10}\b", 0.2),
            ("steuer_id_spaced", r"\b[1-9]\d (?:\d{3} ){2}\d{3}\b", 0.3),
        ),
        context=("steuer", "steuer-id", "steuerid", "steueridentifikationsnummer", "idnr",
                 "identifikationsnummer", "tin", "tax"),
        validator="steuer_id",
    ),
    RecognizerSpec(
        name="DeIdCardRecognizer",
        entity="ID_CARD",
        patterns=(
            ("de_id_card", rf"\b(?=[{_DOC_ALPHABET}]*\d)[LMNPRTVWXY][{_DOC_ALPHABET}]{{8}}\d?\b", 0.3),
        ),
        context=("personalausweis", "ausweis", "ausweisnummer", "id card", "identity card",
                 "identity", "perso", "id-karte"),
        validator="de_document_number",
    ),
    RecognizerSpec(
        name="DePassportRecognizer",
        entity="PASSPORT",
        patterns=(
            ("de_passport", rf"\b(?=[{_DOC_ALPHABET}]*\d)[CFGHJK][{_DOC_ALPHABET}]{{8}}\d?\b", 0.3),
        ),
        context=("reisepass", "pass", "passnummer", "passport", "travel document"),
        validator="de_document_number",
    ),
    RecognizerSpec(
        name="DeSocialSecurityRecognizer",
        entity="DE_SOCIAL_SECURITY",
        patterns=(
            ("de_svnr", r"\b\d{2}[ ]?\d{6}[ ]?[A-Z][ ]?\d{3}\b", 0.5),
        ),
        context=("sozialversicherung", "sv-nummer", "svnr", "sv-nr", "rentenversicherung",
                 "versicherungsnummer", "rvnr", "social security"),
        validator="de_social_security",
        languages=("de",),
    ),
    RecognizerSpec(
        name="DeHealthInsuranceRecognizer",
        entity="DE_HEALTH_INSURANCE",
        patterns=(
            ("de_kvnr", r"\b[A-Z]\d{9}\b", 0.4),
        ),
        context=("krankenversicherung", "versichertennummer", "versicherten-nr", "versichertennr",
                 "kv-nummer", "kv-nr", "kvnr", "krankenkasse", "gesundheitskarte", "egk",
                 "health insurance"),
        validator="de_health_insurance",
        languages=("de",),
    ),
    RecognizerSpec(
        name="DeTaxNumberRecognizer",
        entity="DE_TAX_NUMBER",
        patterns=(
            # A Land's layout with slashes ("181/815/08155", "22/815/08154", "27/815/0815/5").
            ("de_steuernummer_slashed", r"(?<![\d/])\d{2,3}/\d{3,4}/\d{4,5}(?:/\d)?(?![\d/])", 0.5),
            # With spaces, or the 13-digit federal form: only with a context word.
            ("de_steuernummer_spaced", r"(?<!\d)(?<!\d )\d{2,3} \d{3,4} \d{4,5}(?![ ]?\d)", 0.3),
            ("de_steuernummer_elster", r"\b\d{13}\b", 0.25),
        ),
        context=("steuernummer", "steuer-nr", "st.-nr", "stnr", "st-nr", "finanzamt", "steuer"),
        validator="de_tax_number",
        languages=("de",),
    ),
    RecognizerSpec(
        name="DeCommercialRegisterRecognizer",
        entity="DE_COMMERCIAL_REGISTER",
        patterns=(
            ("de_hrb", r"\b(?:HRA|HRB)[ ]?\d{1,6}(?:[ ][A-Z](?![\w.]))?(?!\w)", 0.6),
            # Cooperative, partnership and association registers: "VR 1234" only with context.
            ("de_other_register", r"\b(?:GnR|GsR|PR|VR)[ ]?\d{1,6}(?:[ ][A-Z](?![\w.]))?(?!\w)", 0.25),
        ),
        context=("amtsgericht", "registergericht", "handelsregister", "vereinsregister",
                 "partnerschaftsregister", "genossenschaftsregister", "registernummer",
                 "eingetragen", "register"),
        languages=("de",),
    ),
    RecognizerSpec(
        name="DeDateOfBirthRecognizer",
        entity="DATE_OF_BIRTH",
        patterns=(
            # After a cue ("geb.", "geboren am", "Geburtsdatum:") or a birth star ("*03.03.1980");
            # a date without one is any date, not personal data by itself.
            ("de_dob_cued", rf"{_DOB_CUE}{_DATE}", 0.85),
            ("de_dob_star", rf"(?<=(?:^|[\s(,;])\*[ ]?){_DATE}", 0.85),
        ),
        context=("geboren", "geburtsdatum", "geburtstag", "geb"),
        validator="date_of_birth",
        languages=("de",),
    ),
    RecognizerSpec(
        name="DePhoneRecognizer",
        entity="PHONE_NUMBER",
        patterns=(
            ("de_phone_intl", r"(?<![\w+])(?:\+49|0049)[ \-/]?(?:\(0\)[ ]?)?[1-9]\d{1,4}[ \-/]?\d{2,}(?:[ \-]?\d{1,5}){0,3}\b", 0.7),
            ("de_phone_national", r"(?<![\w+])\(?0[1-9]\d{1,4}\)?[ \-/]\d{3,}(?:[ \-]?\d{1,5}){0,3}\b", 0.45),
        ),
        context=("tel", "telefon", "telefonnummer", "handy", "mobil", "mobile", "phone", "fax",
                 "rufnummer", "anrufen", "call"),
        validator="not_all_same_digit",
    ),
    RecognizerSpec(
        name="PhoneContextRecognizer",
        entity="PHONE_NUMBER",
        patterns=(
            ("short_phone", r"(?<![\w.+-])\(?\d{2,4}\)?[ .\-]?\d{3,4}(?:[ .\-]\d{2,4}){0,2}(?![\w.-]\d)", 0.2),
            # "25-62-29-72", "0348 2102744", "469 34 883": groups of any length, 7-13 digits
            ("grouped_phone", r"(?<![\w.+:-])\(?\d{2,4}\)?(?:[ .\-]\d{2,8}){1,4}(?![\w.:-]*\d)", 0.2),
            # with a country or trunk prefix: "1-546-109-2483", "+31(0)012-904047", "(009)-0054749"
            ("prefixed_phone", r"(?<![\w.+:-])(?:\+|00)?\d{1,3}(?:[ .\-]?\(\d{1,5}\))?[ .\-]?\(?\d{2,5}\)?(?:[ .\-]\d{2,8}){1,4}(?![\w.:-]*\d)", 0.2),
            ("plain_phone", r"(?<![\w.+:-])(?:\+|00)?\d{8,13}\b", 0.1),
        ),
        context=("call", "phone", "answer", "answering", "number", "reach", "tel", "telefon",
                 "mobile", "mobil", "handy", "fax", "office", "anrufen", "erreichbar", "contact"),
        validator="phone_digits",
        languages=("en",),
    ),
    RecognizerSpec(
        name="DeStreetAddressRecognizer",
        entity="ADDRESS",
        patterns=(
            ("de_street", rf"\b[A-ZÄÖÜ][a-zäöüß]+(?:-[A-ZÄÖÜ]?[a-zäöüß]+)*{_STREET_SUFFIX}[ ]+\d{{1,4}}(?:[ ]?[a-zA-Z](?!\w))?", 0.6),
            ("de_street_split", r"\b[A-ZÄÖÜ][a-zäöüß]+ (?:Straße|Strasse|Str\.|Weg|Allee|Platz|Gasse|Ring|Damm|Ufer)[ ]+\d{1,4}(?:[ ]?[a-zA-Z](?!\w))?", 0.6),
            ("de_postcode_city", r"\b(?<!\d[ .,])\d{5}[ ]+[A-ZÄÖÜ][a-zäöüß]+(?:[ -][A-ZÄÖÜ][a-zäöüß]+)?\b", 0.45),
            ("unit", r"\b(?:Apt\.|Suite|P\.O\. Box|Unit|Box|PSC|DPO [A-Z]{2}|FPO [A-Z]{2}|APO [A-Z]{2})[ ]\d{1,5}\b", 0.6),
        ),
        context=("address", "adresse", "anschrift", "wohnt", "wohnhaft", "lives", "street",
                 "straße", "strasse", "zip", "plz", "postleitzahl"),
    ),
    RecognizerSpec(
        name="StreetAddressRecognizer",
        entity="ADDRESS",
        patterns=(
            ("en_street", r"\b\d{1,5}[ ]+(?:[A-Z][a-z]+[ ]){1,3}(?:Street|St\.|Avenue|Ave\.?|Road|Rd\.|Boulevard|Blvd\.?|Lane|Ln\.|Drive|Court|Ct\.|Way|Place|Terrace|Circle|Parkway|Highway)(?![\w])", 0.6),
            ("intl_street", r"\b\d{1,5}[ ]+(?:Rua|Rue|Av\.|Avenida|Avda\.|Via|Viale|Calle|Carrer|Estrada|Rodovia|Travessa|Strada|Piazza|Plac|ul\.|Ulica|Chemin|Allée|Boulevard|Route|Avenue|Corso|Largo|Camino|Paseo|Rambla|Straat|Laan|Vej|Gatan|Gata|Katu|Utca)\b[^\n,;:]{0,40}", 0.6),
            ("zip_with_context", r"(?<=zip code is )\d{4,6}\b|(?<=postcode is )\d{4,6}\b|(?<=postal code is )\d{4,6}\b", 0.6),
            ("number_words_number", r"\b\d{1,5}[ ]+(?:[A-ZÀ-ÖØ-Þ][^\W\d_]*\.?[ ]+){1,3}\d{1,5}\b", 0.5),
            ("after_address_word", r"(?i:(?<=address is )|(?<=address: )|(?<=address with )|(?<=lives at )|(?<=live at )|(?<=located at )|(?<=office is at )|(?<=moved to )|(?<=adresse: )|(?<=anschrift: )|(?<=wohnt in der ))\d{1,5}[ ]+[^\n?!]{3,100}?(?=[ ]for[ ]|[ ]and[ ]|\.(?:[ ]|$)|[?!]|\n\n|$)", 0.6),
            ("country_postcode", r"(?<=[a-z] )\d{5}(?=$|\n|,|[ ]for[ ])", 0.5),
        ),
        context=("address", "lives", "street", "zip", "postcode"),
        languages=("en",),
    ),
    RecognizerSpec(
        name="DeLicensePlateRecognizer",
        entity="LICENSE_PLATE",
        patterns=(
            ("de_plate_canonical", rf"\b[A-ZÄÖÜ]{{1,3}}-[A-Z]{{1,2}} {_NOT_CITATION}[1-9]\d{{0,3}}[EH]?\b", 0.55),
            ("de_plate_loose", rf"\b[A-ZÄÖÜ]{{1,3}}[ -][A-Z]{{1,2}}[ -]?{_NOT_CITATION}[1-9]\d{{0,3}}[EH]?\b", 0.3),
        ),
        context=("kennzeichen", "kfz", "nummernschild", "fahrzeug", "auto", "plate",
                 "license plate", "licence plate", "registration", "car", "vehicle"),
    ),
    RecognizerSpec(
        name="EuVatIdRecognizer",
        entity="VAT_ID",
        patterns=(
            ("eu_vat", (r"\b(?:ATU\d{8}|BE[01]\d{9}|BG\d{9,10}|CY\d{8}[A-Z]|CZ\d{8,10}|DE\d{9}"
             r"|DK\d{8}|EE\d{9}|EL\d{9}|ES[0-9A-Z]\d{7}[0-9A-Z]|FI\d{8}|FR[0-9A-Z]{2}\d{9}"
             r"|HR\d{11}|HU\d{8}|IE\d[0-9A-Z+*]\d{5}[A-Z]{1,2}|IT\d{11}|LT(?:\d{9}|\d{12})"
             r"|LU\d{8}|LV\d{11}|MT\d{8}|NL\d{9}B\d{2}|PL\d{10}|PT\d{9}|RO\d{2,10}"
             r"|SE\d{12}|SI\d{8}|SK\d{10})\b"), 0.5),
        ),
        context=("ust", "ust-idnr", "umsatzsteuer", "vat", "tax id", "mwst"),
        validator="de_vat_id",
    ),
    RecognizerSpec(
        name="SecretRecognizer",
        entity="SECRET",
        patterns=(
            ("pem_private_key", r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----.+?-----END (?:[A-Z]+ )*PRIVATE KEY-----", 1.0),
            ("openai_key", r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}", 0.95),
            ("anthropic_key", r"\bsk-ant-[A-Za-z0-9_\-]{20,}", 1.0),
            ("appliance_key", r"\bak-[A-Za-z0-9_\-]{20,}", 0.9),
            ("aws_access_key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", 0.95),
            ("github_token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})", 1.0),
            ("slack_token", r"\bxox[abprs]-[A-Za-z0-9\-]{10,}", 1.0),
            ("stripe_key", r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}", 1.0),
            ("google_api_key", r"\bAIza[0-9A-Za-z_\-]{35}", 1.0),
            ("huggingface_token", r"\bhf_[A-Za-z0-9]{30,}", 0.95),
            ("jwt", r"\beyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{10,}", 1.0),
            ("bearer_token", r"(?<=[Bb]earer )[A-Za-z0-9._~+/\-]{16,}=*", 0.9),
        ),
        context=("key", "token", "secret", "password", "api", "schlüssel", "passwort"),
    ),
)


def build_recognizers(languages: tuple[str, ...]) -> list[PatternRecognizer]:
    """One recognizer per (spec, language) pair, as Presidio registers them."""
    return [
        SpecRecognizer(spec, lang)
        for spec in SPECS
        for lang in spec.languages
        if lang in languages
    ]
