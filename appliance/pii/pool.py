"""A process pool of warm Presidio analyzers, owned by the stage that starts it.

Analysis is CPU-bound Python (spaCy, regexes), so threads would serialize on the GIL:
each worker process builds its own analyzer once (about a second) and then serves
batches. One request sends all its text pieces in one call, so the per-request cost is
one inter-process round trip, not one per message.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from appliance.errors import StageFailed
from appliance.pii.config import PiiConfig
from appliance.pii.engine import Finding, analyze_texts, build_analyzer

#: The analyzer of *this worker process* (set by the pool initializer, used by the task).
#: Lives only inside pool workers; the serving process never touches it.
_WORKER_STATE: dict[str, Any] = {}


def _init_worker(config_json: str) -> None:
    config = PiiConfig.model_validate_json(config_json)
    _WORKER_STATE["analyzer"] = build_analyzer(config)
    _WORKER_STATE["ignore"] = frozenset(config.ignore_entities)
    analyze_texts(_WORKER_STATE["analyzer"], ["warm up"], ["en"])


def _analyze(texts: Sequence[str], languages: Sequence[str]) -> list[list[Finding]]:
    return analyze_texts(_WORKER_STATE["analyzer"], texts, languages, _WORKER_STATE["ignore"])


def _ping() -> int:
    return os.getpid()


class AnalyzerPool:
    """``await start()`` once, ``await analyze(texts, languages)`` per request, ``aclose()``."""

    def __init__(self, config: PiiConfig) -> None:
        self._config = config
        self._executor: ProcessPoolExecutor | None = None

    @property
    def workers(self) -> int:
        return self._config.workers or os.cpu_count() or 1

    async def start(self) -> None:
        if self._executor is not None:
            return
        self._executor = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self._config.model_dump_json(),),
        )
        loop = asyncio.get_running_loop()
        # Start every worker now (and wait for its models) rather than on the first request.
        await asyncio.gather(
            *(loop.run_in_executor(self._executor, _ping) for _ in range(self.workers))
        )

    async def analyze(
        self, texts: Sequence[str], languages: Sequence[str]
    ) -> list[list[Finding]]:
        if not any(t.strip() for t in texts):
            return [[] for _ in texts]
        if self._executor is None:
            raise StageFailed("PII analyzer pool is not started")
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(
                loop.run_in_executor(self._executor, _analyze, list(texts), list(languages)),
                timeout=self._config.timeout_s,
            )
        except TimeoutError:
            raise StageFailed("PII analysis timed out") from None

    async def aclose(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: executor.shutdown(wait=True, cancel_futures=True)
            )
