"""Per-message language detection, cheap enough to run on every text piece.

Counts frequent function words of each language plus German-only letters; a text with
no evidence either way is treated as ``default``. Good enough to pick between the
English and German analyzers; not a general language identifier.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_WORD = re.compile(r"[a-zäöüß]+")

_EN = frozenset(
    ["the", "and", "is", "are", "was", "were", "of", "to", "in", "that", "it", "for", "on", "with", "as", "this", "be", "by", "at", "from", "have", "has", "not", "you", "i", "we", "they", "he", "she", "his", "her", "my", "your", "our", "an", "or", "but", "what", "which", "who", "will", "would", "can", "could", "should", "there", "their", "been", "do", "does", "did", "please", "thanks", "hello"]
)
_DE = frozenset(
    ["der", "die", "das", "und", "ist", "sind", "war", "waren", "nicht", "ein", "eine", "einer", "eines", "einem", "einen", "zu", "mit", "auf", "für", "von", "dem", "den", "des", "sich", "auch", "es", "im", "als", "bei", "nach", "wie", "wir", "ich", "sie", "er", "aber", "oder", "wenn", "dass", "hat", "haben", "wird", "werden", "kann", "können", "noch", "nur", "über", "vom", "zum", "zur", "bitte", "danke", "hallo", "ihr", "ihre", "sein", "seine", "mein", "meine", "unser"]
)


def detect_language(text: str, default: str = "en") -> str:
    """``"de"`` or ``"en"`` for ``text`` (``default`` when undecided)."""
    lower = text[:2000].lower()
    words = _WORD.findall(lower)
    en = sum(1 for w in words if w in _EN)
    de = sum(1 for w in words if w in _DE)
    de += sum(1 for ch in lower if ch in "äöüß") // 2
    if de > en:
        return "de"
    if en > de:
        return "en"
    return default


#: Text is read in blocks of about this many characters (whole lines) to tell its
#: language: enough function words to decide, short enough to follow a document that
#: changes language (a German contract quoted in an English e-mail).
BLOCK_CHARS = 400


#: Letter and mail words that mark a line's language where function words are few
#: (greetings, sign-offs, headers); read only when runs are told apart.
_EN_MAIL = frozenset(["dear", "regards", "best", "kind", "sincerely", "subject", "wrote", "hi"])
_DE_MAIL = frozenset(["geehrte", "geehrter", "grüße", "grüßen", "freundlichen", "betreff",
                      "an", "schrieb", "herrn", "liebe", "lieber"])


def _line_evidence(line: str) -> tuple[float, float]:
    """(English, German) evidence of one line: function and mail words, umlauts at half
    weight."""
    lower = line.lower()
    words = _WORD.findall(lower)
    en = sum(1 for w in words if w in _EN or w in _EN_MAIL)
    de = sum(1 for w in words if w in _DE or w in _DE_MAIL) + sum(
        1 for ch in lower if ch in "äöüß") / 2
    return float(en), de


def language_runs(text: str, default: str, allowed: tuple[str, ...]) -> list[tuple[int, int, str]]:
    """``(start, end, language)`` runs covering ``text``, for a long text in more than
    one language: blocks of whole lines (cut at blank lines, else after about
    :data:`BLOCK_CHARS`) are detected (an undecided one takes its predecessor's
    language), neighbours of one language merged, and each change of language moved
    to the line between the two blocks around it where the evidence changes sides."""
    lines: list[tuple[int, int]] = []
    pos = 0
    while pos < len(text):
        nl = text.find("\n", pos)
        end = len(text) if nl < 0 else nl + 1
        lines.append((pos, end))
        pos = end
    evidence = [_line_evidence(text[s:e]) for s, e in lines]
    blocks: list[tuple[int, int]] = []  # line index ranges
    first = 0
    for k, (s, e) in enumerate(lines):
        blank = not text[s:e].strip()
        if blank and k > first or e - lines[first][0] >= BLOCK_CHARS:
            blocks.append((first, k + 1))
            first = k + 1
    if first < len(lines):
        blocks.append((first, len(lines)))
    runs: list[_Run] = []
    previous = default
    for a, b in blocks:
        en = sum(evidence[k][0] for k in range(a, b))
        de = sum(evidence[k][1] for k in range(a, b))
        lang = "de" if de > en else "en" if en > de else previous
        lang = lang if lang in allowed else previous
        previous = lang
        if runs and runs[-1].language == lang:
            runs[-1].end = b
        else:
            runs.append(_Run(a, b, lang))
    for left, right in zip(runs, runs[1:], strict=False):
        _refine(left, right, evidence, blocks)
    return [(lines[r.first][0], lines[r.end - 1][1], r.language) for r in runs if r.end > r.first]


@dataclass
class _Run:
    """Lines [first, end) in one language (changed in place while boundaries settle)."""

    first: int
    end: int
    language: str


def _refine(left: _Run, right: _Run, evidence: list[tuple[float, float]],
            blocks: list[tuple[int, int]]) -> None:
    """Move the boundary between two runs to the best line within their adjoining blocks."""
    cut = left.end
    lo = max(left.first, next(a for a, b in blocks if a < cut <= b))
    hi = min(right.end, next(b for a, b in blocks if a <= cut < b))
    side = {"en": 0, "de": 1}
    i, j = side.get(left.language, 0), side.get(right.language, 1)
    gain = [evidence[k][i] - evidence[k][j] for k in range(lo, hi)]  # for the left language
    best, best_score = cut, None
    running = 0.0
    total_right = -sum(gain)  # every line in the right run
    for k in range(lo, hi + 1):
        score = running + total_right
        if best_score is None or score >= best_score:  # ties: lines without evidence
            best, best_score = k, score  # (a signature, an address) stay with the text before
        if k < hi:
            running += gain[k - lo]
            total_right += gain[k - lo]
    if left.first < best < right.end:
        left.end = best
        right.first = best
