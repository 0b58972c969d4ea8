"""The safety screen shared by the answer stage and /v1/moderations.

Owns the classifier, the thresholds and a small worker pool, so that screening never
runs on the event loop. Both the ``safety_output`` stage and the moderation endpoint
hold one.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from appliance.config import Config
from appliance.risk.classifier import RiskClassifier, SafetyResult
from appliance.risk.engine import build_classifier, threshold_store
from appliance.risk.lexicon import Direction, ThresholdStore


@dataclass(frozen=True, slots=True)
class Screened:
    scores: dict[str, float]
    flags: tuple[str, ...]
    blocked: tuple[str, ...]


class SafetyScreen:
    def __init__(self, config: Config) -> None:
        self._config = config
        self._pool: ThreadPoolExecutor | None = None
        self._classifier: RiskClassifier | None = None
        self._thresholds: ThresholdStore | None = None

    async def start(self, classifier: RiskClassifier | None = None) -> None:
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="safety")
        if classifier is None:
            loop = asyncio.get_running_loop()
            classifier = await loop.run_in_executor(self._pool, build_classifier, self._config)
        self._classifier = classifier
        self._thresholds = threshold_store(self._config, classifier)

    async def aclose(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    @property
    def classifier(self) -> RiskClassifier:
        if self._classifier is None:
            raise RuntimeError("SafetyScreen.start() has not run")
        return self._classifier

    def judge(self, result: SafetyResult, direction: Direction) -> Screened:
        assert self._thresholds is not None
        table = self._thresholds.current().of(direction)
        actions = {c: table[c].action(s) for c, s in result.scores.items() if c in table}
        return Screened(
            scores=result.rounded(),
            flags=tuple(sorted(c for c, a in actions.items() if a != "allow")),
            blocked=tuple(sorted(c for c, a in actions.items() if a == "block")),
        )

    async def screen(self, text: str, direction: Direction) -> Screened:
        if self._pool is None:
            raise RuntimeError("SafetyScreen.start() has not run")
        if not text.strip():
            return self.judge(
                SafetyResult({c.id: 0.0 for c in self.classifier.categories}), direction
            )
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._pool, self.classifier.screen, text)
        return self.judge(result, direction)
