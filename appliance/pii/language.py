"""Per-message language detection, cheap enough to run on every text piece.

Counts frequent function words of each language plus German-only letters; a text with
no evidence either way is treated as ``default``. Good enough to pick between the
English and German analyzers; not a general language identifier.
"""

from __future__ import annotations

import re

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
