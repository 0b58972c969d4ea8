"""German nouns from Wiktionary (the ``german-nouns`` package): places, names, common nouns.

Faker's German city list holds district towns but not Köln, Nürnberg or Leipzig, and no
German exonyms (Moskau, Warschau, Mailand); Wiktionary's toponyms (about 5,900) do, with
their inflected forms ("Deutschlands"). Its entries also say which capitalised words are
ordinary nouns ("Raum", "Urlaub", "Laufzeit") in every case and number, which the Duden
list of ``zufallsworte`` cannot: that list mixes place names and surnames into its nouns.
The CSV is read straight from the installed package (offline, about a second).
"""

from __future__ import annotations

import csv
import importlib.resources
from dataclasses import dataclass
from functools import cache

#: Part-of-speech tags that make an entry a proper noun rather than an ordinary one.
_PROPER = frozenset({"Toponym", "Vorname", "Nachname", "Eigenname", "Straßenname"})


@dataclass(frozen=True)
class WiktionaryNouns:
    #: Place names and their inflected forms ("Moskau", "Deutschlands", "Abu Dhabi").
    places: frozenset[str]
    #: Places that are also an ordinary noun ("Essen", "Stein", "Hof"): context decides.
    ambiguous_places: frozenset[str]
    #: The other places: a listed word that is a place whatever the context.
    unambiguous_places: frozenset[str]
    first_names: frozenset[str]
    last_names: frozenset[str]
    #: Every form of every ordinary (not proper) noun: "Raum", "Räumen", "Anspruchs".
    common: frozenset[str]


@cache
def load_wiktionary_nouns() -> WiktionaryNouns:
    path = importlib.resources.files("german_nouns").joinpath("nouns.csv")
    places: set[str] = set()
    first: set[str] = set()
    last: set[str] = set()
    common: set[str] = set()
    with path.open(encoding="utf-8") as fh:
        rows = csv.reader(fh)
        header = next(rows)
        lemma, pos = header.index("lemma"), header.index("pos")
        # Every column but lemma, part of speech and gender holds one inflected form.
        form_columns = [k for k, name in enumerate(header)
                        if name not in {"lemma", "pos"} and not name.startswith("genus")]
        for row in rows:
            tags = set(row[pos].split(","))
            forms = {row[lemma], *(row[k] for k in form_columns if row[k])}
            forms = {f for f in forms if f[:1].isupper()}
            if "Toponym" in tags:
                places |= forms
            if "Vorname" in tags:
                first |= forms
            if "Nachname" in tags:
                last |= forms
            if "Substantiv" in tags and not tags & _PROPER:
                common |= forms
    return WiktionaryNouns(
        places=frozenset(places),
        ambiguous_places=frozenset(places & common),
        unambiguous_places=frozenset(places - common),
        first_names=frozenset(first),
        last_names=frozenset(last),
        common=frozenset(common),
    )
