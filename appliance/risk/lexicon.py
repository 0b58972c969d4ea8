"""Safety categories (EN+DE rules and exemplars) and their per-category thresholds.

The lexicon (what each category looks like) ships with the package; the thresholds
(what to do about a score) are policy data that auditors edit in
``policies/data/safety.yaml``. The file is re-read when it changes, like the policies.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from appliance.errors import ConfigError
from appliance.risk.taxonomy import Rule, RuleText, compile_rules, read_yaml

log = logging.getLogger(__name__)

Direction = Literal["prompt", "answer"]


@dataclass(frozen=True, slots=True)
class SafetyCategory:
    id: str
    #: OpenAI moderation category names this category answers for.
    openai: tuple[str, ...]
    description: str
    exemplars: tuple[str, ...]
    rules: tuple[Rule, ...]

    def rule_score(self, text: RuleText) -> float:
        return max((r.weight for r in self.rules if r.fires(text)), default=0.0)


def load_lexicon(path: Path | None = None) -> tuple[SafetyCategory, ...]:
    raw, source = read_yaml(path, "safety_lexicon.yaml")
    out: list[SafetyCategory] = []
    for i, c in enumerate(raw.get("categories") or ()):
        where = f"{source}: categories[{i}]"
        if "id" not in c:
            raise ConfigError(f"{where}: id is required")
        out.append(
            SafetyCategory(
                id=str(c["id"]),
                openai=tuple(str(x) for x in c.get("openai") or ()),
                description=str(c.get("description", "")),
                exemplars=tuple(str(e) for e in c.get("exemplars") or ()),
                rules=compile_rules(c.get("rules"), where),
            )
        )
    if not out:
        raise ConfigError(f"{source}: no categories")
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Threshold:
    """Score at or above ``block`` blocks, at or above ``flag`` flags; None switches off."""

    block: float | None
    flag: float | None

    def action(self, score: float) -> Literal["block", "flag", "allow"]:
        if self.block is not None and score >= self.block:
            return "block"
        if self.flag is not None and score >= self.flag:
            return "flag"
        return "allow"


@dataclass(frozen=True, slots=True)
class Thresholds:
    prompt: Mapping[str, Threshold]
    answer: Mapping[str, Threshold]

    def of(self, direction: Direction) -> Mapping[str, Threshold]:
        return self.prompt if direction == "prompt" else self.answer


def _limit(value: Any, where: str) -> float | None:
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {value!r} is not a number or null") from None
    if not 0.0 <= f <= 1.0:
        raise ConfigError(f"{where}: {f} is outside [0, 1]")
    return f


def parse_thresholds(raw: Any, source: str, categories: tuple[str, ...]) -> Thresholds:
    table = (raw or {}).get("safety")
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: a top-level 'safety' mapping is required")
    unknown = set(table) - set(categories)
    if unknown:
        raise ConfigError(f"{source}: unknown safety categories {sorted(unknown)}")
    prompt: dict[str, Threshold] = {}
    answer: dict[str, Threshold] = {}
    for cat in categories:
        entry = table.get(cat) or {}
        where = f"{source}: safety.{cat}"
        prompt[cat] = Threshold(_limit(entry.get("block"), where), _limit(entry.get("flag"), where))
        over = entry.get("answer")
        if isinstance(over, dict):
            answer[cat] = Threshold(
                _limit(over.get("block", entry.get("block")), where + ".answer"),
                _limit(over.get("flag", entry.get("flag")), where + ".answer"),
            )
        else:
            answer[cat] = prompt[cat]
    return Thresholds(prompt, answer)


class ThresholdStore:
    """The current thresholds, re-read at most every ``interval_s`` when the file changed.

    A broken edit keeps the last good thresholds (and says so once); the start-up load
    fails loudly instead, so a bad file never goes unnoticed.
    """

    def __init__(self, path: Path, categories: tuple[str, ...], interval_s: float = 1.0) -> None:
        self._path = path
        self._categories = categories
        self._interval = interval_s
        self._lock = threading.Lock()
        self._mtime = self._stat()
        self._current = self._load()
        self._checked = time.monotonic()
        self._last_error = ""

    def _stat(self) -> float:
        try:
            return self._path.stat().st_mtime
        except FileNotFoundError:
            raise ConfigError(f"safety thresholds not found: {self._path}") from None

    def _load(self) -> Thresholds:
        try:
            raw = yaml.safe_load(self._path.read_text("utf-8"))
        except yaml.YAMLError as e:
            raise ConfigError(f"{self._path} is not valid YAML: {e}") from None
        return parse_thresholds(raw, str(self._path), self._categories)

    @property
    def path(self) -> Path:
        return self._path

    def current(self) -> Thresholds:
        now = time.monotonic()
        if now - self._checked < self._interval:
            return self._current
        with self._lock:
            self._checked = now
            try:
                mtime = self._stat()
                if mtime != self._mtime:
                    self._mtime = mtime
                    self._current = self._load()
                    log.info("safety thresholds reloaded from %s", self._path)
            except ConfigError as e:
                # Keep the last good thresholds (the file may be mid-edit); say so once.
                if str(e) != self._last_error:
                    self._last_error = str(e)
                    log.warning("safety thresholds not reloaded, keeping the last good: %s", e)
        return self._current
