"""Names and places without a statistical model: gazetteers plus context rules.

No German spaCy pipeline is on the package registry, so German persons and places come
from word lists that Faker ships (first and last names of many locales, German,
Austrian and Swiss cities, countries in German and English, German states) and from
context rules that legal and business German uses: a title or role before a name
("Herr", "Dr.", "Richterin", "Zeuge"), anonymised initials ("der Kläger K."), a
signature line. The same recognizer adds first names and places for English, where
the small spaCy model misses many foreign names.

All lists are built when the recognizer loads (inside each analyzer worker), never at
import time.
"""

from __future__ import annotations

import functools
import importlib
import re
from dataclasses import dataclass, field
from typing import Any

from presidio_analyzer import AnalysisExplanation, EntityRecognizer, RecognizerResult
from presidio_analyzer.predefined_recognizers import SpacyRecognizer
from spacy.lang.en.stop_words import STOP_WORDS as _STOP_WORDS_EN

from appliance.pii.faker_lists import faker_names

_TOKEN = re.compile(r"[^\W\d_]+(?:[-'’][^\W\d_]+)*\.?|\d+|[^\w\s]|…")

_NAME_LOCALES = (
    "de_DE", "de_AT", "de_CH", "en_US", "en_GB", "en_IE", "fr_FR", "it_IT", "es_ES", "nl_NL",
    "pl_PL", "pt_PT", "pt_BR", "sv_SE", "da_DK", "fi_FI", "cs_CZ", "hu_HU", "tr_TR", "hr_HR",
    "sk_SK", "sl_SI", "ro_RO", "no_NO",
)
_PLACE_LOCALES = (
    "de_DE", "de_AT", "de_CH", "en_US", "en_GB", "fr_FR", "it_IT", "es_ES", "nl_NL", "pl_PL",
    "pt_PT", "sv_SE", "da_DK", "fi_FI", "cs_CZ", "hu_HU", "el_GR",
)
_DE_STATES_EXTRA = (
    "Bundesrepublik Deutschland", "Bundesrepublik", "Deutschland", "Europa", "Westeuropa",
    "Osteuropa", "Kalifornien", "Weißrussland", "Russland", "Türkei", "Niederlande",
    "Vereinigte Staaten", "Vereinigten Staaten", "USA", "UK", "EU", "Großbritannien",
    "England", "Schottland", "Kosovo", "Tschechien", "Nordmazedonien",
)

#: Titles and roles after which a capitalised word or an initial is a person.
_DE_PERSON_TRIGGERS = frozenset(
    ["herr", "herrn", "frau", "dr.", "prof.", "richter", "richterin", "richters", "richterinnen", "vorsitzende", "vorsitzenden", "vorsitzender", "rechtsanwalt", "rechtsanwältin", "rechtsanwälte", "rechtsanwalts", "notar", "notarin", "zeuge", "zeugin", "zeugen", "sachverständige", "sachverständigen", "sachverständiger", "gutachter", "gutachterin", "facharzt", "fachärztin", "ärztin", "arzt", "betreuer", "betreuerin", "sozialarbeiter", "sozialarbeiterin", "referatsleiter", "abteilungsleiter", "geschäftsführer", "geschäftsführerin", "mitarbeiter", "mitarbeiterin", "ehemann", "ehefrau", "sohn", "tochter", "mutter", "vater", "bruder", "schwester", "kollege", "kollegin", "verfahren", "familie", "ms.", "mr.", "mrs.", "miss"]
)
_INSTITUTION_ENDINGS = (
    "gericht", "gerichts", "gerichtshof", "gerichtshofs", "amt", "amts", "ministerium",
    "ministeriums", "landes", "freistaates", "freistaat", "kammer", "regierung", "behörde",
    "universität", "court", "university", "ministry",
)
#: In German, "des Landes Brandenburg" and "Freistaat Bayern" are places (or parties,
#: which the state is too): only courts, offices and ministries end a place match.
_DE_INSTITUTION_ENDINGS = tuple(e for e in _INSTITUTION_ENDINGS
                                if e not in {"landes", "freistaates", "freistaat"})
#: German court abbreviations: "OLG Karlsruhe", "LG Lübeck", "SG München" name a court
#: (in citations an ordinary word), not a place where someone is.
_DE_COURTS = frozenset(
    "ag lg olg bgh sg lsg bsg vg ovg vgh bverwg fg bfh arbg lag bag bpatg bverfg kg "
    "amtsgericht landgericht oberlandesgericht sozialgericht landessozialgericht "
    "verwaltungsgericht verwaltungsgerichtshof oberverwaltungsgericht finanzgericht "
    "arbeitsgericht landesarbeitsgericht staatsanwaltschaft generalstaatsanwaltschaft "
    "gerichtshof".split()
)
_DE_LAW_ENDINGS = ("gesetz", "gesetzes", "verordnung", "ordnung", "verfassung",
                   "tarifvertrag", "tarifvertrags")
#: Words after which a capitalised word or an initial names a place ("Freistaat Sachsen").
_PLACE_TRIGGERS = frozenset(
    "freistaat freistaates hansestadt landkreis kreis gemeinde stadt ortsteil ortschaft "
    "heimatdorf heimatort dorf republik königreich bundesland richtung wohnort geburtsort "
    "city town village".split()
)
_TITLES = frozenset(["mr.", "mrs.", "ms.", "miss", "dr.", "prof.", "mr", "mrs", "ms", "dr"])
#: Roles after which only an anonymised initial is a name ("der Kläger K."), since
#: "der Kläger Anspruch ..." is ordinary German word order.
_DE_ROLE_TRIGGERS = frozenset(
    ["kläger", "klägerin", "klägers", "beklagte", "beklagten", "beklagter", "angeklagte", "angeklagten", "angeklagter", "antragsteller", "antragstellerin", "beschwerdeführer", "beschwerdeführerin", "beigeladene", "beigeladenen", "nebenkläger", "nebenklägerin", "versicherte", "versicherten", "geschädigte", "geschädigten", "patient", "patientin", "des", "der", "die", "dem", "den"]
)
#: Words before an initial that make it a reference, not a person (§ 3 Abs. 1 S. 2).
_NOT_AFTER = frozenset(
    ["§", "§§", "abs.", "art.", "nr.", "satz", "s.", "anlage", "anl.", "buchst.", "lit.", "ziff.", "teil", "spalte", "kapitel", "fall", "gruppe", "typ", "klasse", "variante", "stufe", "vitamin", "modell", "az.", "aktenzeichen", "rn.", "rdnr.", "bl.", "band", "bd.", "tz.", "vgl.", "anh.", "nummer", "abschnitt", "punkt", "tabelle", "figur", "fig.", "anspruch", "ansprüche", "zeichen", "buchstabe", "a.", "o.", "i.", "u.", "s.", "v.", "z.", "zu", "abs", "nr", "s", "art", "bl", "merkzeichen", "merkzeichens", "beispiel", "beispielen", "anlage", "gruppe", "stufe", "gmbh", "ag", "kg", "rgbl", "bgbl", "w.", "d.", "stufen", "buchstaben", "hilfsantrag", "richtung", "fa.", "sp.", "li.", "re."]
)
_ROMAN = frozenset(["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII"]
)
_DE_PLACE_PREPS = frozenset(["in", "aus", "nach", "im", "bei"])
_NOUN_SUFFIXES = (
    "ung", "heit", "keit", "schaft", "tion", "nis", "tum", "gründe", "bestand", "ismus",
    "ität", "chen", "lich", "isch", "ende", "ierung",
)
_HEADINGS = frozenset(
    ["gründe", "tatbestand", "entscheidungsgründe", "tenor", "beschluss", "urteil", "begründung", "leitsatz", "leitsätze", "sachverhalt", "hinweis", "hinweise", "anmerkung", "anlage", "anlagen", "rechtsmittelbelehrung", "zusammenfassung", "inhalt", "einleitung", "ergebnis", "fazit", "danke", "hallo", "thanks", "regards", "summary"]
)


@dataclass
class Lexicon:
    """Word lists for one language; sets of exact (case-sensitive) surface forms."""

    first_names: set[str] = field(default_factory=set)
    last_names: set[str] = field(default_factory=set)
    places: set[str] = field(default_factory=set)
    #: Ordinary words that names and places must not swallow (German nouns are capitalised).
    common: set[str] = field(default_factory=set)
    max_place_words: int = 1
    #: Every first and last name of the lists, lower-cased, ordinary words included ("mark").
    any_names: set[str] = field(default_factory=set)
    #: German surnames that are also ordinary words ("Fischer", "Koch"): a name when they
    #: stand alone on a line, as judges sign decisions.
    surnames_on_own_line: frozenset[str] = frozenset()
    #: German ordinary nouns in every case and number (Wiktionary): "Kollegen" after
    #: "die Richter Albrecht und" is no name.
    ordinary_nouns: frozenset[str] = frozenset()
    #: Lower-cased word -> frequency in running text (wordfreq, words above 1 in 10 million).
    frequency: dict[str, float] = field(default_factory=dict)

    def everyday(self, word: str) -> bool:
        """An ordinary word ("said", "tone", "Discipline"), frequent enough not to be a name."""
        return self.frequency.get(word.lower(), 0.0) >= _EVERYDAY

    def rare(self, word: str, below: float = 1e-6) -> bool:
        """Less frequent than ``below`` in running text (every part of a hyphenated word
        that is long enough to count): a proper noun more often than not."""
        parts = [w for w in word.lower().split("-") if len(w) > 2] or [word.lower()]
        return word.lower() not in self.common and any(
            self.frequency.get(w, 0.0) < below for w in parts)


@functools.lru_cache(maxsize=2)
def build_lexicon(language: str) -> Lexicon:
    """The word lists for ``language`` (about a second); cached, since the gazetteer, the
    address grammar and the spaCy filter of one analyzer all read them, never write."""
    lex = Lexicon()
    for loc in _NAME_LOCALES:
        for attr in ("first_names", "first_names_male", "first_names_female"):
            lex.first_names.update(n for n in faker_names(f"faker.providers.person.{loc}", attr)
                                   if len(n) > 2)
        lex.last_names.update(n for n in faker_names(f"faker.providers.person.{loc}", "last_names")
                              if len(n) > 2)
    place_locales = _PLACE_LOCALES if language == "en" else ("de_DE", "de_AT", "de_CH")
    for loc in place_locales:
        for attr in ("cities", "countries", "states", "city_names"):
            lex.places.update(p for p in faker_names(f"faker.providers.address.{loc}", attr)
                              if len(p) > 2)
    lex.places.update(_DE_STATES_EXTRA)
    if language == "de":
        # Faker's German towns lack Köln and Nürnberg and every exonym (Moskau, Warschau);
        # Wiktionary's toponyms have them. Those that are also ordinary nouns stay out.
        from appliance.pii.de.wiktionary import load_wiktionary_nouns

        wiki = load_wiktionary_nouns()
        lex.places.update(wiki.unambiguous_places)
        lex.ordinary_nouns = wiki.common
        lex.surnames_on_own_line = frozenset(
            n for n in wiki.last_names | lex.last_names if n.isalpha() and len(n) > 2
            and n.lower() not in _HEADINGS | {"kosten", "streitwert", "rechtsmittel"})
    lex.places.update({p + "s" for p in list(lex.places) if " " not in p and p[-1] not in "sxzß"})
    common = {w.lower() for w in faker_names("faker.providers.lorem.de_DE", "word_list")}
    common |= {w.lower() for w in faker_names("faker.providers.lorem.en_US", "word_list")}
    common |= _spacy_stop_words(language)
    common |= _HEADINGS | _DE_PERSON_TRIGGERS | _DE_ROLE_TRIGGERS
    common |= {"bank", "mark", "will", "may", "long", "young", "page", "case", "bill", "art",
               "grant", "hope", "joy", "faith", "summer", "winter", "sommer", "essen",
               "hof", "weil", "halle", "wald", "berg", "stein", "raum", "koch", "fischer",
               "bauer", "meister", "kaiser", "könig", "graf", "vogel", "wolf", "fuchs",
               "hahn", "lang", "klein", "groß", "frank", "ernst", "schmied", "richter",
               "weiß", "schwarz", "braun", "roth", "sauer", "kraft", "mai", "august",
               "april", "juni", "juli", "bund", "land", "länder", "staat", "staaten",
               "union", "kreis", "stadt", "republik", "amt", "gericht", "senat", "reich",
               "china", "chad", "jersey", "turkey", "georgia", "jordan", "nice", "reading",
               "bath", "split", "mobile", "orange", "marsh", "wells", "deal", "ware",
               "kurz", "bach", "hart", "fort", "wall", "dom", "nord", "süd",
               "ost", "west", "mitte", "neu", "alt"}
    lex.common = common
    lex.any_names = {n.lower() for n in lex.first_names | lex.last_names}
    lex.first_names = {n for n in lex.first_names if n.lower() not in common}
    lex.last_names = {n for n in lex.last_names if n.lower() not in common}
    lex.places = {p for p in lex.places if p.lower() not in common}
    lex.max_place_words = max(len(p.split()) for p in lex.places)
    if language == "en":
        from wordfreq import get_frequency_dict

        lex.frequency = {w: f for w, f in get_frequency_dict("en", wordlist="large").items()
                         if f >= 1e-7}
    return lex


#: Zipf 2 (1 in 10 million words): "salarymen", "felines", "lunacy" are above it.
_VERY_RARE = 1e-7
#: Zipf 3.5: a lone word spaCy calls a person above it ("Tales", "Discipline") must be a
#: known name to count; "Metallica" (3.2) is below.
_SPACY_EVERYDAY = 10 ** (3.5 - 9)
#: Zipf 4.4: "tone", "said", "points" are above it; "anna", "carmen", "craig" below.
_EVERYDAY = 10 ** (4.4 - 9)
#: Words after which a capitalised word is a person even when it is also a word
#: ("starring Kraft", "said Freddie", "named him Mark").
_EN_PERSON_CUES = frozenset(["said", "asked", "told", "starring", "featuring", "named", "him",
                             "her", "dear", "hi", "hello", "hey", "thanks", "mr.", "mrs.", "ms.",
                             "dr.", "mr", "mrs", "ms", "dr"])
#: Tokens after which any word is capitalised: sentence ends, line breaks, bullets.
_OPENERS = frozenset([".", "!", "?", "\n", "-", "*", "•", ":", "(", '"', "“", "1", "2", "3"])
#: Prepositions after which an unknown proper noun is a place ("arrived at Mozirje").
_EN_PLACE_PREPS = frozenset(["in", "at", "from", "to", "near", "into", "via"])


def _spacy_stop_words(language: str) -> set[str]:
    module = {"de": "spacy.lang.de.stop_words", "en": "spacy.lang.en.stop_words"}[language]
    return {w.lower() for w in importlib.import_module(module).STOP_WORDS}


@dataclass(frozen=True, slots=True)
class _Tok:
    text: str
    start: int
    end: int

    @property
    def bare(self) -> str:
        return self.text.rstrip(".")

    @property
    def is_cap(self) -> bool:
        return self.text[:1].isupper()

    @property
    def is_initial(self) -> bool:
        b = self.bare
        return len(b) == 1 and b.isupper() and b.isalpha()


class GazetteerRecognizer(EntityRecognizer):
    """Persons and places from word lists and context rules (see module docstring)."""

    def __init__(self, language: str) -> None:
        self._lex: Lexicon | None = None
        super().__init__(
            supported_entities=["PERSON", "LOCATION"],
            name="GazetteerRecognizer",
            supported_language=language,
        )

    def load(self) -> None:
        self._lex = build_lexicon(self.supported_language)

    def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[RecognizerResult]:
        if self._lex is None:
            self.load()
        assert self._lex is not None
        toks = [_Tok(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]
        spans: list[tuple[str, int, int, float, str]] = []
        german = self.supported_language == "de"
        lower_text = not german and not any(c.isupper() for c in text)
        spans += self._places(toks, lower_text)
        spans += self._names(toks, german)
        if german:
            spans += self._initials(toks)
            spans += self._signature(text, toks)
        else:
            spans += self._proper_nouns(toks, lower_text)
        return [self._result(*s) for s in spans]

    def _proper_nouns(self, toks: list[_Tok], lower_text: bool) -> list[tuple[str, int, int, float, str]]:
        """English words too rare to be vocabulary, written as names ("Alterio", "ÉCHIROLLES",
        "Mozirje"; in all-lower-case text "yulan"), or lower-case words from the name lists:
        a place after "in", "at", "from" ..., a person otherwise. The small spaCy model and
        the name lists both miss most foreign names; a rare proper noun is masked rather
        than leaked."""
        lex = self._lex
        assert lex is not None
        out = []
        i = 0
        while i < len(toks):
            t = toks[i]
            prev = toks[i - 1].text.lower() if i else ""
            cue = prev in _EN_PERSON_CUES and t.is_cap and t.bare.isalpha() and not t.text.isupper() \
                and t.bare.lower() not in _STOP_WORDS_EN
            opening = i == 0 or prev in _OPENERS
            if not (cue or self._proper(t, lower_text, place=prev in _EN_PLACE_PREPS, opening=opening)):
                i += 1
                continue
            entity = "LOCATION" if prev in _EN_PLACE_PREPS else "PERSON"
            j = i + 1
            while j < len(toks) and not _possessive(toks[j - 1].text):
                k = j
                while k < len(toks) - 1 and toks[k].text.lower() in _PLACE_PARTICLES:
                    k += 1  # "Chiclana de la Frontera", "Ždár nad Sázavou"
                nxt = toks[k]
                if not (self._proper(nxt, lower_text) or entity == "LOCATION" and k == j
                        and nxt.is_cap and nxt.bare.isalpha() and nxt.bare.lower() not in lex.common):
                    break  # "Oamaru Central": a title-case word after a place joins it
                j = k + 1
            last = toks[j - 1]
            end = last.start + len(_possessive(last.bare) or last.bare)
            out.append((entity, t.start, end, 0.6, "rare proper noun"))
            i = j
        return out

    def _proper(self, t: _Tok, lower_text: bool, place: bool = False, opening: bool = False) -> bool:
        lex = self._lex
        assert lex is not None
        word = _possessive(t.bare) or t.bare
        if len(word) < 2 or not word.replace("-", "").isalpha() or word.lower() in lex.common:
            return False
        if lower_text:
            return word.islower() and (lex.rare(word, _VERY_RARE) or not lex.everyday(word) and (
                word.title() in lex.first_names or word.title() in lex.last_names))
        if word.isupper():  # "in PORSGRUNN"; acronyms ("IBAN", "ONNX", "TOML") stay
            return place and len(word) > 3 and lex.rare(word, _VERY_RARE)
        if not (word[0].isupper() and word[1:].islower()):
            return False
        if word.endswith("s") and not lex.rare(word[:-1], _VERY_RARE):
            return False  # "Hobbits": the plural of a word, not a name
        # A sentence or list item opens with a capital anyway ("Redact the ..."): rarer there.
        return lex.rare(word, _VERY_RARE if opening else 1e-6)

    def _result(self, entity: str, start: int, end: int, score: float, rule: str) -> RecognizerResult:
        return RecognizerResult(
            entity_type=entity,
            start=start,
            end=end,
            score=score,
            analysis_explanation=AnalysisExplanation(
                recognizer="GazetteerRecognizer", original_score=score, textual_explanation=rule
            ),
            recognition_metadata={
                RecognizerResult.RECOGNIZER_NAME_KEY: "GazetteerRecognizer",
                RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
            },
        )

    def _places(self, toks: list[_Tok], lower_text: bool = False) -> list[tuple[str, int, int, float, str]]:
        """Places from the lists; in all-lower-case English text ("she moved here from
        dominican republic") the lists are matched in title case."""
        lex = self._lex
        assert lex is not None
        german = self.supported_language == "de"
        institution_endings = _DE_INSTITUTION_ENDINGS if german else _INSTITUTION_ENDINGS
        out = []
        i = 0
        while i < len(toks):
            hit = 0
            for n in range(min(lex.max_place_words, len(toks) - i), 0, -1):
                words = toks[i:i + n]
                if not (words[0].is_cap or lower_text and words[0].text.isalpha()):
                    continue
                phrase = " ".join(t.text for t in words)
                if phrase in lex.places or (
                        (phrase.isupper() and len(phrase) > 3 or lower_text)
                        and (phrase.title() in lex.places or _title_case(phrase) in lex.places)):
                    hit = n
                    break
            before = toks[i - 1].text.lower() if i else ""
            if hit and (before.endswith(institution_endings) or german and _court_before(toks, i)):
                i += hit  # "Landesarbeitsgericht Hamburg": part of an institution's name
                continue
            if hit:
                out.append(("LOCATION", toks[i].start, toks[i + hit - 1].end, 0.7, "place list"))
                i += hit
                continue
            t = toks[i]
            if (before in _PLACE_TRIGGERS and t.is_cap and t.bare.lower() not in lex.common
                    and not _looks_like_noun(t.bare)):
                end = t.end if t.is_initial else t.start + len(t.bare)
                out.append(("LOCATION", t.start, end, 0.7, "place title"))
            i += 1
        return out

    def _names(self, toks: list[_Tok], german: bool) -> list[tuple[str, int, int, float, str]]:
        lex = self._lex
        assert lex is not None
        out = []
        i = 0
        while i < len(toks):
            t = toks[i]
            prev = toks[i - 1].text.lower() if i else ""
            prev2 = toks[i - 2].text.lower() if i > 1 else ""
            named = (prev2, prev) in {("name", "is"), ("ich", "heiße"), ("ich", "heisse")} \
                or (prev2, prev) == ("this", "is") and t.bare.lower() not in lex.common
            # Lower-cased chat text ("i want to add julie novák"): English first names only.
            lower_first = (not german and t.text.islower() and len(t.bare) > 3
                           and t.bare.title() in lex.first_names and t.bare not in lex.common
                           and not lex.everyday(t.bare)) or (
                # "mark pinto": an everyday first name followed by a surname
                not german and t.text.islower() and t.bare in lex.any_names
                and i + 1 < len(toks) and toks[i + 1].text.islower()
                and toks[i + 1].bare.title() in lex.last_names
                and not lex.everyday(toks[i + 1].bare))
            if not (named or lower_first) and (
                not t.is_cap or t.is_initial or t.text.lower() in _DE_PERSON_TRIGGERS
            ):
                i += 1
                continue
            first = (t.bare in lex.first_names or lower_first
                     or t.bare.title() in lex.first_names and named)
            triggered = named or (prev in _DE_PERSON_TRIGGERS and t.bare.lower() not in lex.common
                                  and not _looks_like_noun(t.bare))
            lone_surname = (not german and i > 0 and t.bare in lex.last_names
                            and toks[i - 1].text not in {".", "!", "?", "\n"})
            if german and first and not triggered and (
                prev[:1].isdigit() or prev.isalpha() and prev.islower()
                and not (i + 1 < len(toks) and toks[i + 1].bare in lex.last_names)
            ):
                i += 1  # "in der Lage", "2 Mio.": a first name alone after an article is a noun
                continue
            if first or triggered or lone_surname:
                if german:
                    j = i + 1
                    # Swallow following surname-like tokens: "Paul Kirchhof", "Dr. Jay B. Saoud".
                    while j < len(toks) and j < i + 3 and (
                        toks[j].is_cap and (
                            toks[j].bare in lex.last_names or toks[j].is_initial
                            or toks[j].bare.lower() not in lex.common
                            and not _looks_like_noun(toks[j].bare))
                        or (named or lower_first) and toks[j].text.isalpha()
                        and toks[j].bare.lower() not in lex.common
                    ):
                        j += 1
                else:
                    j = self._name_end_en(toks, i, lowered=named or lower_first)
                score = 0.85 if triggered or j > i + 1 else (0.65 if first else 0.55)
                last_tok = toks[j - 1]
                end = last_tok.end if last_tok.is_initial else last_tok.start + len(last_tok.bare)
                if _possessive(last_tok.text):
                    end = last_tok.start + len(_possessive(last_tok.text))
                # "Mr. Ryan Ziherl" is masked whole: the title is part of how the name reads.
                start = toks[i - 1].start if prev in _TITLES and not german else t.start
                out.append(("PERSON", start, end, score, "name list/title"))
                if german and triggered:
                    j = self._more_names(toks, j, out)
                i = j
                continue
            i += 1
        return out

    def _more_names(self, toks: list[_Tok], j: int, out: list[tuple[str, int, int, float, str]]) -> int:
        """Names listed after a title's name, "die Richter Albrecht , Kern und Lauber":
        each word after a comma or "und" that no list knows as an ordinary word is a name
        too. Returns the index after the last one."""
        lex = self._lex
        assert lex is not None
        while j + 1 < len(toks) and toks[j].text in {",", "und", "sowie"}:
            t = toks[j + 1]
            word = t.bare
            if not (t.is_initial or t.is_cap and word.isalpha() and len(word) > 2
                    and word.lower() not in lex.common and word not in lex.ordinary_nouns
                    and not _looks_like_noun(word)):
                break
            end = t.end if t.is_initial else t.start + len(word)
            out.append(("PERSON", t.start, end, 0.8, "name list/title"))
            j += 2
        return j

    def _name_end_en(self, toks: list[_Tok], i: int, lowered: bool) -> int:
        """Index after the last token of the English name opening at ``i``: surnames,
        initials, particles ("Donald van der Voet"); a possessive ends the name."""
        lex = self._lex
        assert lex is not None
        j = i + 1
        if _possessive(toks[i].text):
            return j
        while j < len(toks) and j < i + 5:
            t = toks[j]
            if t.text.lower() in _NAME_PARTICLES:
                k = j
                while k < len(toks) and toks[k].text.lower() in _NAME_PARTICLES:
                    k += 1
                after = toks[k] if k < len(toks) else None
                if after is not None and (after.is_cap or lowered) and after.text.isalpha() \
                        and after.text.lower() not in lex.common:
                    j = k
                    continue
                break
            bare = _possessive(t.bare) or t.bare
            capped = t.is_cap and (
                bare in lex.last_names or t.is_initial
                or bare.lower() in lex.any_names and not t.text.isupper()  # "Crystal Grant"
                or bare.lower() not in lex.common and not _looks_like_noun(bare)
                and not lex.everyday(bare))
            lower = lowered and bare.isalpha() and bare.lower() not in lex.common \
                and not lex.everyday(bare)
            if not (capped or lower) or t.text.isupper() and len(t.bare) > 1 and bare not in lex.last_names:
                break
            j += 1
            if _possessive(t.text):
                break
        while j > i + 1 and toks[j - 1].text.lower() in _NAME_PARTICLES:
            j -= 1
        return j

    def _initials(self, toks: list[_Tok]) -> list[tuple[str, int, int, float, str]]:
        """Anonymised names in German decisions: "der Zeuge B.", "K. gab an", "in M. …"."""
        out: list[tuple[str, int, int, float, str]] = []
        for i, t in enumerate(toks):
            if not t.is_initial or t.text.lower() in _DE_PERSON_TRIGGERS:
                continue
            prev = toks[i - 1].text.lower() if i else ""
            nxt = toks[i + 1].text if i + 1 < len(toks) else ""
            prev2 = toks[i - 2].text.lower() if i > 1 else ""
            bracketed = prev == "(" and nxt == ")" and (
                prev2 in _DE_PERSON_TRIGGERS or prev2 in _DE_ROLE_TRIGGERS)
            if not bracketed and (
                    prev in _NOT_AFTER or nxt[:1].isdigit() or nxt in {"/", ")", ":", "-"}
                    or nxt.rstrip(".") in _ROMAN or t.bare in {"I", "V", "X"}):
                continue  # "der Sachverständige ( S )" is a person; "Anlage ( B )" is not
            if prev[:1].isdigit():
                continue
            if (i == 0 or toks[i - 1].text in {".", ":", "\n"}) and nxt[:1].isupper():
                continue  # "A. Tatbestand": an outline heading, not a person
            end = t.end
            if nxt in {"…", "..."}:
                end = toks[i + 1].end
            entity = "LOCATION" if prev in _DE_PLACE_PREPS and prev != "bei" else "PERSON"
            listed = prev in {",", "und", "oder", "sowie"} and out and out[-1][0] == "LOCATION" \
                and out[-1][2] >= toks[i - 2].end
            if listed:
                entity = "LOCATION"  # "in G , P , S und H": a list of anonymised places
            score = 0.75 if (prev in _DE_PERSON_TRIGGERS or prev in _DE_ROLE_TRIGGERS
                             or entity == "LOCATION") else 0.55
            if listed:
                score = 0.85  # the list's preposition decides, surer than a letter's look
            out.append((entity, t.start, end, score, "anonymised initial"))
        return out

    def _signature(self, text: str, toks: list[_Tok]) -> list[tuple[str, int, int, float, str]]:
        """A line of one to three capitalised words and nothing else is a signature."""
        lex = self._lex
        assert lex is not None
        out = []
        pos = 0
        for line in text.split("\n"):
            words = line.split()
            start = pos + (len(line) - len(line.lstrip()))
            pos += len(line) + 1
            names = [w for w in words if w.lower() not in {"dr.", "prof.", "von", "van", "de"}]
            if not 1 <= len(names) <= 3:
                continue
            if all(w[:1].isupper() and w.replace("-", "").replace(".", "").isalpha()
                   and w.lower().rstrip(".") not in lex.common and not _looks_like_noun(w)
                   for w in names) or (
                       len(words) == 1 and (words[0] in lex.surnames_on_own_line or _lone_name(words[0]))):
                out.append(("PERSON", start, start + len(line.strip()), 0.6, "signature line"))
        return out



_NAME_PARTICLES = frozenset(["van", "von", "der", "den", "de", "da", "di", "del", "della", "du", "la", "le", "ter", "ten", "dos", "das", "bin", "ibn", "al"])


_PLACE_PARTICLES = _NAME_PARTICLES | {"nad", "pod", "sur", "am", "an", "im", "y", "e", "upon"}


def _lone_name(word: str) -> bool:
    """A capitalised word alone on its line that is no heading: a judge signing."""
    return (word[:1].isupper() and word[1:].islower() and word.isalpha() and len(word) > 2
            and word.lower() not in _HEADINGS and not _looks_like_noun(word))


def _court_before(toks: list[_Tok], i: int) -> bool:
    """A court's or a law's name ends right before token ``i`` ("OLG Karlsruhe",
    "TV-Ärzte Hessen", "Kommunalabgabengesetz Bayern"): the place is part of the name."""
    if i == 0:
        return False
    before = toks[i - 1].text.lower()
    return before in _DE_COURTS or before.startswith("tv-") or before.endswith(_DE_LAW_ENDINGS)


def _title_case(phrase: str) -> str:
    return " ".join(w if w in {"and", "of", "the", "de", "la", "del"} else w.capitalize()
                    for w in phrase.split(" "))


def _possessive(word: str) -> str:
    """The name in "Mitchell's" ("" when the word is not a possessive)."""
    for tail in ("'s", "’s"):
        if word.endswith(tail) and len(word) > 2:
            return word[: -len(tail)]
    return ""


def _looks_like_noun(word: str) -> bool:
    w = word.lower().rstrip(".")
    return w.endswith(_NOUN_SUFFIXES) or len(w) > 14


def build_gazetteer_recognizers(languages: tuple[str, ...]) -> list[EntityRecognizer]:
    return [GazetteerRecognizer(lang) for lang in languages]


class NameCheckedSpacyRecognizer(SpacyRecognizer):
    """spaCy's persons and places, with the small model's typical slips taken out.

    A person never spans a line break ("Emily Božić\nPhone"), a possessive "'s" is not
    part of a name, and a lone everyday word ("Discipline", "Tales") that no name list
    knows is not a person.
    """

    def __init__(self, supported_language: str = "en", ner_strength: float = 0.85) -> None:
        self._lex: Lexicon | None = None
        super().__init__(supported_language=supported_language,
                         supported_entities=["PERSON", "LOCATION"], ner_strength=ner_strength)

    def load(self) -> None:
        super().load()
        self._lex = build_lexicon(self.supported_language)

    def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[RecognizerResult]:
        if self._lex is None:
            self._lex = build_lexicon(self.supported_language)
        kept = []
        for r in super().analyze(text, entities, nlp_artifacts):
            span = text[r.start:r.end]
            if r.entity_type == "PERSON" and "\n" in span.strip():
                r.end = r.start + span.index("\n", len(span) - len(span.lstrip()))
                span = text[r.start:r.end]
            name = _possessive(span.rstrip()) or span.rstrip()
            r.end = r.start + len(name)
            if not any(c.isalpha() for c in name) or self._everyday_word(name, r.entity_type):
                continue
            kept.append(r)
        return kept

    def _everyday_word(self, name: str, entity: str) -> bool:
        lex = self._lex
        assert lex is not None
        if " " in name.strip():
            return False
        if entity == "PERSON":
            return not lex.rare(name, _SPACY_EVERYDAY) and name.lower() not in lex.any_names
        return lex.everyday(name) and name not in lex.places
