"""Tokens and the hashed features the tagger sees for them; one code path for training and serving.

Each token is described by strings ("l:kläger", "s3:ann", "f:2", "-1l:herr", ...) hashed
into :data:`BUCKETS` ids, so the model is one weight row per id and needs no vocabulary.
Most strings depend on the word alone and are cached per word; the rest are the word's
neighbours (two on each side: titles, prepositions, roles), its line layout (a surname
alone on a line is a signature) and the word lists: first names, surnames, places
(multi-word ones too), Duden words, Wiktionary's ordinary nouns in every case and number,
and how frequent the word is in German running text (wordfreq: a rare capitalised word
is a name more often than not).
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from appliance.pii.de.lexicon import Lexicon

TOKEN = re.compile(r"\w+(?:[-'’]\w+)*|[^\w\s]")
TAGS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC")
ENTITY_OF_TAG = {"PER": "PERSON", "LOC": "LOCATION"}


@dataclass(frozen=True, slots=True)
class Token:
    text: str
    start: int
    end: int
    line_start: bool
    line_end: bool


def tokenize(text: str) -> list[Token]:
    matches = list(TOKEN.finditer(text))
    out = []
    for i, m in enumerate(matches):
        before = text[matches[i - 1].end():m.start()] if i else "\n"
        after = text[m.end():matches[i + 1].start()] if i + 1 < len(matches) else "\n"
        out.append(Token(m.group(), m.start(), m.end(), "\n" in before, "\n" in after))
    return out


def _in(word: str, names: frozenset[str]) -> bool:
    return word in names or (word.isupper() and len(word) > 2 and word.title() in names)


def place_flags(tokens: Sequence[Token], lex: Lexicon) -> list[int]:
    """0 none, 1 begins a listed place, 2 continues it (longest match, "Frankfurt am Main")."""
    flags = [0] * len(tokens)
    i, longest = 0, lex.max_place_words
    while i < len(tokens):
        hit = 0
        if tokens[i].text[:1].isupper():
            for n in range(min(longest, len(tokens) - i), 0, -1):
                if _in(" ".join(t.text for t in tokens[i:i + n]), lex.places):
                    hit = n
                    break
        if hit:
            flags[i] = 1
            for j in range(i + 1, i + hit):
                flags[j] = 2
            i += hit
        else:
            i += 1
    return flags



#: Hash buckets (weight rows); 2**20 keeps collisions rare among about a million strings.
BUCKETS = 1 << 20
#: Neighbours each token sees, by offset, and which of their strings it sees.
_NEAR = (-2, -1, 1, 2)
_SENTENCE_END = frozenset({".", "!", "?", ":", ";", "\n"})


def _hash(feature: str) -> int:
    return zlib.crc32(feature.encode("utf-8")) & (BUCKETS - 1)


@cache
def frequency_buckets() -> dict[str, int]:
    """Lower-cased word -> Zipf frequency in German running text, rounded down (2..8).

    Words rarer than Zipf 2 (one in 10 million) are left out: absent means rare.
    """
    from wordfreq import get_frequency_dict

    return {w: int(math.log10(f) + 9) for w, f in get_frequency_dict("de", wordlist="large").items()
            if f >= 1e-7}


def case_class(word: str) -> str:
    """"T" title case, "U" upper, "L" lower, "D" digits, "M" mixed or other, "P" punctuation."""
    core = word.replace("-", "").replace("'", "").replace("’", "")
    if core.isalpha():
        if core.islower():
            return "L"
        if core.isupper():
            return "U" if len(core) > 1 else "I"  # "I": one capital letter, an initial
        return "T" if core[0].isupper() and core[1:].islower() else "M"
    if core.isdigit():
        return "D"
    return "M" if any(c.isalnum() for c in core) else "P"


def word_shape(word: str) -> str:
    """Characters by class with runs collapsed: "Müller" -> "Xx", "B-MW" -> "X-X", "12a" -> "dx"."""
    out: list[str] = []
    for c in word[:12]:
        k = "X" if c.isupper() else "x" if c.isalpha() else "d" if c.isdigit() else c
        if not out or out[-1] != k:
            out.append(k)
    return "".join(out)


@dataclass(frozen=True)
class _Word:
    own: tuple[int, ...]
    #: The strings a neighbour at each offset of :data:`_NEAR` contributes, hashed.
    near: tuple[tuple[int, ...], ...]
    lower: str


class Featurizer:
    """Hashed feature ids per token; word-level strings are cached across calls.

    The cache holds at most ``cache_words`` words (about 1 kB each) and starts afresh
    when full: a serving worker sees an unbounded stream of new words (numbers, codes,
    names), a build a known set. A serving worker's bound is small (8 MB) because the
    allocator keeps what the cache once held: the bound is the worker's memory growth.
    """

    def __init__(self, lex: Lexicon, cache_words: int = 8_000) -> None:
        self._lex = lex
        self._freq = frequency_buckets()
        self._words: dict[str, _Word] = {}
        self._cache_words = cache_words

    def _word(self, w: str) -> _Word:
        hit = self._words.get(w)
        if hit is not None:
            return hit
        if len(self._words) >= self._cache_words:
            self._words.clear()
        lex = self._lex
        lw = w.lower()
        case = case_class(w)
        freq = str(self._freq.get(lw, 0))
        flags = "".join(k for k, on in (
            ("f", _in(w, lex.first_names)), ("l", _in(w, lex.last_names)),
            ("p", _in(w, lex.places)), ("a", w in lex.ambiguous_places),
            ("w", _in(w, lex.world_places)), ("d", w in lex.duden), ("o", lw in lex.duden_lower),
            ("n", w in lex.common_nouns or "-" in w and w.rsplit("-", 1)[-1].title() in lex.common_nouns),
        ) if on)
        own = [f"w:{w}", f"l:{lw}", f"c:{case}", f"h:{word_shape(w)}", f"f:{freq}",
               f"cf:{case}{freq}", f"g:{flags}", f"cg:{case}{flags}", f"cgf:{case}{flags}{freq}",
               f"n:{min(len(w), 12)}{case}"]
        own += [f"s{k}:{lw[-k:]}" for k in (2, 3, 4, 5) if len(lw) > k]
        own += [f"p{k}:{lw[:k]}" for k in (3, 4) if len(lw) > k]
        if "-" in w:
            head, tail = w.split("-", 1)[0], w.rsplit("-", 1)[-1]
            own += [f"hh:{head.lower()}", f"ht:{tail.lower()}",
                    f"hp:{_in(head, lex.places)}{_in(tail, lex.places)}"]
        near = tuple(
            tuple(_hash(f"{o}{f}") for f in (
                (f"l:{lw}", f"c:{case}", f"g:{flags}", f"cf:{case}{freq}") if abs(o) == 1
                else (f"l:{lw}", f"c:{case}")))
            for o in _NEAR)
        word = _Word(tuple(_hash(f) for f in own), near, lw)
        self._words[w] = word
        return word

    def cached_words(self) -> int:
        return len(self._words)

    def ids(self, tokens: Sequence[Token]) -> tuple[np.ndarray, np.ndarray]:
        """(feature ids of all tokens concatenated, the start of each token's run)."""
        words = [self._word(t.text) for t in tokens]
        places = place_flags(tokens, self._lex)
        flat: list[int] = []
        starts = np.zeros(len(tokens), dtype=np.int64)
        n = len(tokens)
        for i, (t, word) in enumerate(zip(tokens, words, strict=True)):
            starts[i] = len(flat)
            flat += word.own
            for k, o in enumerate(_NEAR):
                j = i + o
                if 0 <= j < n and not (o < 0 and tokens[j + 1].line_start
                                       or o > 0 and tokens[j - 1].line_end):
                    flat += words[j].near[k]
            prev = words[i - 1].lower if i and not t.line_start else "\n"
            nxt = words[i + 1].lower if i + 1 < n and not t.line_end else "\n"
            case = case_class(t.text)
            opener = prev in _SENTENCE_END
            # A particle between two capitalised words: "Ursula von der Leyen", "Lido di Venezia".
            around = (f"{case_class(tokens[i - 1].text) if i else '^'}|{word.lower}|"
                      f"{case_class(tokens[i + 1].text) if i + 1 < n else '$'}")
            flat += [_hash(f"b-:{prev}|{word.lower}"), _hash(f"b+:{word.lower}|{nxt}"),
                     _hash(f"ar:{around}"),
                     _hash(f"lay:{t.line_start:d}{t.line_end:d}{case}"),
                     _hash(f"op:{opener:d}{case}{places[i]}"),
                     _hash(f"pl:{places[i]}{places[i - 1] if i else 0}")]
        return np.asarray(flat, dtype=np.int64), starts
