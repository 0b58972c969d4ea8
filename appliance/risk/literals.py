"""The literals a rule pattern's matches start with, and searches that skip to them.

Most risk, safety and attack patterns are ``\\b(word|word\\w*|...)`` alternations. Python's
``re`` tries every alternative at every position of the text, so one such pattern costs
0.5-1.4 ms on a 2 KB e-mail thread, and a request is read by about a hundred of them.
Every match of such a pattern starts with one of its alternatives' literal prefixes; a
substring search for those (in C, over the lower-cased text) finds where a match can
first begin. No occurrence: the pattern cannot match. Else the regex search starts
there, and finds exactly what a search from the start would (``\\b`` and look-behinds
still see the characters before it).
"""

from __future__ import annotations

import re
import re._parser as sre_parse  # the stdlib's own parse of a pattern, for its literals
from typing import Any


def _case_traps() -> re.Pattern[str]:
    """Characters that ``re.IGNORECASE`` matches to a letter ``str.lower`` does not map
    them to (the stdlib's extra cases: the dotless i, the long s, Greek symbol forms...),
    the capital sigma (lower-cased by its position) and the dotted capital I (whose lower
    case is two characters). A text holding one is searched whole."""
    try:
        from re._casefix import _EXTRA_CASES  # the table re.IGNORECASE itself uses

        extra = {chr(c) for k, v in _EXTRA_CASES.items() for c in (k, *v) if c > 127}
    except ImportError:
        extra = set("\u00b5\u0131\u017f\u0345\u03c2\u03d0\u03d1\u03d5\u03d6\u03f0\u03f1"
                    "\u03f5\u1e9b\u1fbe\ufb05\ufb06")
    return re.compile("[" + re.escape("".join(sorted(extra | {"\u0130", "\u03a3"}))) + "]")


_CASE_TRAPS = _case_traps()


def _prefixes(items: Any) -> set[str] | None:
    """Literals one of which every match of the parsed sequence ``items`` starts with
    (after zero-width assertions), or None when there are no such literals."""
    text = ""
    for op, arg in items:
        if op is sre_parse.AT:  # \b, ^: zero width
            if text:
                break
            continue
        if op is sre_parse.LITERAL:
            text += chr(arg)
            continue
        if text:
            break
        if op is sre_parse.SUBPATTERN:
            return _prefixes(arg[-1])
        if op is sre_parse.BRANCH:
            out: set[str] = set()
            for branch in arg[1]:
                found = _prefixes(branch)
                if not found:
                    return None
                out |= found
            return out
        return None
    return {text.lower()} if text else None


#: Prefixes by the pattern object's identity (it holds the pattern, so the id stays its
#: own): hashing a compiled pattern walks its whole program, 4 µs for a large one, and a
#: request is read by a few hundred.
_KNOWN: dict[int, tuple[re.Pattern[str], frozenset[str] | None]] = {}
_KNOWN_MAX = 4096


def literal_prefixes(pattern: re.Pattern[str]) -> frozenset[str] | None:
    """The lower-cased literals every match of ``pattern`` starts with, or None (no such
    literals, or one shorter than two characters: not worth a substring search)."""
    known = _KNOWN.get(id(pattern))
    if known is not None and known[0] is pattern:
        return known[1]
    try:
        found = _prefixes(sre_parse.parse(pattern.pattern, pattern.flags))
    except (re.error, TypeError, ValueError):
        found = None
    prefixes = frozenset(found) if found and all(len(x) >= 2 for x in found) else None
    if len(_KNOWN) >= _KNOWN_MAX:  # patterns of reloaded rule files: start afresh
        _KNOWN.clear()
    _KNOWN[id(pattern)] = (pattern, prefixes)
    return prefixes


def lowered(text: str) -> str | None:
    """``text`` lower-cased with every character where it was, or None where lower case
    cannot stand in for case-insensitive matching (see ``_CASE_TRAPS``)."""
    if not text.isascii() and _CASE_TRAPS.search(text):
        return None
    low = text.lower()
    return low if len(low) == len(text) else None


def search_from(pattern: re.Pattern[str], text: str, low: str | None, start: int = 0) -> bool:
    """Whether ``pattern`` matches ``text`` at or after ``start``; ``low`` is
    :func:`lowered` of ``text``."""
    prefixes = literal_prefixes(pattern) if low is not None else None
    if prefixes is None or low is None:
        return pattern.search(text, start) is not None
    first = -1
    for literal in prefixes:
        at = low.find(literal, start, first + len(literal) if first >= 0 else len(low))
        if at >= 0:
            first = at
    return first >= 0 and pattern.search(text, first) is not None
