"""Finds special-category data in a text and links each finding to the person it concerns.

Runs after the identifier recognizers, in the same worker process, because it needs
their PERSON findings twice: as evidence that a sensitive word is about someone (a
diagnosis next to a name is health data, the same word in a blog-post request is not),
and to say whom a finding concerns. Matching is one pass over the tokens with dictionary
look-ups (no regex alternation over hundreds of words), so its cost stays in the tens of
microseconds for a prompt.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

from appliance.config.pii import PiiConfig
from appliance.pii.findings import Finding
from appliance.pii.special.categories import SPECIAL_CATEGORIES
from appliance.pii.special.lexicon import TOKEN, Group, Lexicon, load_lexicon
from appliance.pii.special.names import given_names, is_full_name

#: Candidate sentence ends: terminal punctuation (and closing quotes) then space, or a
#: line break. A full stop after an abbreviation, an initial or a number is no end.
_BREAK = re.compile(r"[.!?]+[\"'’”)\]]*\s+|\n+")


class _Token(NamedTuple):  # a tuple: made once per word of every request, so cheap to build
    start: int
    end: int
    text: str
    lower: str


@dataclass(frozen=True, slots=True)
class _Hit:
    group: Group
    start: int
    end: int
    first: int  # token indices covered (patterns: the tokens they overlap)
    last: int


def _tokenize(text: str) -> list[_Token]:
    return [_Token(m.start(), m.end(), m.group(), m.group().lower()) for m in TOKEN.finditer(text)]


class _Text:
    """One text as one lexicon reads it: tokens (shared by the lexicons), sentences (their
    ends depend on the language's abbreviations), and the cues of each sentence, cached."""

    def __init__(
        self,
        text: str,
        tokens: list[_Token],
        lex: Lexicon,
        persons: Sequence[tuple[int, int]],
        names: frozenset[str],
    ) -> None:
        self.text = text
        self.lex = lex
        self.persons = persons
        self.names = names
        self.tokens = tokens
        self.token_starts = [t.start for t in self.tokens]
        self.sentence_starts = self._sentences()
        self._cues: dict[int, tuple[bool, bool]] = {}

    def _sentences(self) -> list[int]:
        starts = [0]
        for m in _BREAK.finditer(self.text):
            if m.group()[0] == ".":
                k = bisect.bisect_left(self.token_starts, m.start()) - 1
                before = self.tokens[k] if k >= 0 and self.tokens[k].end == m.start() else None
                if before is not None and (
                    len(before.text) == 1
                    or before.text.isdigit()
                    or before.lower in self.lex.abbreviations
                ):
                    continue
            starts.append(m.end())
        return starts

    def sentence_of(self, pos: int) -> int:
        return bisect.bisect_right(self.sentence_starts, pos) - 1

    def sentence_bounds(self, s: int) -> tuple[int, int]:
        end = self.sentence_starts[s + 1] if s + 1 < len(self.sentence_starts) else len(self.text)
        return self.sentence_starts[s], end

    def token_range(self, start: int, end: int) -> range:
        return range(bisect.bisect_left(self.token_starts, start),
                     bisect.bisect_left(self.token_starts, end))

    def cues(self, s: int) -> tuple[bool, bool]:
        """(a data subject is in sentence ``s``, the subject is the writer)."""
        if s not in self._cues:
            lo, hi = self.sentence_bounds(s)
            subject = any(p_start < hi and p_end > lo for p_start, p_end in self.persons)
            first = False
            lex = self.lex
            span = self.token_range(lo, hi)
            for k in span:
                tok = self.tokens[k].text
                if tok in lex.first_person:
                    first = subject = True
                    break
                if subject:
                    continue
                nxt = self.tokens[k + 1].text if k + 1 in span else ""
                if tok in lex.subject_words:
                    subject = True
                elif tok in lex.roles:
                    subject = nxt not in lex.modifiers
                elif tok in self.names:
                    # "Raj Mehta": a given name, then a surname; in German also a given
                    # name before a lower-case word, which is no noun ("Paula spritzt")
                    subject = is_full_name(tok, nxt) or (
                        lex.language == "de" and nxt.isalpha() and nxt.islower())
            self._cues[s] = (subject, first)
        return self._cues[s]


class SpecialCategoryDetector:
    """``findings(text, language, identifiers)``: the identifiers plus special-category findings.

    Built once per worker (:func:`build_special_detector`); holds the parsed lexicons only.
    """

    def __init__(
        self, languages: Iterable[str], categories: Iterable[str], threshold: float = 0.5
    ) -> None:
        self._lexicons = {lang: load_lexicon(lang) for lang in languages}
        self._categories = frozenset(categories) & SPECIAL_CATEGORIES
        self._threshold = threshold
        self._names = given_names()
        # load the name lists and the word frequencies now, not on a request
        is_full_name("Anna", "Zzyzx")

    def findings(
        self, text: str, language: str, identifiers: Sequence[Finding]
    ) -> list[Finding]:
        """``identifiers`` (sorted, non-overlapping) merged with the special-category
        findings of ``text``, sorted by start; a special finding's ``person`` is the index,
        in the returned list, of the PERSON finding it concerns."""
        persons = [k for k, f in enumerate(identifiers) if f.entity_type == "PERSON"]
        special = self.detect(
            text, language, [(identifiers[k].start, identifiers[k].end) for k in persons]
        )
        if not special:
            return list(identifiers)
        merged = sorted(
            [(f.start, 0, k, f) for k, f in enumerate(identifiers)]
            + [(f.start, 1, k, f) for k, f in enumerate(special)],
            key=lambda x: (x[0], x[1], x[2]),
        )
        where = {k: n for n, (_, kind, k, _) in enumerate(merged) if kind == 0}
        return [
            replace(f, person=where[persons[f.person]]) if kind == 1 and f.person is not None else f
            for _, kind, _, f in merged
        ]

    def detect(
        self, text: str, language: str, persons: Sequence[tuple[int, int]] = ()
    ) -> list[Finding]:
        """Special-category findings only; ``person`` indexes ``persons`` (text order).

        Every configured language's lexicon reads the text, the detected one first: a
        short German form ("Kirchensteuer: rk") often has too few function words to be
        detected as German, and prompts mix languages ("Summarise: 'Herr X ist
        krankgeschrieben'"). Each lexicon judges its own terms with its own cues.
        """
        if not self._categories or not text.strip():
            return []
        order = [language] if language in self._lexicons else []
        order += [lang for lang in self._lexicons if lang != language]
        tokens = _tokenize(text)
        docs = [_Text(text, tokens, self._lexicons[lang], persons, self._names) for lang in order]
        hits = [(doc, h) for doc, h in self._matches(docs) if self._counts(doc, h)]
        return [
            Finding(h.group.category, h.start, h.end, h.group.score,
                    f"special_{doc.lex.language}:{h.group.name}", self._link(doc, h))
            for doc, h in _merge(hits)
        ]

    def _matches(self, docs: list[_Text]) -> list[tuple[_Text, _Hit]]:
        """Every term and pattern match of every lexicon, in one pass over the tokens."""
        hits: list[tuple[_Text, _Hit]] = []
        tokens = docs[0].tokens if docs else []
        n = len(tokens)
        categories = self._categories
        lexicons = [(doc, doc.lex.anchored_at) for doc in docs]
        for k, tok in enumerate(tokens):
            for doc, anchored_at in lexicons:
                for term in anchored_at(tok.lower):
                    if term.group.category not in categories:
                        continue
                    i = k - term.anchor  # where the term would start
                    last = i + len(term.words) - 1
                    if i < 0 or last >= n:
                        continue
                    if all(w.matches(tokens[i + j].text, tokens[i + j].lower)
                           for j, w in enumerate(term.words)):
                        hits.append((doc, _Hit(term.group, tokens[i].start, tokens[last].end,
                                               i, last)))
        vocabulary = frozenset(t.lower for t in tokens)
        joined = " " + " ".join(vocabulary) + " "
        scanned: dict[str, list[re.Match[str]]] = {}  # an expression both lexicons hold: once
        for doc in docs:
            for pattern in doc.lex.patterns:
                if pattern.group.category not in categories:
                    continue
                if not pattern.group.triggered(vocabulary, joined):
                    continue
                found = scanned.get(pattern.regex.pattern)
                if found is None:
                    found = scanned[pattern.regex.pattern] = list(pattern.regex.finditer(doc.text))
                for m in found:
                    if m.end() == m.start():
                        continue
                    span = doc.token_range(m.start(), m.end())
                    first = span.start if len(span) else max(span.start - 1, 0)
                    hits.append((doc, _Hit(pattern.group, m.start(), m.end(), first,
                                           max(span.stop - 1, first))))
        return hits

    def _counts(self, doc: _Text, hit: _Hit) -> bool:
        """Whether a match counts: its context is there, no veto word is near it, and (if
        its group needs one) its sentence has a data subject."""
        group = hit.group
        if group.score < self._threshold:
            return False
        s = doc.sentence_of(hit.start)
        sentence = doc.token_range(*doc.sentence_bounds(s))
        if group.context is not None and not any(
            doc.tokens[k].text in group.context for k in sentence
        ):
            return False
        near = sentence if group.veto_window == 0 else range(
            max(hit.first - group.veto_window, 0),
            min(hit.last + group.veto_window + 1, len(doc.tokens)),
        )
        if any(doc.tokens[k].text in group.veto for k in near):
            return False
        if group.veto_sentence is not None and any(
            doc.tokens[k].text in group.veto_sentence for k in sentence
        ):
            return False
        return not group.needs_subject or doc.cues(s)[0]

    def _link(self, doc: _Text, hit: _Hit) -> int | None:
        """The PERSON this finding concerns: the nearest one in its sentence (before it,
        else after it), else the nearest one before it in the text, unless the writer
        speaks of themselves there ("I", "ich") -- then nobody named."""
        if not doc.persons:
            return None
        s = doc.sentence_of(hit.start)
        lo, hi = doc.sentence_bounds(s)
        before = [k for k, (a, b) in enumerate(doc.persons) if a < hit.start]
        after = [k for k, (a, b) in enumerate(doc.persons) if a >= hit.end]
        in_sentence_before = [k for k in before if doc.persons[k][0] >= lo]
        in_sentence_after = [k for k in after if doc.persons[k][0] < hi]
        # (a PERSON that overlaps the hit counts as before it: "Personalstammblatt Sandra
        # Fuchs - Konfession" tagged as one name still names the subject of "Konfession:")
        if in_sentence_before:
            return in_sentence_before[-1]
        if in_sentence_after:
            return in_sentence_after[0]
        if before and not doc.cues(s)[1]:
            return before[-1]
        return None


def _merge(hits: list[tuple[_Text, _Hit]]) -> list[tuple[_Text, _Hit]]:
    """One hit per overlapping run of one category's hits (the widest span, best group)."""
    out: list[tuple[_Text, _Hit]] = []
    for doc, h in sorted(hits, key=lambda x: (x[1].group.category, x[1].start, -x[1].end)):
        if out and out[-1][1].group.category == h.group.category and h.start < out[-1][1].end:
            last_doc, last = out[-1]
            best = last.group if last.group.score >= h.group.score else h.group
            out[-1] = (last_doc, _Hit(best, last.start, max(last.end, h.end), last.first,
                                      max(last.last, h.last)))
        else:
            out.append((doc, h))
    return sorted(out, key=lambda x: (x[1].start, x[1].group.category))


def build_special_detector(config: PiiConfig) -> SpecialCategoryDetector | None:
    """The detector for ``config`` (None when switched off); categories the config ignores
    (``pii.ignore_entities``) are never reported."""
    if not config.special_categories:
        return None
    return SpecialCategoryDetector(
        config.languages,
        SPECIAL_CATEGORIES - set(config.ignore_entities),
        config.score_threshold,
    )
