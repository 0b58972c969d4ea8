"""Checksum validators: the hook that turns a pattern match into a confident finding.

Each takes the matched text and answers True (checksum holds: raise the score),
False (drop the match) or None (no opinion). They are pure functions so that the
recognizer table can name them and tests can drive them with tables of cases.
"""

from __future__ import annotations

import re
from collections.abc import Callable

Validator = Callable[[str], "bool | None"]

_NON_ALNUM = re.compile(r"[^0-9A-Za-z]")


def _compact(text: str) -> str:
    return _NON_ALNUM.sub("", text).upper()


def iban(text: str) -> bool:
    """ISO 13616 mod-97 check, plus the length each country uses."""
    s = _compact(text)
    if len(s) < 15 or len(s) > 34 or not s[:2].isalpha() or not s[2:4].isdigit():
        return False
    expected = _IBAN_LENGTHS.get(s[:2])
    if expected is not None and len(s) != expected:
        return False
    rearranged = s[4:] + s[:4]
    digits = "".join(str(int(c, 36)) for c in rearranged)
    return int(digits) % 97 == 1


_IBAN_LENGTHS = {
    "AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18,
    "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27, "HR": 21, "HU": 28, "IE": 22,
    "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18,
    "NO": 15, "PL": 28, "PT": 25, "RO": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27,
}


def steuer_id(text: str) -> bool:
    """German tax identification number (11 digits, ISO 7064 MOD 11,10).

    Among the first ten digits exactly one digit repeats (twice or three times) and
    the first digit is never 0.
    """
    s = re.sub(r"\D", "", text)
    if len(s) != 11 or s[0] == "0":
        return False
    counts = [s[:10].count(d) for d in set(s[:10])]
    repeated = [c for c in counts if c > 1]
    if len(repeated) != 1 or repeated[0] > 3:
        return False
    product = 10
    for ch in s[:10]:
        total = (int(ch) + product) % 10 or 10
        product = (total * 2) % 11
    check = (11 - product) % 10
    return check == int(s[10])


_ICAO_VALUES = {c: i for i, c in enumerate("0123456789")} | {
    c: i + 10 for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
}


def icao_check_digit(body: str) -> int:
    """ICAO 9303 check digit (weights 7, 3, 1) used on German ID cards and passports."""
    return sum(_ICAO_VALUES[c] * (7, 3, 1)[i % 3] for i, c in enumerate(body)) % 10


def de_document_number(text: str) -> bool | None:
    """German ID card / passport serial: 9 characters plus an optional check digit.

    With ten characters the ICAO check digit must hold; nine alone gives no opinion.
    """
    s = _compact(text)
    if len(s) == 10 and s[-1].isdigit():
        return icao_check_digit(s[:9]) == int(s[-1])
    if len(s) == 9:
        return None
    return False


def luhn(text: str) -> bool:
    digits = [int(c) for c in re.sub(r"\D", "", text)]
    if len(digits) < 12:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def de_vat_id(text: str) -> bool | None:
    """German USt-IdNr (DE + 9 digits, ISO 7064 MOD 11,10); other EU formats: no opinion."""
    s = _compact(text)
    if not s.startswith("DE"):
        return None
    digits = s[2:]
    if len(digits) != 9 or not digits.isdigit():
        return False
    product = 10
    for ch in digits[:8]:
        total = (int(ch) + product) % 10 or 10
        product = (total * 2) % 11
    check = (11 - product) % 10
    return check == int(digits[8])


def not_all_same_digit(text: str) -> bool | None:
    """Rejects placeholder-like numbers (0000000, 1111111) that are never real."""
    d = re.sub(r"\D", "", text)
    return False if d and len(set(d)) == 1 else None


_ISO_DATE = re.compile(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}$|^\d{1,2}[-./]\d{1,2}[-./]\d{2,4}$")


def phone_digits(text: str) -> bool | None:
    """A phone number has 7 to 13 digits, not all the same, and is not a date."""
    d = re.sub(r"\D", "", text)
    if not 7 <= len(d) <= 13 or _ISO_DATE.match(text.strip()):
        return False
    return not_all_same_digit(text)


def _cross_sum(n: int) -> int:
    return n // 10 + n % 10


def _letter_digits(letter: str) -> str:
    """A letter as its two-digit place in the alphabet (A = 01 ... Z = 26)."""
    return f"{ord(letter) - 64:02d}"


def de_social_security(text: str) -> bool:
    """German Sozialversicherungsnummer (Rentenversicherungsnummer): area number (2
    digits), birth date DDMMYY, the birth name's initial, a serial (2 digits), a check
    digit. The letter becomes its place in the alphabet; the twelve digits are weighted
    2, 1, 2, 5, 7, 1, 2, 1, 2, 1, 2, 1, the products' digit sums added, modulo 10."""
    s = _compact(text)
    if len(s) != 12 or not (s[:8].isdigit() and s[8].isalpha() and s[9:].isdigit()):
        return False
    month = int(s[4:6])
    if not 1 <= month <= 12 or int(s[2:4]) > 31:
        return False
    digits = s[:8] + _letter_digits(s[8]) + s[9:11]
    total = sum(_cross_sum(int(d) * w) for d, w in zip(digits, (2, 1, 2, 5, 7, 1, 2, 1, 2, 1, 2, 1),
                                                     strict=True))
    return total % 10 == int(s[11])


def de_health_insurance(text: str) -> bool | None:
    """German Krankenversichertennummer (the fixed part on the health card): a letter and
    nine digits, the last a check digit: the letter as two digits, then weights 1, 2, 1,
    2, ... over the ten digits, the products' digit sums added, modulo 10.

    A valid number gives no opinion (None): one in ten letter-and-nine-digit codes
    (invoice or product numbers) passes the check, so the recognizer's context words
    decide; a failed check drops the match.
    """
    s = _compact(text)
    if len(s) != 10 or not s[0].isalpha() or not s[1:].isdigit():
        return False
    digits = _letter_digits(s[0]) + s[1:9]
    total = sum(_cross_sum(int(d) * (1 if i % 2 == 0 else 2)) for i, d in enumerate(digits))
    return None if total % 10 == int(s[9]) else False


#: First digits of the 13-digit (ELSTER) Steuernummer by Land: the tax office number's
#: Land prefix; NRW's offices start with 5, every other Land's with two digits.
_ELSTER_LAND_PREFIXES = frozenset(
    "28 91 92 93 11 30 24 22 26 40 23 27 10 32 31 21 41".split())


def de_tax_number(text: str) -> bool | None:
    """German Steuernummer, in a Land's own layout or the 13-digit federal (ELSTER) one.

    Land layouts have 10 or 11 digits in three or four groups: FF/BBB/UUUUP (2/3/5: most
    Länder), FFF/BBB/UUUUP (3/3/5: Bayern, Brandenburg, Hessen with a leading 0, MV,
    Saarland, Sachsen, Sachsen-Anhalt, Thüringen), FFF/BBBB/UUUP (3/4/4: NRW) and
    FF/BBB/UUUU/P (Rheinland-Pfalz). The federal form is a Land's tax office number
    (4 digits), a 0, then the district and the personal number (8 digits). The check
    digit's procedure differs by Land and is not checked: a well-formed number gives no
    opinion (None), so the pattern's score and context decide.
    """
    groups = re.split(r"[/ ]", text.strip())
    digits = "".join(groups)
    if not digits.isdigit():
        return False
    if len(groups) == 1:
        if len(digits) != 13 or digits[4] != "0":
            return False
        return None if digits[:2] in _ELSTER_LAND_PREFIXES or digits[0] == "5" else False
    shape = tuple(len(g) for g in groups)
    return None if shape in {(2, 3, 5), (3, 3, 5), (3, 4, 4), (2, 3, 4, 1)} else False


_MONTHS = {
    "januar": 1, "jan": 1, "jänner": 1, "februar": 2, "feb": 2, "märz": 3, "maerz": 3,
    "mär": 3, "mrz": 3, "april": 4, "apr": 4, "mai": 5, "juni": 6, "jun": 6, "juli": 7,
    "jul": 7, "august": 8, "aug": 8, "september": 9, "sep": 9, "sept": 9, "oktober": 10,
    "okt": 10, "november": 11, "nov": 11, "dezember": 12, "dez": 12,
}
_DATE_NUMERIC = re.compile(r"^(\d{1,2})\.\s?(\d{1,2})\.\s?(\d{2}|\d{4})$")
_DATE_WORDS = re.compile(r"^(\d{1,2})\.\s?([A-Za-zÄÖÜäöü]+)\.?\s?(\d{4})$")
_DATE_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def date_of_birth(text: str) -> bool | None:
    """A real calendar date in one of German's written forms ("03.03.1980", "3. März
    1980", "1980-03-03"), born after 1900 and not in the future: no opinion (None, the
    cue before it decides); anything else drops the match."""
    import datetime

    s = text.strip()
    if m := _DATE_NUMERIC.match(s):
        day, month, year = int(m[1]), int(m[2]), int(m[3])
    elif m := _DATE_WORDS.match(s):
        day, month, year = int(m[1]), _MONTHS.get(m[2].lower(), 0), int(m[3])
    elif m := _DATE_ISO.match(s):
        year, month, day = int(m[1]), int(m[2]), int(m[3])
    else:
        return False
    if year < 100:  # "03.03.80": the most recent year ending so that is not in the future
        now = datetime.date.today().year
        year += 2000 if 2000 + year <= now else 1900
    try:
        born = datetime.date(year, month, day)
    except ValueError:
        return False
    return None if datetime.date(1900, 1, 1) <= born <= datetime.date.today() else False


VALIDATORS: dict[str, Validator] = {
    "phone_digits": phone_digits,
    "iban": iban,
    "steuer_id": steuer_id,
    "de_document_number": de_document_number,
    "luhn": luhn,
    "de_vat_id": de_vat_id,
    "not_all_same_digit": not_all_same_digit,
    "de_social_security": de_social_security,
    "de_health_insurance": de_health_insurance,
    "de_tax_number": de_tax_number,
    "date_of_birth": date_of_birth,
}
