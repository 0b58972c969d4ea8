"""What the analyzer reports, and how overlapping reports become one: plain data, no Presidio.

A :class:`Finding` carries offsets, a type, a score and the recognizer's name, never the
text it covers, so findings cross process boundaries, sit in the findings cache and
reach the audit row without carrying personal data. The analyzer workers and the main
process (which merges the findings of a long text's pieces) both resolve overlaps with
:func:`resolve_overlaps`; this module imports nothing heavy so that the main process
need not load Presidio or spaCy to do so.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Finding:
    """One entity found in one text: where, what type, how sure, and by which recognizer."""

    entity_type: str
    start: int
    end: int
    score: float
    recognizer: str
    #: Special categories (GDPR Art. 9, :mod:`appliance.pii.special`): the index, in the
    #: same text's findings, of the PERSON finding the fact concerns; None when the text
    #: names nobody it could concern. An index, never the name.
    person: int | None = None

    def shifted(self, by: int) -> Finding:
        """The same finding, its offsets moved by ``by`` (a piece's place in its text)."""
        return replace(self, start=self.start + by, end=self.end + by)


class SpecialCategories(Protocol):
    """A second layer over the identifier findings: sensitive facts about the persons
    found (:class:`appliance.pii.special.detector.SpecialCategoryDetector`)."""

    def findings(
        self, text: str, language: str, identifiers: Sequence[Finding]
    ) -> list[Finding]:
        """``identifiers`` (resolved) merged with the special-category findings."""
        ...

    def detect(
        self, text: str, language: str, persons: Sequence[tuple[int, int]] = ()
    ) -> list[Finding]:
        """The special-category findings alone; ``person`` indexes ``persons``."""
        ...


def with_specials(
    identifiers: Sequence[Finding], specials: Iterable[tuple[Finding, tuple[int, int] | None]]
) -> list[Finding]:
    """``identifiers`` (resolved, sorted by start) and the special-category findings,
    sorted by start. Each special comes with the span of the person it concerns (None:
    nobody); its ``person`` becomes the index of the PERSON identifier that covers most of
    that span. The same special read twice (in two pieces' overlap) is kept once.

    Specials overlap identifiers freely: they are a second layer, not spans to replace.
    """
    unique: dict[tuple[str, int, int], tuple[Finding, tuple[int, int] | None]] = {}
    for f, span in specials:
        key = (f.entity_type, f.start, f.end)
        if key not in unique or f.score > unique[key][0].score:
            unique[key] = (f, span)
    merged = sorted(
        [(f.start, 0, k, f, None) for k, f in enumerate(identifiers)]
        + [(f.start, 1, k, f, span) for k, (f, span) in enumerate(unique.values())],
        key=lambda x: (x[0], x[1], x[2]),
    )
    position = {k: n for n, (_, kind, k, _, _) in enumerate(merged) if kind == 0}
    persons = [(f.start, f.end, k) for k, f in enumerate(identifiers) if f.entity_type == "PERSON"]

    def person_of(span: tuple[int, int] | None) -> int | None:
        if span is None:
            return None
        overlap, k = max(((min(e, span[1]) - max(s, span[0]), k) for s, e, k in persons),
                         default=(0, -1))
        return position[k] if overlap > 0 else None

    return [f if kind == 0 else replace(f, person=person_of(span))
            for _, kind, _, f, span in merged]


#: Entity types whose findings come from names, word lists and grammar, never checksums.
NEVER_CERTAIN = frozenset({"PERSON", "LOCATION", "ADDRESS", "ORGANIZATION", "NRP"})


def resolve_overlaps(findings: Iterable[Finding]) -> list[Finding]:
    """Non-overlapping findings: near-certain ones (checksums, secrets) first, then longer
    spans, then higher scores; a loser that sticks out of its winner widens the winner.

    Redaction replaces spans, so two overlapping findings must become one; a validated
    value keeps its own type, and otherwise the longer span covers more and leaks less.
    Names, places and addresses are never near-certain, however much context raised
    their score: a whole address beats the unit number inside it. Widening instead of
    dropping means no part of either span reaches the provider.

    The winners are kept sorted by start (they never overlap, so their ends are sorted
    too) and a candidate's overlaps are found by bisection: a 400 KB prompt has
    thousands of findings, which a scan of every winner per candidate made quadratic.
    Of several overlapping winners, the one chosen first decides, as in a plain scan.
    """
    starts: list[int] = []
    chosen: list[tuple[Finding, int]] = []  # (winner, order in which it was chosen), by start
    queue = sorted(findings, key=_precedence)
    k = 0
    while k < len(queue):
        f = queue[k]
        k += 1
        hits = _overlapping(starts, chosen, f.start, f.end)
        if not hits:
            at = bisect_right(starts, f.start)
            starts.insert(at, f.start)
            chosen.insert(at, (f, len(starts)))
            continue
        hit = min(hits, key=lambda h: chosen[h][1])
        c = chosen[hit][0]
        if (f.start < c.start or f.end > c.end) and c.entity_type in NEVER_CERTAIN \
                and f.entity_type in NEVER_CERTAIN:
            wider = replace(c, start=min(c.start, f.start), end=max(c.end, f.end))
            if _overlapping(starts, chosen, wider.start, wider.end) == [hit]:
                chosen[hit] = (wider, chosen[hit][1])
                starts[hit] = wider.start
        elif f.entity_type in NEVER_CERTAIN and c.entity_type not in NEVER_CERTAIN:
            # An address that ran on into an IBAN line keeps its own lines: the parts of
            # the loser outside the validated value are still personal data.
            rest = [replace(f, start=s, end=e) for s, e in ((f.start, c.start), (c.end, f.end))
                    if e - s >= _MIN_REST]
            if rest:
                queue[k:] = sorted([*queue[k:], *rest], key=_precedence)
    return [c for c, _ in chosen]


#: Shortest part of a name, place or address kept after a validated value took the rest.
_MIN_REST = 4


def _precedence(f: Finding) -> tuple[bool, int, float, int, str, str]:
    """The order in which findings claim their spans. Exact ties go by type and
    recognizer name: Presidio hands its results over in set order, which changes from
    one process to the next, and a worker's answer must not depend on which it is."""
    certain = f.score >= 0.95 and f.entity_type not in NEVER_CERTAIN
    return (not certain, -(f.end - f.start), -f.score, f.start, f.entity_type, f.recognizer)


def _overlapping(starts: list[int], chosen: list[tuple[Finding, int]], start: int, end: int
                 ) -> list[int]:
    """Indexes of the winners that overlap [start, end)."""
    out = []
    k = bisect_left(starts, end) - 1
    while k >= 0 and chosen[k][0].end > start:
        if chosen[k][0].start < end:
            out.append(k)
        k -= 1
    return out
