"""Given names, as a cheap sign that a sentence is about someone.

The identifier recognizers do not find every name (a German tagger trained on court
decisions misses "Ethan Klee"), and a special-category word needs a data subject nearby
to count. A known given name followed by a surname ("Raj Mehta", not "Roman Empire") is
such a sign. Faker's name lists of the locales whose people most often appear in EU
prompts, read once per process.
"""

from __future__ import annotations

import importlib
from functools import cache

_LOCALES = ("en_US", "en_GB", "en_IN", "de_DE", "de_AT", "de_CH", "fr_FR", "it_IT", "es_ES",
            "pl_PL", "tr_TR", "nl_NL", "pt_PT")


#: An English word at least this frequent (once in 100,000 words, Zipf 4) is an ordinary
#: word after a given name ("Roman Empire"), not a surname.
_EVERYDAY = 1e-5


def _faker_names(attrs: tuple[str, ...]) -> frozenset[str]:
    names: set[str] = set()
    for locale in _LOCALES:
        try:
            provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        except ImportError:
            continue
        for attr in attrs:
            value = getattr(provider, attr, ())
            names.update(n for n in (value.keys() if isinstance(value, dict) else value)
                         if len(n) > 2 and n.isalpha())
    return frozenset(names)


@cache
def given_names() -> frozenset[str]:
    return _faker_names(("first_names", "first_names_male", "first_names_female"))


@cache
def surnames() -> frozenset[str]:
    return _faker_names(("last_names",))


def is_full_name(first: str, second: str) -> bool:
    """``first second`` reads as a given name and a surname."""
    if first not in given_names() or not second[:1].isupper() or not second.isalpha():
        return False
    if second in surnames():
        return True
    return _frequencies().get(second.lower(), 0.0) < _EVERYDAY


@cache
def _frequencies() -> dict[str, float]:
    # The same (cached) table the English gazetteer reads: one copy per worker, not two.
    from wordfreq import get_frequency_dict

    return get_frequency_dict("en", wordlist="large")
