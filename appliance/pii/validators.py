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


VALIDATORS: dict[str, Validator] = {
    "phone_digits": phone_digits,
    "iban": iban,
    "steuer_id": steuer_id,
    "de_document_number": de_document_number,
    "luhn": luhn,
    "de_vat_id": de_vat_id,
    "not_all_same_digit": not_all_same_digit,
}
