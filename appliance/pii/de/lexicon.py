"""Word lists the German tagger reads as features and the generator draws from.

Every list comes from an installed package (Faker's person and address providers, the
Duden word list of ``zufallsworte``, Wiktionary's nouns from ``german-nouns``) or from this
package's data (GeoNames' towns, :mod:`.places`), so a clean install rebuilds the same
lists offline.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from appliance.pii.de.places import world_places
from appliance.pii.de.wiktionary import load_wiktionary_nouns
from appliance.pii.faker_lists import faker_names

#: Locales whose person names appear in German texts (court decisions name parties of
#: every origin); German-speaking ones first, they also drive the generator's weights.
NAME_LOCALES = (
    "de_DE", "de_AT", "de_CH", "en_US", "en_GB", "fr_FR", "it_IT", "es_ES", "nl_NL",
    "pl_PL", "tr_TR", "hr_HR", "cs_CZ", "sk_SK", "sl_SI", "pt_PT", "sv_SE", "da_DK", "fi_FI",
    "hu_HU", "ro_RO", "lv_LV", "lt_LT", "et_EE",
)
GERMAN_LOCALES = ("de_DE", "de_AT", "de_CH")

#: Places the Faker lists lack but German legal and business texts name often.
EXTRA_PLACES = (
    "Bundesrepublik Deutschland", "Deutschland", "Europa", "Westeuropa", "Osteuropa",
    "Nordafrika", "Afrika", "Asien", "Amerika", "Nordamerika", "Südamerika", "Nahost",
    "Kalifornien", "Texas", "Florida", "New York", "Bayern", "Sachsen", "Thüringen",
    "Weißrussland", "Russland", "Türkei", "Niederlande", "Großbritannien", "England",
    "Schottland", "Wales", "Kosovo", "Tschechien", "Nordmazedonien", "Vereinigte Staaten",
    "Vereinigten Staaten", "Vereinigte Staaten von Amerika", "Vereinigten Staaten von Amerika",
    "USA", "Frankfurt am Main", "Frankfurt an der Oder", "Halle an der Saale",
    "Freiburg im Breisgau", "Mülheim an der Ruhr", "Rothenburg ob der Tauber", "Ruhrgebiet",
    "Rheinland", "Westfalen", "Schwarzwald", "Bodensee", "Allgäu", "Eifel", "Harz", "Sauerland",
    "Oberbayern", "Niederbayern", "Franken", "Oberfranken", "Mittelfranken", "Unterfranken",
    "Ostfriesland", "Vorpommern", "Berlin-Mitte", "Kreuzberg", "Schwabing", "Altona",
)


def _names(locales: Iterable[str], attrs: Iterable[str], kind: str = "person") -> tuple[str, ...]:
    out: dict[str, None] = {}
    for loc in locales:
        for attr in attrs:
            for v in faker_names(f"faker.providers.{kind}.{loc}", attr):
                if len(v) > 1 and v[:1].isupper() and all(c < "\u0250" for c in v):
                    out[v] = None
    return tuple(out)


@dataclass(frozen=True)
class Lexicon:
    """Surface forms (case-sensitive) by kind; ``places`` holds multi-word forms too."""

    first_names: frozenset[str]
    last_names: frozenset[str]
    places: frozenset[str]
    #: Duden words, exactly as written (nouns capitalised), and lower-cased.
    duden: frozenset[str]
    duden_lower: frozenset[str]
    #: Every form of Wiktionary's ordinary (not proper) nouns: "Raum", "Anspruchs".
    common_nouns: frozenset[str]
    #: Ordered lists the generator samples from (German-speaking ones separately).
    german_first: tuple[str, ...]
    german_last: tuple[str, ...]
    foreign_first: tuple[str, ...]
    foreign_last: tuple[str, ...]
    cities: tuple[str, ...]
    #: Wiktionary's place names that are no ordinary noun (towns, regions, rivers, exonyms).
    toponyms: tuple[str, ...]
    countries: tuple[str, ...]
    states: tuple[str, ...]
    nouns: tuple[str, ...]
    #: Wiktionary's ordinary nouns in every form that is no name or place.
    noun_forms: tuple[str, ...]
    lower_words: tuple[str, ...]

    #: Words in the longest place name (the longest match to try), counted once at load.
    max_place_words: int
    #: Places that are also an ordinary noun ("Kiel", "Essen", "Hof"): context decides.
    ambiguous_places: frozenset[str] = frozenset()
    #: GeoNames' towns and countries (:mod:`.places`), ordinary words among them.
    world_places: frozenset[str] = frozenset()


_FIRST = ("first_names", "first_names_male", "first_names_female")


@cache
def load_lexicon() -> Lexicon:
    """Build the lists once per process (a second: Faker modules and a 240k-word list)."""
    import zufallsworte

    wiki = load_wiktionary_nouns()
    duden: tuple[str, ...] = tuple(zufallsworte.duden)
    german_first = _names(GERMAN_LOCALES, _FIRST)
    # Wiktionary's surnames add those that are also ordinary nouns ("Fischer", "Koch"),
    # which judges' signature lines are full of.
    german_last = tuple(dict.fromkeys(_names(GERMAN_LOCALES, ("last_names",))
                                      + tuple(sorted(n for n in wiki.last_names if n.isalpha()
                                                     and len(n) > 2))))
    foreign = [loc for loc in NAME_LOCALES if loc not in GERMAN_LOCALES]
    foreign_first = tuple(n for n in _names(foreign, _FIRST) if n.isalpha() or "-" in n)
    foreign_last = tuple(n for n in _names(foreign, ("last_names",)) if n.replace("-", "").isalpha())
    cities = _names(GERMAN_LOCALES, ("cities", "city_names"), "address")
    countries = _names(("de_DE",), ("countries",), "address")
    states = _names(GERMAN_LOCALES, ("states",), "address")
    # A place that is also an ordinary noun ("Welt", "Osten", "Essen") is left to context.
    places = set(cities) | set(countries) | set(states) | set(EXTRA_PLACES)
    places |= wiki.unambiguous_places
    places |= {p + "s" for p in list(places) if " " not in p and p[-1] not in "sxzß"}
    names = set(german_first) | set(german_last) | set(foreign_first) | set(foreign_last)
    toponyms = tuple(sorted(p for p in wiki.unambiguous_places - names
                            if p.replace("-", "").replace(" ", "").isalpha() and len(p) > 2))
    return Lexicon(
        first_names=frozenset(german_first) | frozenset(foreign_first) | wiki.first_names,
        last_names=frozenset(german_last) | frozenset(foreign_last),
        places=frozenset(places),
        max_place_words=max(len(p.split()) for p in places),
        duden=frozenset(duden),
        duden_lower=frozenset(w.lower() for w in duden),
        common_nouns=wiki.common,
        german_first=german_first,
        german_last=german_last,
        foreign_first=foreign_first,
        foreign_last=foreign_last,
        cities=tuple(dict.fromkeys(cities + tuple(p for p in EXTRA_PLACES if " " not in p))),
        toponyms=toponyms,
        countries=countries,
        states=states,
        # Duden lists some names ("Becker", "Emily"); as ordinary nouns they would teach
        # the tagger that those names are not names.
        nouns=tuple(w for w in duden if w[:1].isupper() and w.isalpha() and len(w) > 2
                    and w not in names and w not in places),
        noun_forms=tuple(sorted(w for w in wiki.common if w.isalpha() and len(w) > 2
                                and w not in names and w not in places)),
        lower_words=tuple(w for w in duden if w.islower() and w.isalpha()),
        ambiguous_places=wiki.ambiguous_places,
        world_places=world_places(),
    )
