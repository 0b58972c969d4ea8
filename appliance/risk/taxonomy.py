"""The EU AI Act taxonomy as data: areas, their class, article and application date.

The YAML file (``appliance/risk/data/taxonomy.yaml`` unless the config names another)
is the single source of truth; this module only validates it and compiles its rules.
Application dates can be overridden per area id or per class from the config, because
the dates move (the Commission's "digital omnibus" proposes postponing Annex III).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from appliance.errors import ConfigError
from appliance.risk.literals import lowered, search_from

RISK_CLASSES: tuple[str, ...] = ("minimal", "limited", "high", "prohibited")
#: Strength of a class: a request's class is the strongest class among its areas.
CLASS_RANK: Mapping[str, int] = {c: i for i, c in enumerate(RISK_CLASSES)}


#: How far back from the end of a repeated head a match may start and still reach into
#: the text after it. The rules' patterns are bounded (``.{0,40}``, single words), far
#: shorter than this.
JOINT_CHARS = 500


class ScanText:
    """A text the rules read, with its lower-cased form made once for every pattern's
    literal skip (:func:`appliance.risk.literals.search_from`)."""

    __slots__ = ("text", "_low")

    def __init__(self, text: str) -> None:
        self.text = text
        self._low = lowered(text)

    def __bool__(self) -> bool:
        return bool(self.text)

    def search(self, pattern: re.Pattern[str]) -> bool:
        return search_from(pattern, self.text, self._low)


class HeadedText(ScanText):
    """A text whose head (a system prompt, tool descriptions) repeats across requests while
    the rest changes: which patterns match the head alone is remembered in ``head_memo``
    (shared by every request with the same head), so each request searches only the
    rest, from ``JOINT_CHARS`` before the joint on (a match spanning it is still found).

    A pattern that matches in the head alone matches in the whole text: every rule
    pattern's match stays a match when more text follows (none is anchored at the end).
    """

    __slots__ = ("_head_len", "_head_memo")

    def __init__(self, text: str, head_len: int, head_memo: dict[re.Pattern[str], bool]) -> None:
        super().__init__(text)
        self._head_len = head_len
        self._head_memo = head_memo

    def search(self, pattern: re.Pattern[str]) -> bool:
        in_head = self._head_memo.get(pattern)
        if in_head is None:
            in_head = pattern.search(self.text, 0, self._head_len) is not None
            self._head_memo[pattern] = in_head
        start = max(0, self._head_len - JOINT_CHARS)
        return in_head or search_from(pattern, self.text, self._low, start)


#: What rules read: a plain text, or one prepared for many patterns.
RuleText = str | ScanText


@dataclass(frozen=True, slots=True)
class Rule:
    """Fires when every group matches somewhere in the text; ``weight`` is then the score."""

    weight: float
    groups: tuple[re.Pattern[str], ...]

    def fires(self, text: RuleText) -> bool:
        if isinstance(text, ScanText):
            return all(text.search(g) for g in self.groups)
        return all(g.search(text) for g in self.groups)


@dataclass(frozen=True, slots=True)
class Area:
    id: str
    risk_class: str
    article: str
    title: str
    applies_from: dt.date
    description: str
    exemplars: tuple[str, ...]
    rules: tuple[Rule, ...]

    def rule_score(self, text: RuleText) -> float:
        return max((r.weight for r in self.rules if r.fires(text)), default=0.0)

    def in_force(self, today: dt.date) -> bool:
        return today >= self.applies_from


@dataclass(frozen=True, slots=True)
class OrdinaryWork:
    """Requests that are ordinary work, whatever their vocabulary.

    The AI Act makes a *system* high-risk by what it is used for (Annex III): ranking
    applicants, deciding on a loan, grading exams, operating the grid. A request to write,
    reword, explain, translate or summarise a document (a mail to an applicant, a credit
    glossary, a maintenance notice for the grid) uses none of these, unless it also asks
    the model to perform the evaluation, decision or operation itself. So when a rule of
    ``rules`` fires and none of ``unless`` does, the scores of the areas in ``classes``
    (Annex III and Art. 6(3): ``high``) are multiplied by ``factor``. Prohibited practices
    and Art. 50 cases are left alone: manipulative texts and news articles *are*
    documents, so composing one is no evidence against them.
    """

    rules: tuple[Rule, ...]
    unless: tuple[Rule, ...]
    factor: float
    classes: frozenset[str]

    def factor_for(self, text: RuleText) -> float:
        if any(r.fires(text) for r in self.rules) and not any(
            r.fires(text) for r in self.unless
        ):
            return self.factor
        return 1.0


@dataclass(frozen=True, slots=True)
class Taxonomy:
    version: str
    areas: tuple[Area, ...]
    #: Rules that recognise talk *about* a practice (the law, its history) ...
    discussion: tuple[Rule, ...] = ()
    #: ... and the factor every area score is multiplied by when one fires ...
    discussion_factor: float = 1.0
    #: ... unless one of these fires: the request also asks to *do* something (build a
    #: script, rank, decide, detect), so "summarise these CVs and reject the weakest" is
    #: not talk about hiring.
    doing: tuple[Rule, ...] = ()
    #: Everyday tasks: similarity to these beats similarity to an area (a negative class).
    minimal_exemplars: tuple[str, ...] = ()
    #: Ordinary work (see :class:`OrdinaryWork`): what an Annex III use is not.
    ordinary_work: OrdinaryWork | None = None

    def damping(self, text: RuleText) -> float:
        """The factor for ``text``: ``discussion_factor`` if it discusses (asks about,
        explains, translates) without asking to do anything, else 1."""
        if any(r.fires(text) for r in self.discussion) and not any(
            r.fires(text) for r in self.doing
        ):
            return self.discussion_factor
        return 1.0

    def ordinary_factors(self, text: RuleText) -> dict[str, float]:
        """The factor per risk class for ``text``: ``ordinary_work.factor`` for its classes
        when ``text`` is ordinary work, 1 otherwise."""
        work = self.ordinary_work
        factor = work.factor_for(text) if work is not None else 1.0
        return {c: factor if work is not None and c in work.classes else 1.0 for c in CLASS_RANK}

    def area(self, area_id: str) -> Area:
        for a in self.areas:
            if a.id == area_id:
                return a
        raise KeyError(area_id)

    def ids(self) -> tuple[str, ...]:
        return tuple(a.id for a in self.areas)


def compile_rules(raw: Any, where: str) -> tuple[Rule, ...]:
    """Rules from YAML (``[{weight, all: [regex, ...]}]``), rejecting bad ones at load."""
    rules: list[Rule] = []
    for i, r in enumerate(raw or ()):
        try:
            weight = float(r["weight"])
            groups = tuple(re.compile(p, re.IGNORECASE) for p in r["all"])
        except (KeyError, TypeError, ValueError, re.error) as e:
            raise ConfigError(f"{where}.rules[{i}]: {e}") from None
        if not 0.0 <= weight <= 1.0 or not groups:
            raise ConfigError(f"{where}.rules[{i}]: weight must be in [0, 1], groups non-empty")
        rules.append(Rule(weight, groups))
    return tuple(rules)


def _date(value: Any, where: str) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"{where}: {value!r} is not an ISO date") from None


def read_yaml(path: Path | None, builtin: str) -> tuple[Any, str]:
    """The parsed file at ``path``, or the packaged file ``builtin`` when ``path`` is None."""
    if path is None:
        text = resources.files("appliance.risk").joinpath("data", builtin).read_text("utf-8")
        return yaml.safe_load(text), f"appliance/risk/data/{builtin}"
    try:
        return yaml.safe_load(Path(path).read_text("utf-8")), str(path)
    except FileNotFoundError:
        raise ConfigError(f"file not found: {path}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from None


def load_taxonomy(
    path: Path | None = None, date_overrides: Mapping[str, dt.date] | None = None
) -> Taxonomy:
    """Load and validate the taxonomy; ``date_overrides`` maps area ids or classes to dates."""
    raw, source = read_yaml(path, "taxonomy.yaml")
    overrides = dict(date_overrides or {})
    classes: Mapping[str, Any] = raw.get("classes") or {}
    areas: list[Area] = []
    seen: set[str] = set()
    for i, a in enumerate(raw.get("areas") or ()):
        where = f"{source}: areas[{i}]"
        try:
            area_id, risk_class = str(a["id"]), str(a["class"])
        except (KeyError, TypeError):
            raise ConfigError(f"{where}: id and class are required") from None
        if risk_class not in CLASS_RANK:
            raise ConfigError(f"{where}: unknown class {risk_class!r}")
        if area_id in seen:
            raise ConfigError(f"{where}: duplicate id {area_id!r}")
        seen.add(area_id)
        default_date = a.get("applies_from") or classes.get(risk_class, {}).get("applies_from")
        when = overrides.get(area_id) or overrides.get(risk_class)
        areas.append(
            Area(
                id=area_id,
                risk_class=risk_class,
                article=str(a.get("article", "")),
                title=str(a.get("title", area_id)),
                applies_from=when or _date(default_date or "2024-08-01", where),
                description=str(a.get("description", "")),
                exemplars=tuple(str(e) for e in a.get("exemplars") or ()),
                rules=compile_rules(a.get("rules"), where),
            )
        )
    unknown = set(overrides) - seen - set(CLASS_RANK)
    if unknown:
        raise ConfigError(f"risk.application_dates: unknown areas {sorted(unknown)}")
    if not areas:
        raise ConfigError(f"{source}: no areas")
    factor = float(raw.get("discussion_factor", 1.0))
    if not 0.0 <= factor <= 1.0:
        raise ConfigError(f"{source}: discussion_factor must be in [0, 1]")
    return Taxonomy(
        version=str(raw.get("version", "")),
        areas=tuple(areas),
        discussion=compile_rules(raw.get("discussion"), f"{source}: discussion"),
        discussion_factor=factor,
        doing=compile_rules(raw.get("doing"), f"{source}: doing"),
        minimal_exemplars=tuple(str(e) for e in raw.get("minimal_exemplars") or ()),
        ordinary_work=_ordinary_work(raw.get("ordinary_work"), f"{source}: ordinary_work"),
    )


def _ordinary_work(raw: Any, where: str) -> OrdinaryWork | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: a mapping with rules, unless, factor and classes")
    try:
        factor = float(raw.get("factor", 1.0))
    except (TypeError, ValueError):
        raise ConfigError(f"{where}.factor: {raw.get('factor')!r} is not a number") from None
    if not 0.0 <= factor <= 1.0:
        raise ConfigError(f"{where}.factor must be in [0, 1]")
    classes = frozenset(str(c) for c in raw.get("classes") or ())
    if not classes <= set(CLASS_RANK):
        raise ConfigError(f"{where}.classes: unknown {sorted(classes - set(CLASS_RANK))}")
    return OrdinaryWork(
        rules=compile_rules(raw.get("rules"), where),
        unless=compile_rules(raw.get("unless"), f"{where}.unless"),
        factor=factor,
        classes=classes,
    )


def strongest(classes: Sequence[str]) -> str:
    """The strongest of ``classes`` (``minimal`` for none)."""
    return max(classes, key=CLASS_RANK.__getitem__, default="minimal")
