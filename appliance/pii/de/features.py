"""Tokens and the numbers the tagger sees for them; one code path for training and serving.

Each token gets a lower-cased word id (frequent context words only, so that the model
cannot memorise names), its characters (case kept: "Krumbiegel" vs "Kündigung"), a shape
class and flags from the word lists (first name, surname, place, Duden word, ordinary
noun in any case and number) and the
line layout (a surname alone on a line is a judge's signature).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from appliance.pii.de.lexicon import Lexicon

TOKEN = re.compile(r"\w+(?:[-'’]\w+)*|[^\w\s]")
#: Characters the char-CNN knows (others map to one "unknown" id); order is the id.
CHARSET = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    "äöüßÄÖÜéèêëáàâãåçíìîïñóòôõøúùûýÿšžčćřňěďťłńśźżőűăşţğıæœÉÈÁÀÇÍÓÔÚŠŽČŁŚŻÅØÆ"
    ".,;:!?-–—'’\"„“”‚‘»«()[]{}/\\§%&*+=<>#@€$…_"
)
CHAR_IDS = {c: i + 2 for i, c in enumerate(CHARSET)}  # 0 padding, 1 unknown
MAX_CHARS = 16
SHAPES = ("pad", "lower", "title", "upper", "letter", "digits", "alnum", "punct", "other")
FLAGS = ("first_name", "last_name", "place_begin", "place_inside", "duden", "duden_lower",
         "line_start", "line_end", "dot_attached", "hyphenated", "common_noun")
TAGS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC")
ENTITY_OF_TAG = {"PER": "PERSON", "LOC": "LOCATION"}
#: Tokens per sequence the tagger sees at once (longer texts are cut at line ends).
MAX_TOKENS = 128


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


def chunks(tokens: Sequence[Token], limit: int = MAX_TOKENS) -> list[tuple[int, int]]:
    """(start, end) index ranges of at most ``limit`` tokens, cut at line or sentence ends."""
    out, start = [], 0
    while start < len(tokens):
        end = min(start + limit, len(tokens))
        if end < len(tokens):
            cut = next((j + 1 for j in range(end - 1, start + limit // 2, -1)
                        if tokens[j].line_end or tokens[j].text in {".", ";", "!", "?"}), end)
            end = cut
        out.append((start, end))
        start = end
    return out


def shape(word: str) -> int:
    core = word.replace("-", "").replace("'", "").replace("’", "")
    if core.isalpha():
        if len(core) == 1:
            return 4 if core.isupper() else 1
        if core.isupper():
            return 3
        if core.islower():
            return 1
        return 2 if core[0].isupper() else 8
    if core.isdigit():
        return 5
    return 6 if any(c.isalnum() for c in core) else 7


def char_ids(word: str) -> list[int]:
    w = word if len(word) <= MAX_CHARS else word[:6] + word[-(MAX_CHARS - 6):]
    return [CHAR_IDS.get(c, 1) for c in w]


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


@dataclass(frozen=True)
class Encoded:
    words: np.ndarray  # [T] int64
    chars: np.ndarray  # [T, MAX_CHARS] int64
    shapes: np.ndarray  # [T] int64
    flags: np.ndarray  # [T, len(FLAGS)] float32


def encode(tokens: Sequence[Token], lex: Lexicon, vocab: dict[str, int]) -> Encoded:
    n = len(tokens)
    words = np.zeros(n, dtype=np.int64)
    chars = np.zeros((n, MAX_CHARS), dtype=np.int64)
    shapes = np.zeros(n, dtype=np.int64)
    flags = np.zeros((n, len(FLAGS)), dtype=np.float32)
    places = place_flags(tokens, lex)
    for i, t in enumerate(tokens):
        w = t.text
        words[i] = vocab.get(w.lower(), 1)
        ids = char_ids(w)
        chars[i, :len(ids)] = ids
        shapes[i] = shape(w)
        nxt = tokens[i + 1] if i + 1 < n else None
        flags[i] = (
            _in(w, lex.first_names),
            _in(w, lex.last_names),
            places[i] == 1,
            places[i] == 2,
            w in lex.duden,
            w.lower() in lex.duden_lower,
            t.line_start,
            t.line_end,
            nxt is not None and nxt.text == "." and nxt.start == t.end,
            "-" in w,
            w in lex.common_nouns or "-" in w and w.rsplit("-", 1)[-1].title() in lex.common_nouns,
        )
    return Encoded(words, chars, shapes, flags)
