"""Word lists for the special categories, loaded from ``data/<lang>.yaml`` and checked.

A lexicon is data a reviewer can read and edit: per category, groups of terms (words or
phrases) and regular expressions, each group with the conditions under which a match
counts. A bad file fails at load with a message naming the group, never at match time.

Term syntax (one string per term, words separated by spaces):
- a word matches one token; tokens are runs of letters and digits, so ``ver.di-mitglied``
  is the three tokens ``ver di mitglied`` and ``doctor's note`` is ``doctor s note``;
- ``word*`` matches a token that starts with ``word`` (``diabet*``: diabetes, diabetic);
- ``*word`` matches a token that ends with it after at least one more letter (German
  compounds: ``*allergie`` matches Penicillinallergie, not Allergie itself; list that too);
- a word written with a capital letter matches only with the same capitals (``Labour``,
  ``SPD``, ``Unite``); an all-lower-case word matches in any case.

A group's ``subject`` says whether the match needs a data subject in its sentence (a
PERSON finding, a word of ``subject.first_person`` or ``subject.words`` such as "I",
"his", "Herr", or a role noun of ``subject.roles`` such as "employee" or "Kollegin",
unless a word of ``subject.modifiers`` follows it: "patient portal" is a thing):
``required`` (the default) or ``none`` for terms that carry one themselves
("sick note", "Kirchensteuer: rk"). ``veto`` words cancel a match when they occur within
``veto_window`` tokens of it (default 4; 0 means the whole sentence), ``veto_sentence``
words anywhere in its sentence; ``context`` words must be in its sentence. A group's
``trigger`` words (lower case; ``word*``, ``*word`` as for terms: "500mg" is one token)
let its patterns skip a text
none of whose words is one of them: a regular expression costs tens of microseconds
per kilobyte even where it cannot match.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

from appliance.pii.special.categories import SPECIAL_CATEGORIES

DATA = Path(__file__).resolve().parent / "data"

#: A token: a run of letters and digits (Unicode-aware; "_" is no letter).
TOKEN = re.compile(r"[^\W_]+")

#: Per-token answers are memoised (prompt vocabulary repeats: the cache turns the prefix
#: and suffix probes into one dict hit); past this many entries a memo starts afresh.
_MEMO_MAX = 50_000


class LexiconError(ValueError):
    """A lexicon file that cannot be used, with the place it went wrong."""


@dataclass(frozen=True, slots=True)
class Word:
    """One word of a term or word list: exact, prefix (``w*``) or suffix (``*w``)."""

    text: str  # lower-cased unless ``case``
    kind: Literal["exact", "prefix", "suffix"]
    case: bool

    @classmethod
    def parse(cls, raw: str) -> Word:
        kind: Literal["exact", "prefix", "suffix"] = "exact"
        if raw.endswith("*"):
            kind, raw = "prefix", raw[:-1]
        elif raw.startswith("*"):
            kind, raw = "suffix", raw[1:]
        if not raw or not TOKEN.fullmatch(raw):
            raise LexiconError(f"not a word: {raw!r}")
        case = raw != raw.lower()
        return cls(raw if case else raw.lower(), kind, case)

    def matches(self, token: str, lower: str) -> bool:
        t = token if self.case else lower
        if self.kind == "exact":
            return t == self.text
        if self.kind == "prefix":
            return t.startswith(self.text)
        return len(t) > len(self.text) and t.endswith(self.text)


def _split_term(raw: str) -> list[str]:
    """``"ver.di-mitglied*"`` into ``["ver", "di", "mitglied*"]`` (stars stay on their word)."""
    out: list[str] = []
    for m in re.finditer(r"\*?[^\W_]+\*?", raw):
        out.append(m.group())
    if not out:
        raise LexiconError(f"empty term: {raw!r}")
    return out


class WordSet:
    """Membership test for one token against exact words, prefixes and suffixes."""

    def __init__(self, words: Iterable[str]) -> None:
        self._exact: set[str] = set()
        self._exact_case: set[str] = set()
        self._prefix: list[Word] = []
        self._suffix: list[Word] = []
        self._memo: dict[str, bool] = {}
        for raw in words:
            w = Word.parse(raw)
            if w.kind == "exact":
                (self._exact_case if w.case else self._exact).add(w.text)
            elif w.kind == "prefix":
                self._prefix.append(w)
            else:
                self._suffix.append(w)

    def __contains__(self, token: str) -> bool:
        hit = self._memo.get(token)
        if hit is None:
            lower = token.lower()
            hit = (
                lower in self._exact
                or token in self._exact_case
                or any(w.matches(token, lower) for w in self._prefix)
                or any(w.matches(token, lower) for w in self._suffix)
            )
            if len(self._memo) >= _MEMO_MAX:
                self._memo.clear()
            self._memo[token] = hit
        return hit


@dataclass(frozen=True, slots=True)
class Group:
    """The conditions shared by a group of terms or patterns of one category."""

    category: str
    name: str  # "HEALTH#3": category and position in the file, for findings and errors
    needs_subject: bool
    veto: WordSet
    veto_window: int
    veto_sentence: WordSet | None
    score: float
    context: WordSet | None  # patterns: a word that must be in the sentence
    trigger: frozenset[str] = frozenset()  # patterns run only if one of these words...
    #: ...or a word starting or ending as these do ("rs*", "*mg"), as an expression over the
    #: text's words joined by spaces
    trigger_affixes: re.Pattern[str] | None = None

    def triggered(self, vocabulary: frozenset[str], joined: str) -> bool:
        """Whether the group's patterns need to run on a text with these (lower-case) words;
        ``joined`` is the same words, each between spaces."""
        if not self.trigger and self.trigger_affixes is None:
            return True
        if not self.trigger.isdisjoint(vocabulary):
            return True
        return self.trigger_affixes is not None and self.trigger_affixes.search(joined) is not None


@dataclass(frozen=True, slots=True)
class Term:
    words: tuple[Word, ...]
    group: Group
    #: The word the index is keyed by: the longest exact one ("sick" in "is sick", not "is",
    #: which starts a dozen terms and occurs in every other sentence).
    anchor: int

    @classmethod
    def of(cls, words: tuple[Word, ...], group: Group) -> Term:
        exact = [k for k, w in enumerate(words) if w.kind == "exact"]
        anchor = max(exact, key=lambda k: len(words[k].text)) if exact else 0
        return cls(words, group, anchor)


@dataclass(frozen=True, slots=True)
class Pattern:
    regex: re.Pattern[str]
    group: Group


@dataclass
class Lexicon:
    """One language's terms, indexed by their first word, and its patterns."""

    language: str
    subject_words: WordSet
    first_person: WordSet
    roles: WordSet
    modifiers: WordSet
    abbreviations: frozenset[str]
    patterns: list[Pattern] = field(default_factory=list)
    _exact: dict[str, list[Term]] = field(default_factory=dict)
    _prefix: dict[int, dict[str, list[Term]]] = field(default_factory=dict)
    _suffix: dict[int, dict[str, list[Term]]] = field(default_factory=dict)
    _memo: dict[str, tuple[Term, ...]] = field(default_factory=dict)

    def add(self, term: Term) -> None:
        anchor = term.words[term.anchor]
        key = anchor.text.lower()
        if anchor.kind == "exact":
            self._exact.setdefault(key, []).append(term)
        else:
            table = self._prefix if anchor.kind == "prefix" else self._suffix
            table.setdefault(len(key), {}).setdefault(key, []).append(term)

    def anchored_at(self, lower: str) -> tuple[Term, ...]:
        """Terms whose anchor word may match a token (lower-cased); callers check each."""
        hit = self._memo.get(lower)
        if hit is not None:
            return hit
        found = list(self._exact.get(lower, ()))
        n = len(lower)
        for size, table in self._prefix.items():
            if size <= n:
                found.extend(table.get(lower[:size], ()))
        for size, table in self._suffix.items():
            if size <= n:
                found.extend(table.get(lower[n - size:], ()))
        if len(self._memo) >= _MEMO_MAX:
            self._memo.clear()
        self._memo[lower] = hit = tuple(found)
        return hit


def _str_list(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise LexiconError(f"{where}: expected a list of strings")
    return list(value)


_GROUP_KEYS = {"terms", "patterns", "subject", "veto", "veto_window", "veto_sentence", "score",
               "context", "trigger"}


def _group(category: str, index: int, raw: Mapping[str, Any], lang: str) -> tuple[Group, list[str], list[str]]:
    where = f"{lang}.yaml {category}#{index}"
    unknown = set(raw) - _GROUP_KEYS
    if unknown:
        raise LexiconError(f"{where}: unknown keys {sorted(unknown)}")
    subject = raw.get("subject", "required")
    if subject not in ("required", "none"):
        raise LexiconError(f"{where}: subject must be 'required' or 'none'")
    score = float(raw.get("score", 0.8))
    if not 0.5 <= score <= 1.0:
        raise LexiconError(f"{where}: score must be in [0.5, 1]")
    window = int(raw.get("veto_window", 4))
    if window < 0:
        raise LexiconError(f"{where}: veto_window must be >= 0")
    context = _str_list(raw.get("context"), where)
    veto_sentence = _str_list(raw.get("veto_sentence"), where)
    trigger = [t.lower() for t in _str_list(raw.get("trigger"), where)]
    if trigger and not raw.get("patterns"):
        raise LexiconError(f"{where}: trigger words only gate patterns")
    for t in trigger:
        Word.parse(t.strip("*") or "?")
    try:
        group = Group(
            category=category,
            name=f"{category}#{index}",
            needs_subject=subject == "required",
            veto=WordSet(_str_list(raw.get("veto"), where)),
            veto_window=window,
            veto_sentence=WordSet(veto_sentence) if veto_sentence else None,
            score=score,
            context=WordSet(context) if context else None,
            trigger=frozenset(t for t in trigger if "*" not in t),
            trigger_affixes=_affix_regex(trigger),
        )
    except LexiconError as e:
        raise LexiconError(f"{where}: {e}") from None
    terms, patterns = _str_list(raw.get("terms"), where), _str_list(raw.get("patterns"), where)
    if not terms and not patterns:
        raise LexiconError(f"{where}: a group needs terms or patterns")
    return group, terms, patterns


def _affix_regex(trigger: list[str]) -> re.Pattern[str] | None:
    affixes = [" " + re.escape(t[:-1]) for t in trigger if t.endswith("*")]
    affixes += [re.escape(t[1:]) + " " for t in trigger if t.startswith("*")]
    return re.compile("|".join(affixes)) if affixes else None


def parse_lexicon(doc: Mapping[str, Any], lang: str) -> Lexicon:
    """A lexicon from a parsed YAML document (see the module docstring for the format)."""
    subject = doc.get("subject") or {}
    try:
        lex = Lexicon(
            language=lang,
            subject_words=WordSet(_str_list(subject.get("words"), f"{lang}.yaml subject.words")),
            first_person=WordSet(
                _str_list(subject.get("first_person"), f"{lang}.yaml subject.first_person")
            ),
            roles=WordSet(_str_list(subject.get("roles"), f"{lang}.yaml subject.roles")),
            modifiers=WordSet(_str_list(subject.get("modifiers"), f"{lang}.yaml subject.modifiers")),
            abbreviations=frozenset(
                a.lower() for a in _str_list(doc.get("abbreviations"), f"{lang}.yaml abbreviations")
            ),
        )
    except LexiconError as e:
        raise LexiconError(f"{lang}.yaml subject: {e}") from None
    categories = doc.get("categories")
    if not isinstance(categories, Mapping):
        raise LexiconError(f"{lang}.yaml: no categories")
    unknown = set(categories) - SPECIAL_CATEGORIES
    if unknown:
        raise LexiconError(f"{lang}.yaml: unknown categories {sorted(unknown)}")
    for category, groups in categories.items():
        if not isinstance(groups, list):
            raise LexiconError(f"{lang}.yaml {category}: expected a list of groups")
        for i, raw in enumerate(groups):
            if not isinstance(raw, Mapping):
                raise LexiconError(f"{lang}.yaml {category}#{i}: expected a mapping")
            group, terms, patterns = _group(category, i, raw, lang)
            for t in terms:
                try:
                    lex.add(Term.of(tuple(Word.parse(w) for w in _split_term(t)), group))
                except LexiconError as e:
                    raise LexiconError(f"{lang}.yaml {group.name}: {e}") from None
            for p in patterns:
                try:
                    regex = re.compile(p)
                except re.error as e:
                    raise LexiconError(f"{lang}.yaml {group.name}: bad pattern {p!r}: {e}") from None
                lex.patterns.append(Pattern(regex, group))
    return lex


@cache
def load_lexicon(lang: str) -> Lexicon:
    """The shipped lexicon of ``lang`` (parsed once per process)."""
    path = DATA / f"{lang}.yaml"
    if not path.exists():
        raise LexiconError(f"no special-category lexicon for language {lang!r}")
    return parse_lexicon(yaml.safe_load(path.read_text("utf-8")) or {}, lang)
