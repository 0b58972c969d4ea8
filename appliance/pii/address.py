"""Multi-line postal addresses: a run of short lines that look like an address block.

Street, unit, town and postcode often stand on lines of their own (letters, forms,
signatures); no single pattern sees them whole, so this recognizer groups consecutive
short lines without sentence words, at least one of which carries a house number or a
postcode, into one ADDRESS finding.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from presidio_analyzer import AnalysisExplanation, EntityRecognizer, RecognizerResult
from spacy.lang.en.stop_words import STOP_WORDS

_STOP_WORDS = frozenset(STOP_WORDS)

_NUMBERED = re.compile(r"\b\d{1,6}\b")
_SENTENCE_WORDS = frozenset(
    ["the", "is", "are", "was", "were", "please", "i", "you", "we", "my", "me", "at", "meet", "your", "our", "this", "that", "with", "to", "from", "of", "it", "have", "has", "can", "could", "would", "will", "should", "hello", "hi", "thanks", "dear", "regards", "ist", "sind", "bitte", "ich", "sie", "wir", "mein", "meine", "ihr", "ihre", "das", "die", "der", "und", "mit", "vielen", "dank", "hallo", "sehr", "geehrte"]
)
_MAX_LINE = 60
#: Bullet marks that open a line of a list ("- ", "* ", "• ", "??? " from a lost encoding).
_BULLET = re.compile(r"^\s*[^\w\s]+\s+")
_ADDRESS_LABELS = frozenset({"address", "adresse", "anschrift", "where", "location", "ort", ""})


class AddressBlockRecognizer(EntityRecognizer):
    def __init__(self, language: str) -> None:
        super().__init__(supported_entities=["ADDRESS"], name="AddressBlockRecognizer",
                         supported_language=language)

    def load(self) -> None:
        return None

    def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[RecognizerResult]:
        if "\n" not in text:
            return []
        out: list[RecognizerResult] = []
        run: list[tuple[int, int, bool]] = []
        pos = 0
        for line in text.split("\n") + [""]:
            start, end = pos, pos + len(line)
            pos = end + 1
            label, _, rest = line.partition(":")
            body = rest if _ else line
            if _ and label.strip(" >|?").lower() not in _ADDRESS_LABELS:
                body = ""  # "Name: ...", "Phone: ..." end an address block
            offset = len(line) - len(body)
            stripped = _BULLET.sub("", body).strip(" \t|,")
            words = re.findall(r"[^\W\d_]+", stripped.lower())
            looks = (0 < len(stripped) <= _MAX_LINE
                     and sum(c.isdigit() for c in stripped) <= 6
                     and sum(w in _SENTENCE_WORDS for w in words) == 0)
            if looks:
                lead = len(body) - len(_BULLET.sub("", body).lstrip(" \t|,"))
                run.append((start + offset + lead, end, bool(_NUMBERED.search(stripped))))
                continue
            if len(run) >= 2 and any(n for _, _, n in run):
                out.extend(self._result(s, e) for s, e in _join_lines(text, run))
            run = []
        return out

    def _result(self, start: int, end: int) -> RecognizerResult:
        return RecognizerResult(
            "ADDRESS", start, end, 0.6,
            analysis_explanation=AnalysisExplanation("AddressBlockRecognizer", 0.6, textual_explanation="address block"),
            recognition_metadata={RecognizerResult.RECOGNIZER_NAME_KEY: "AddressBlockRecognizer",
                                  RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id},
        )


def _join_lines(text: str, lines: list[tuple[int, int, bool]]) -> list[tuple[int, int]]:
    """Consecutive lines as one span, except where a bullet opens a line: masking the
    bullets would hide the list's layout, so each bulleted line becomes a span of its own."""
    spans = [(lines[0][0], lines[0][1])]
    for s, e, _ in lines[1:]:
        if text[spans[-1][1]:s].strip():
            spans.append((s, e))
        else:
            spans[-1] = (spans[-1][0], e)
    return spans


# --- Address grammar ---------------------------------------------------------------

#: Street types that make "<Name> <type>" an address even without a house number.
_STREET_STRONG = frozenset(
    "street avenue road boulevard lane ave rd blvd highway hwy parkway pkwy terrace".split()
)
#: Street types and prefixes that need a house number next to them ("Court", "Way", "Via").
_STREET_WEAK = frozenset(
    "st str drive dr court ct way place pl circle cir square sq trail crescent alley plaza row "
    "close gardens via viale rue rua r calle carrer ul ulica plac piazza strada chemin allée route "
    "corso largo camino paseo rambla travessa estrada rodovia praça praca avenida av avda vej gade "
    "gata gatan vägen utca u út strasse straße gasse weg allee platz straat laan λεωφόρος οδός "
    "odos leoforos tér rakpart vei veien körút köz".split()
)
#: Street words that are not English, so they count in lower case too ("60 Gosposka ulica 47").
_STREET_FOREIGN = frozenset(
    "ulica ul utca u út tér rakpart körút vei veien vej gade gata gatan vägen rue rua calle carrer "
    "via viale avenida avda estrada travessa rodovia strasse straße gasse weg straat laan allé "
    "allee platz boulevard avenue chemin impasse quai aleja osiedle".split()
)
#: Endings of one-word street names ("Amsinckstrasse", "Linieweg", "Kaarikatu").
_STREET_ENDINGS = (
    "strasse", "straße", "str.", "gasse", "weg", "allee", "platz", "damm", "straat", "plaats",
    "laan", "gracht", "kade", "singel", "steenweg", "dreef", "vej", "gade", "gatan", "gata", "str",
    "vägen", "väg", "veien", "vegen", "katu", "tie", "polku", "kuja", "utca", "ulica", "straße",
    "ufer", "chaussee", "steig", "pfad",
)
_UNITS = frozenset("apt apartment suite ste unit box floor fl room rm bldg building flat psc cmr".split())
_UNITS_SURE = frozenset("apt apartment suite ste psc cmr".split())
#: US military addresses: "USNS Lussier", "FPO AE 05609", "Unit 4181 Box 1281".
_MILITARY = frozenset("usns usnv uss uscgc fpo apo dpo".split())
_CONNECTORS = frozenset(
    "de del della dei degli delle dello di da do dos das van der den von des du le la las los y e "
    "el al nad".split()
)
_GRAMMAR_TOKEN = re.compile(r"\n|\b(?=[A-Za-z]*\d)(?=\d*[A-Za-z])[A-Za-z0-9]{2,8}\b|\d+(?:st|nd|rd|th|[A-Za-z])?\b|[^\W\d_]+(?:[-'’][^\W\d_]+)*\.?|[^\w\s]")
#: House numbers with a letter or ordinal ("7b", "184th") and postcode shapes (UK "S6",
#: "SW1A", "3DX"; Dutch "9590NC"; Canadian "p6a3t2"); "10k", "4GB" or "20ms" are not.
_HOUSE_OR_POSTCODE = re.compile(
    r"\d{1,5}[a-hA-H]|\d+(?:st|nd|rd|th)|[A-Za-z]{1,2}\d[A-Za-z\d]?|\d[A-Za-z]{2}|\d{4}[A-Za-z]{2}"
    r"|[A-Za-z]\d[A-Za-z]\d[A-Za-z]\d")
_SENTENCE_END = frozenset({".", "?", "!", '"', "“", "”"})
_JOINERS = frozenset({",", "-", "/", "'", "#", "–", "(", ")"})


@dataclass(frozen=True, slots=True)
class _Part:
    """One token of a candidate address with its grammatical role."""

    start: int
    end: int
    kind: str  # num street strong unit mil place word conn and comma nl gap stop
    low: str
    #: Index in the text's list of parts (looked up for every run; ``list.index`` made
    #: that quadratic: a third of a 16,000-character piece's analysis).
    at: int


class AddressGrammar:
    """Finds whole postal addresses in running text: house numbers, street names and types,
    units, towns, regions, postcodes and countries, in any order and over several lines.

    A run of tokens that can belong to an address (numbers, proper names, street and unit
    words, places, codes, commas, line breaks) becomes an ADDRESS when it holds the core of
    one: a number next to a street word, a unit with its number, a military address, or
    "the corner of ... and ...". Everything else in the run (town, region, postcode,
    country) is masked with it, since that is what single patterns leak. Ordinary words
    (stop words, common words opening a sentence) end a run.
    """

    def __init__(self, places: frozenset[str], common: Callable[[str], bool]) -> None:
        self._places = places
        self._max_place = max((p.count(" ") + 1 for p in places), default=1)
        self._common = common

    def find(self, text: str) -> list[tuple[int, int]]:
        parts = self._classify(text)
        spans: list[tuple[int, int]] = []
        for run, corner in self._runs(parts):
            if corner or self._has_core(run) or _announced(parts, run) and any(
                    p.kind in {"num", "place"} for p in run) and any(
                    p.kind in {"word", "place", "street"} for p in run):
                spans.extend(self._pieces(text, run, corner))
        return spans

    # tokens -> roles
    def _classify(self, text: str) -> list[_Part]:
        toks = [(m.start(), m.end(), m.group()) for m in _GRAMMAR_TOKEN.finditer(text)]
        lower_text = not any(c.isupper() for c in text)
        parts: list[_Part] = []
        i = 0
        while i < len(toks):
            s, e, w = toks[i]
            place = self._place_at(toks, i, lower_text)
            if place:
                parts.append(_Part(s, toks[i + place - 1][1], "place", w.lower(), len(parts)))
                i += place
                continue
            prev = parts[-1] if parts else None
            parts.append(_Part(s, e, self._kind(w, prev, text, lower_text), w.lower(), len(parts)))
            i += 1
        return parts

    def _place_at(self, toks: list[tuple[int, int, str]], i: int, lower_text: bool) -> int:
        if not toks[i][2][:1].isalpha():
            return 0
        for n in range(min(self._max_place, len(toks) - i), 0, -1):
            phrase = " ".join(t[2] for t in toks[i:i + n])
            if phrase in self._places or (phrase.isupper() or lower_text) and (
                    phrase.title() in self._places or _title_words(phrase) in self._places):
                return n
        return 0

    def _kind(self, w: str, prev: _Part | None, text: str, lower_text: bool) -> str:
        low = w.lower()
        bare = low.rstrip(".")
        if w == "\n":
            return "nl"
        if any(c.isdigit() for c in w):  # "12", "7b", "184th", postcodes "S6", "3DX", "9590NC"
            digits = sum(c.isdigit() for c in w)
            return "num" if digits <= 8 and (w.isdigit() or _HOUSE_OR_POSTCODE.fullmatch(w)) else "stop"
        if not w[0].isalpha():
            if prev is None or prev.kind in {"nl", "gap"}:
                return "gap"  # a bullet ("???", "-", "*") opening a line is not part of it
            if w == ",":
                return "comma"
            if w in _JOINERS:
                return "join"
            return "dot" if w == "." else "stop"
        if bare == "and":
            return "and"
        if bare in _CONNECTORS:
            return "conn"
        if not (w[0].isupper() or lower_text or w.endswith(".")):
            # "via e-mail", "down the street": lower-case words in cased text end an address,
            # except foreign street words and, inside one, rare words ("Makareao, nan 57132").
            if bare in _STREET_FOREIGN:
                return "street"
            inside = prev is not None and prev.kind in {"comma", "word", "place", "num", "street", "nl"}
            if inside and bare.isalpha() and bare not in _STOP_WORDS and not self._common(bare):
                return "word"
            return "stop"
        if bare in _STREET_STRONG:
            return "strong"
        if bare in _STREET_WEAK or len(bare) > 5 and bare.endswith(_STREET_ENDINGS):
            return "street"
        if bare in _UNITS:
            return "unit"
        if bare in _MILITARY:
            return "mil"
        if prev is not None and prev.kind == "mil" and len(bare) == 2:
            return "word"  # "fpo aa 18532"
        if w.isupper() and 2 <= len(bare) <= 3:
            return "word"  # region and state codes: "CA", "NO", "BZ"
        if len(bare) == 1 and w.endswith("."):
            return "word"  # initials and "P.O."
        if bare in _STOP_WORDS or w.endswith(".") and not w[0].isupper() and not lower_text:
            return "stop"
        sentence_start = prev is None or text[prev.start:prev.end] in _SENTENCE_END or (
            prev.kind in {"word", "place"} and prev.low.endswith(".") and len(prev.low) > 5)
        if (sentence_start or lower_text) and self._common(bare):
            return "stop"
        return "word"

    # roles -> runs
    def _runs(self, parts: list[_Part]) -> list[tuple[list[_Part], bool]]:
        """Maximal runs of address-compatible parts; "and" joins two runs only in a corner
        ("the corner of A and B", "Lauren and 226 Thomas Avenue")."""
        raw: list[list[_Part]] = [[]]
        for p in parts:
            if p.kind == "stop" or p.kind == "and":
                raw.append([p] if p.kind == "and" else [])
            else:
                raw[-1].append(p)
        out: list[tuple[list[_Part], bool]] = []
        for run in raw:
            if run and run[0].kind == "and":
                body = run[1:]
                if out and body and out[-1][0][-1].end + 2 >= run[0].start and (
                        out[-1][1] or (self._has_core(body) or _name_number(body))
                        and _is_short_name(out[-1][0]) and _after_cue(parts, out[-1][0][0])):
                    out[-1] = (out[-1][0] + run, True)  # a corner: accepted as a whole
                    continue
                run = body
            if run:
                out.append((run, self._after_corner(parts, run)))
        return out

    @staticmethod
    def _after_corner(parts: list[_Part], run: list[_Part]) -> bool:
        i = run[0].at
        return i >= 3 and [p.low for p in parts[i - 3:i]] == ["the", "corner", "of"]

    @staticmethod
    def _has_core(run: list[_Part]) -> bool:
        kinds = [p.kind for p in run]
        for i, k in enumerate(kinds):
            near = kinds[max(0, i - 3):i + 3]
            if k == "strong" and ("num" in near or i > 0 and kinds[i - 1] == "word"):
                return True
            if k == "street" and "num" in kinds[max(0, i - 3):i + 6]:
                return True  # "Rua Soldado Joaquim Xavier 1471", "ul. Asnyka Adama 82"
            if k == "unit" and "num" in kinds[i + 1:i + 3] and (
                    run[i].low.rstrip(".") in _UNITS_SURE
                    or i > 0 and run[i - 1].low in {"o.", "po", "po."}  # P.O. Box
                    or sum(x in {"num", "street", "strong", "place", "mil", "unit"} for x in kinds) >= 3):
                return True  # "Apt. 4" alone; "Room 4", "Unit 4" only with more of an address
            if k == "mil":
                return True
        if _postcode_lines(run) or _street_then_postcode(run):
            return True
        nums = [i for i, k in enumerate(kinds) if k == "num"]
        # "98 Tylova 1036", "56 San Andrés 70": number, name, number.
        return any(b - a >= 2 and all(kinds[j] in {"word", "conn", "place"} for j in range(a + 1, b))
                   for a, b in zip(nums, nums[1:], strict=False))

    def _pieces(self, text: str, run: list[_Part], corner: bool) -> list[tuple[int, int]]:
        """The run's extent without leading/trailing punctuation, split at line bullets."""
        edge = {"comma", "dot", "join", "nl", "gap", "conn", "and"}
        lo, hi = 0, len(run) - 1
        while lo <= hi and run[lo].kind in edge:
            lo += 1
        while hi >= lo and run[hi].kind in edge:
            hi -= 1
        if lo > hi:
            return []
        pieces: list[tuple[int, int]] = []
        start = run[lo].start
        if corner and lo == 0:
            i = text.rfind("the corner of", 0, start)
            start = i if i >= 0 and start - i <= 15 else start
        for p in run[lo:hi + 1]:
            if p.kind == "gap":
                pieces.append((start, _before_space(text, p.start)))
                start = -1
            elif start < 0:
                start = p.start
        end = run[hi].end
        if text[end - 1] == "." and run[hi].kind not in {"street", "unit", "strong"} \
                and len(run[hi].low) > 4:
            end -= 1  # a sentence's full stop, not an abbreviation's
        pieces.append((start, end))
        return [(s, e) for s, e in pieces if s >= 0 and e > s and text[s:e].strip()]


#: Words right before a corner address ("to Lauren and Sorlaskeid 32", "office is at ...").
_CORNER_CUES = frozenset({"to", "at", "on", "is", "address", ":", "in", "from"})


#: Words that announce an address: "my address is ...", "she lives at ...".
_ADDRESS_WORDS = frozenset({"address", "addresses", "adresse", "anschrift"})
_OTHER_ADDRESSES = frozenset({"ip", "email", "e-mail", "mail", "mac", "web", "wallet", "bitcoin"})
_ADDRESS_VERBS = frozenset({"live", "lives", "living", "located", "moved", "reside", "resides"})


def _announced(parts: list[_Part], run: list[_Part]) -> bool:
    """Whether an address word stands just before the run ("address: Hraunás 84",
    "lives at Sorlaskeid 32"): then a number or a place is enough of an address."""
    i = run[0].at
    before = [p.low.rstrip(":.") for p in parts[max(0, i - 4):i]]
    for k, w in enumerate(before):
        if w in _ADDRESS_WORDS and (k == 0 or before[k - 1] not in _OTHER_ADDRESSES):
            return True
    return len(before) >= 2 and before[-1] in {"at", "to", "in"} and before[-2] in _ADDRESS_VERBS


def _after_cue(parts: list[_Part], first: _Part) -> bool:
    i = first.at
    return i > 0 and parts[i - 1].low in _CORNER_CUES


def _postcode_lines(run: list[_Part]) -> bool:
    """Two or more lines with numbers, one of them a postcode (4 to 6 digits):
    "0181 Aguilar Parkways / North Christopher, MT 09657", "Chládkova 901 / 159 08 Boží Dar"."""
    lines: list[list[_Part]] = [[]]
    for p in run:
        if p.kind == "nl":
            lines.append([])
        else:
            lines[-1].append(p)
    numbered = [line for line in lines if any(p.kind == "num" for p in line)]
    if len(numbered) < 2 or not any(p.kind in {"word", "street", "strong", "place"} for p in run):
        return False  # lines of bare numbers are phone numbers or figures, not an address
    postcode = any(p.kind == "num" and 4 <= sum(c.isdigit() for c in p.low) <= 8
                   for line in numbered for p in line)
    # A line opening with a house number and a name ("01 Claire Prairie"), not "1. Buy milk".
    house = any(len(line) > 1 and line[0].kind == "num" and line[1].kind in {"word", "street", "place", "num"}
                for line in numbered)
    return postcode or house


def _street_then_postcode(run: list[_Part]) -> bool:
    """One line: name, house number, comma, postcode, town ("Rasmussenstranda 465, 7529 Gretheborg")
    or town, region code, postcode ("Springfield, IL 62704")."""
    kinds = [p.kind for p in run]
    for i in range(2, len(run)):
        post = run[i]
        if post.kind != "num" or not 4 <= len(post.low) <= 6:
            continue
        if kinds[i - 1] == "comma" and kinds[i - 2] == "num" and i >= 3 and kinds[i - 3] in {"word", "street"} \
                and i + 1 < len(run) and kinds[i + 1] in {"word", "place"}:
            return True
        code = run[i - 1]
        if code.kind == "word" and code.low.isalpha() and len(code.low) == 2 \
                and kinds[i - 2] == "comma" and i >= 3 and kinds[i - 3] in {"word", "place"}:
            return True
    return False


def _name_number(run: list[_Part]) -> bool:
    """ "Sorlaskeid 32", "Českého odboje 1735": a name and a house number, nothing else."""
    kinds = [p.kind for p in run if p.kind not in {"dot", "comma"}]
    return 2 <= len(kinds) <= 4 and kinds[-1] == "num" and all(
        k in {"word", "conn", "place"} for k in kinds[:-1])


def _is_short_name(run: list[_Part]) -> bool:
    words = [p for p in run if p.kind not in {"comma", "gap", "nl"}]
    return 0 < len(words) <= 3 and all(p.kind in {"word", "conn", "num", "place"} for p in words)


def _title_words(phrase: str) -> str:
    return " ".join(w if w.lower() in {"and", "of", "the"} else w.capitalize() for w in phrase.split(" "))


def _before_space(text: str, pos: int) -> int:
    while pos > 0 and text[pos - 1].isspace():
        pos -= 1
    return pos


_GRAMMAR_NAME = "AddressGrammarRecognizer"


class AddressGrammarRecognizer(EntityRecognizer):
    """Presidio face of :class:`AddressGrammar` (English); word lists load with the analyzer."""

    SCORE = 0.65

    def __init__(self, language: str = "en") -> None:
        self._grammar: AddressGrammar | None = None
        super().__init__(supported_entities=["ADDRESS"], name=_GRAMMAR_NAME,
                         supported_language=language)

    def load(self) -> None:
        from wordfreq import get_frequency_dict

        from appliance.pii.gazetteer import build_lexicon

        frequent = get_frequency_dict(self.supported_language, wordlist="small")
        # Zipf 4 (one in 100,000 words) and up: ordinary vocabulary, not a name.
        common = frozenset(w for w, f in frequent.items() if f >= 1e-5)
        places = frozenset(build_lexicon(self.supported_language).places)
        self._grammar = AddressGrammar(places, common.__contains__)

    def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[RecognizerResult]:
        if self._grammar is None:
            self.load()
        assert self._grammar is not None
        return [
            RecognizerResult(
                "ADDRESS", s, e, self.SCORE,
                analysis_explanation=AnalysisExplanation(_GRAMMAR_NAME, self.SCORE, textual_explanation="address grammar"),
                recognition_metadata={RecognizerResult.RECOGNIZER_NAME_KEY: _GRAMMAR_NAME,
                                      RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id},
            )
            for s, e in self._grammar.find(text)
        ]
