"""Long texts as overlapping pieces: where to cut, and whose findings count.

A 400 KB prompt (the policy's 100,000-token limit) cannot be one analysis: spaCy and
the recognizers are linear at best, and one worker would hold the whole of it while the
other cores idle. :func:`plan_pieces` cuts a text into pieces of at most ``size``
characters, preferably at a blank line, else a line end, a sentence end or a space,
and hands each piece a *window* that reaches ``overlap`` characters past its end and
half as far before its start (rounded out to whitespace). Only findings that *start*
inside a piece's own part count for it (:func:`merge`): an entity that crosses a cut
is found whole by the piece it starts in, as long as it is shorter than ``overlap``
(the longest entity in the English benchmark, an address, has 95 characters; the
default overlap is 256), and nothing is found twice. Context words before an entity
(a title, "IBAN:", "Telefon") lie in the window's lead.

The cuts are chosen from the left, each from the text after the previous one, so a
text that only changes at its end (a long context with a new question appended) keeps
its earlier pieces, and their cached findings (:mod:`appliance.pii.cache`); only the
last two pieces are balanced, so that a text a little longer than one piece does not
leave a sliver to one worker while another does nearly all.

``skip`` lists spans that need no analysis (answer paragraphs that repeat the redacted
request word for word, see :func:`known_spans`): no piece owns them, though a window
may reach into them for context; one shorter than a window's reach is analysed with
its neighbours instead, so that a few short new lines between repeated paragraphs
do not each cost a window.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from appliance.config.pii import PiiConfig
from appliance.pii.findings import Finding, resolve_overlaps, with_specials
from appliance.pii.special.categories import SPECIAL_CATEGORIES
from appliance.pii.language import language_runs

#: How far a window edge may move to reach whitespace (a word is not cut in two).
_SNAP = 64
#: A sentence end: punctuation and a space, after a word of at least four letters
#: ("Dr. Becker", "Nr. 5", "z.B. hier" are no sentence ends).
_SENTENCE_END = re.compile(r"[^\W\d_]{4,}[.!?…][\"'”“)\]]?\s")
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


@dataclass(frozen=True, slots=True)
class Piece:
    """``text[start:end]`` is analysed; findings starting in [own_start, own_end) count."""

    start: int
    end: int
    own_start: int
    own_end: int


def plan_pieces(text: str, size: int, overlap: int, skip: Sequence[tuple[int, int]] = (),
                breaks: Sequence[int] = ()) -> list[Piece]:
    """The pieces that together own every character of ``text`` outside ``skip``; a
    piece never owns characters on both sides of a position in ``breaks`` (where the
    text changes language)."""
    pieces = []
    changes = frozenset(breaks)
    for lo, hi in _regions(text, skip, breaks, overlap + overlap // 2):
        for own_start, own_end in _cuts(text, lo, hi, size):
            # Where the language changes, one document ends and another begins: what
            # crosses there is rare (the line finding the change keeps a letter's closing
            # lines with it), and the other document is no context, so windows reach a
            # quarter of the overlap across it.
            ahead = overlap // 4 if own_end in changes else overlap
            lead = overlap // 4 if own_start in changes else overlap // 2
            pieces.append(Piece(
                start=_snap_back(text, max(0, own_start - lead)),
                end=_snap_forward(text, min(len(text), own_end + ahead)),
                own_start=own_start,
                own_end=own_end,
            ))
    return pieces


def plan_text(text: str, language: str, config: PiiConfig, *, detect: bool = False,
              skip: Sequence[tuple[int, int]] = ()) -> list[tuple[Piece, str]]:
    """The pieces the analyzer pool analyses for ``text``, each with its language:
    ``language`` throughout, or, with ``detect`` (the language was detected, not
    configured) and a text longer than one piece, the language of each run of it
    (:func:`appliance.pii.language.language_runs`), no piece spanning two runs."""
    runs = [(0, len(text), language)]
    if detect and len(text) > config.piece_chars and len(config.languages) > 1:
        runs = language_runs(text, language, tuple(config.languages))
    pieces = plan_pieces(text, config.piece_chars, config.piece_overlap_chars, skip,
                         breaks=[start for start, _, _ in runs[1:]])
    out = []
    k = 0
    for piece in pieces:
        while runs[k][1] <= piece.own_start:
            k += 1
        out.append((piece, runs[k][2]))
    return out


def merge(pieces: Sequence[Piece], found: Iterable[Sequence[Finding]]) -> list[Finding]:
    """One text's findings from its pieces' (offsets relative to each window): each
    piece's own ones, moved to the text's offsets, overlaps resolved as in one analysis;
    special categories (GDPR Art. 9) join after, each linked to the PERSON finding that
    covers the person its piece linked it to."""
    owned = []
    specials: list[tuple[Finding, tuple[int, int] | None]] = []
    for piece, findings in zip(pieces, found, strict=True):
        for f in findings:
            start = f.start + piece.start
            if not piece.own_start <= start < piece.own_end:
                continue
            if f.entity_type in SPECIAL_CATEGORIES:  # a second layer, linked by span
                person = findings[f.person].shifted(piece.start) if f.person is not None else None
                specials.append((replace(f.shifted(piece.start), person=None),
                                 (person.start, person.end) if person else None))
            else:
                owned.append(f.shifted(piece.start))
    identifiers = resolve_overlaps(owned)
    return with_specials(identifiers, specials) if specials else identifiers


def _regions(text: str, skip: Sequence[tuple[int, int]], breaks: Sequence[int],
             reach: int) -> list[tuple[int, int]]:
    """The spans to analyse: the text without ``skip`` and without the blank lines left
    between skipped paragraphs, cut at ``breaks``. A skipped span between two spans to
    analyse that is shorter than ``reach`` (the windows on either side read it anyway)
    is analysed with them rather than leaving two pieces."""
    raw: list[tuple[int, int]] = []
    at = 0
    for s, e in [*sorted(skip), (len(text), len(text))]:
        if s > at and (not skip or text[at:s].strip()):
            raw.append((at, s))
        at = max(at, e)
    out: list[tuple[int, int]] = []
    for lo, hi in raw:
        if out and lo - out[-1][1] < reach:
            out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    for b in sorted(breaks):
        out = [part for lo, hi in out
               for part in (((lo, b), (b, hi)) if lo < b < hi else ((lo, hi),))]
    return out


def _cuts(text: str, lo: int, hi: int, size: int) -> list[tuple[int, int]]:
    """Cuts of [lo, hi) into parts of at most ``size`` characters (see the module doc)."""
    out = []
    start = lo
    while hi - start > 2 * size:
        cut = _best_cut(text, start + size // 2, start + size)
        out.append((start, cut))
        start = cut
    if hi - start > size:
        middle = start + (hi - start) // 2
        cut = _best_cut(text, max(middle - size // 4, hi - size),
                        min(middle + size // 4, start + size), near=middle)
        out.append((start, cut))
        start = cut
    if hi > start:
        out.append((start, hi))
    return out


def _best_cut(text: str, lo: int, hi: int, near: int | None = None) -> int:
    """A position in (lo, hi]: after a blank line, a line end, a sentence end or a
    space, in that order; the last one, or the one nearest ``near``; else ``hi``
    (or ``near``): a text without spaces is cut anywhere."""
    for kind in (_BLANK_LINE, "\n", _SENTENCE_END, " "):
        if isinstance(kind, str):
            ends = [m.end() for m in re.finditer(re.escape(kind), text[lo:hi])]
        else:
            ends = [m.end() for m in kind.finditer(text, lo, hi)]
            ends = [e - lo for e in ends]
        ends = [lo + e for e in ends if lo < lo + e <= hi]
        if ends:
            return ends[-1] if near is None else min(ends, key=lambda e: (abs(e - near), e))
    return hi if near is None else near


def _snap_back(text: str, at: int) -> int:
    """``at`` moved back to just after whitespace (at most ``_SNAP`` characters)."""
    for k in range(at, max(-1, at - _SNAP), -1):
        if k == 0 or text[k - 1].isspace():
            return k
    return at


def _snap_forward(text: str, at: int) -> int:
    """``at`` moved forward to whitespace or the text's end (at most ``_SNAP`` characters)."""
    for k in range(at, min(len(text), at + _SNAP) + 1):
        if k == len(text) or text[k].isspace():
            return k
    return at


def paragraphs(text: str) -> list[tuple[int, int]]:
    """The spans of ``text`` between blank lines (stripped of surrounding whitespace)."""
    out = []
    at = 0
    for m in [*_BLANK_LINE.finditer(text), None]:
        end = m.start() if m else len(text)
        s, e = at, end
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s, e))
        at = m.end() if m else len(text)
    return out


def digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def known_digests(texts: Iterable[str]) -> frozenset[bytes]:
    """Digests of the paragraphs of ``texts`` (the request as redacted and sent on)."""
    return frozenset(digest(text[s:e]) for text in texts for s, e in paragraphs(text))


def known_spans(text: str, known: frozenset[bytes]) -> list[tuple[int, int]]:
    """The paragraphs of ``text`` whose digest is in ``known``."""
    if not known:
        return []
    return [(s, e) for s, e in paragraphs(text) if digest(text[s:e]) in known]
