"""A circuit breaker per provider, so a failing upstream is not hammered by every request.

``breaker_failures`` failed calls in a row (the retryable kind: 429, 5xx, timeouts,
connection errors) open a provider's circuit. While it is open, the router sends that
provider nothing: requests go to their fallback models at once, or fail at once with a 503
that says when to come back. After ``breaker_open_s`` one trial call is let through (the
circuit is half-open); its success closes the circuit, its failure opens it again. An
answer the upstream refused for the request's own sake (a 400) is a sign of life and
counts as a success.

The state lives in each server process: a fleet's replicas each learn about an upstream
on their own, which costs at most ``breaker_failures`` calls per replica.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BreakerSettings:
    #: Failures in a row that open the circuit (0: never open).
    failures: int
    #: How long an open circuit refuses calls before one trial.
    open_s: float


@dataclass
class _Circuit:
    failures: int = 0
    opened_at: float | None = None
    #: When the half-open trial call was let through (None: no trial in flight).
    trial_at: float | None = None


class Breakers:
    """The circuits of every provider of one process."""

    def __init__(
        self,
        settings: Mapping[str, BreakerSettings],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._circuits = {name: _Circuit() for name in settings}

    def refuses(self, provider: str) -> float | None:
        """None when a call to ``provider`` may go ahead now, else the seconds until its
        circuit lets a trial call through. Letting the trial through is claimed here: call
        :meth:`succeeded` or :meth:`failed` after the call."""
        circuit = self._circuits.get(provider)
        if circuit is None or circuit.opened_at is None:
            return None
        open_s = self._settings[provider].open_s
        now = self._clock()
        wait = circuit.opened_at + open_s - now
        if wait > 0:
            return wait
        # Half-open: one trial at a time; a trial that never reported (its caller was
        # cancelled) frees the way after another ``open_s``.
        if circuit.trial_at is not None and now - circuit.trial_at < open_s:
            return circuit.trial_at + open_s - now
        circuit.trial_at = now
        return None

    def succeeded(self, provider: str) -> None:
        circuit = self._circuits.get(provider)
        if circuit is None:
            return
        if circuit.opened_at is not None:
            log.warning("provider %s answers again: circuit closed", provider)
        circuit.failures, circuit.opened_at, circuit.trial_at = 0, None, None

    def failed(self, provider: str) -> None:
        circuit = self._circuits.get(provider)
        if circuit is None:
            return
        circuit.failures += 1
        threshold = self._settings[provider].failures
        if circuit.opened_at is not None or (threshold and circuit.failures >= threshold):
            if circuit.opened_at is None or circuit.trial_at is not None:
                log.warning(
                    "provider %s failed %d times in a row: circuit open for %g s",
                    provider, circuit.failures, self._settings[provider].open_s,
                )
            circuit.opened_at, circuit.trial_at = self._clock(), None

    def is_open(self, provider: str) -> bool:
        circuit = self._circuits.get(provider)
        return circuit is not None and circuit.opened_at is not None
