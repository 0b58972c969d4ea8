"""Prometheus metrics of the appliance, served at ``GET /metrics`` (``server/metrics.py``).

Each app owns its registry (no process-wide default registry), so several apps in one
process (tests) never mix counts. Labels carry only bounded, non-secret values: route,
configured model names, tenant, HTTP status, entity types, rule ids, risk classes.
Never a user id, a key, a prompt or a requested model name the config does not know.

With ``server.workers > 1`` the kernel hands each connection to any worker, so one
worker's counts alone would be a random slice. ``appliance serve`` then switches
prometheus_client to its multiprocess mode before forking (:func:`enable_multiprocess`):
every worker writes its values to memory-mapped files in a per-run directory under the
data dir, and whichever worker answers ``GET /metrics`` sums all of them. One process
(``workers = 1``, tests) keeps plain in-memory values and its own registry per app.

A request's counts are first added up in plain dicts and handed to prometheus_client
(:meth:`Metrics.publish`) at each scrape and, with several workers, every second:
prometheus_client validates, takes a lock, and in multiprocess mode writes a memory-mapped
file, for each of the dozen values a request changes (a few percent of a bare pass-through
request's instructions).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import shutil
from bisect import bisect_left
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import values as prometheus_values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from appliance.core.context import Context
from appliance.core.decision import decision_of
from appliance.core.findings import PiiFindings, PolicyFindings, RiskFindings

log = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)


#: prometheus_client's switch for its multiprocess mode; forked workers inherit it.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Below the data dir: one ``run-<supervisor pid>`` directory per ``appliance serve``.
METRICS_SUBDIR = "metrics"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def enable_multiprocess(data_dir: Path) -> Path:
    """Prepare a clean per-run directory and switch this process (and its forks) to it.

    Call in the supervisor before forking workers. Directories left by runs whose
    supervisor is gone are removed, and so is a leftover of our own pid (a container's
    pid 1 restarting): stale files would otherwise be summed into the new run's counts.
    """
    root = (data_dir / METRICS_SUBDIR).resolve()
    root.mkdir(parents=True, exist_ok=True)
    for old in root.glob("run-*"):
        pid = old.name.removeprefix("run-")
        if not pid.isdigit() or int(pid) == os.getpid() or not _pid_alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    run_dir = root / f"run-{os.getpid()}"
    run_dir.mkdir()
    os.environ[MULTIPROC_ENV] = str(run_dir)
    # prometheus_client picks its value class from the environment at import time, which
    # may already have happened: set it explicitly so that every metric made from now on
    # (in the forked workers) lives in the run directory.
    prometheus_values.ValueClass = prometheus_values.MultiProcessValue()  # type: ignore[no-untyped-call]
    return run_dir


def worker_exited(run_dir: Path, pid: int) -> None:
    """Drop a dead worker from the live gauges; its counters stay in the sums."""
    mark_process_dead(pid, str(run_dir))  # type: ignore[no-untyped-call]


def disable_multiprocess(run_dir: Path) -> None:
    """Remove the run directory once every worker has exited (the supervisor's last step)."""
    if os.environ.get(MULTIPROC_ENV) == str(run_dir):
        del os.environ[MULTIPROC_ENV]
    prometheus_values.ValueClass = prometheus_values.MutexValue
    # Release the mmap files this process opened (the function is missing in older releases).
    close_files = getattr(prometheus_values, "close_all_multiprocess_files", None)
    if close_files is not None:
        close_files()
    shutil.rmtree(run_dir, ignore_errors=True)


def multiprocess_dir() -> Path | None:
    """The run directory when this process writes multiprocess values, else None."""
    path = os.environ.get(MULTIPROC_ENV)
    multiprocess = getattr(prometheus_values.ValueClass, "_multiprocess", False)
    return Path(path) if path and multiprocess and os.path.isdir(path) else None


class Metrics:
    """The appliance's metrics; in multiprocess mode, one instance per worker process
    (two in one process would overwrite each other's values in the shared files).
    An observer of the pipeline: ``observe`` counts each request after its record."""

    name = "metrics"

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        #: Labelled children by (metric, label values); as many as prometheus_client keeps.
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        #: Not yet published: counter increments, and per histogram child its sum and
        #: per-bucket counts, by (metric, label values).
        self._counted: dict[tuple[Any, tuple[str, ...]], float] = {}
        self._timed: dict[tuple[Any, tuple[str, ...]], list[float]] = {}
        run_dir = multiprocess_dir()
        self.multiprocess = run_dir is not None
        if run_dir is None:
            self._exposed = r
        else:
            self._exposed = CollectorRegistry()
            MultiProcessCollector(self._exposed, str(run_dir))  # type: ignore[no-untyped-call]
        self.workers = Gauge(
            "appliance_workers", "Server processes that are up (summed over live workers)",
            registry=r, multiprocess_mode="livesum",
        )
        self.workers.set(1)
        self.requests = Counter(
            "appliance_requests", "Requests by route, model, HTTP status and decision",
            ("route", "model", "status", "decision"), registry=r,
        )
        self.tokens = Counter(
            "appliance_tokens", "Tokens by tenant, model and type (prompt|completion)",
            ("tenant", "model", "type"), registry=r,
        )
        self.cost = Counter(
            "appliance_cost_usd", "Cost in USD by tenant and model", ("tenant", "model"), registry=r
        )
        self.latency = Histogram(
            "appliance_request_duration_seconds", "Time from request to recorded response",
            ("route",), buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.stage_latency = Histogram(
            "appliance_stage_duration_seconds", "Time spent in each request stage",
            ("stage",), buckets=_STAGE_BUCKETS, registry=r,
        )
        #: Each histogram's bucket bounds as prometheus_client keeps them (+Inf last).
        self._bounds: dict[Any, tuple[float, ...]] = {
            self.latency: (*_LATENCY_BUCKETS, math.inf),
            self.stage_latency: (*_STAGE_BUCKETS, math.inf),
        }
        self.pii = Counter(
            "appliance_pii_findings", "PII findings in requests by entity type",
            ("entity_type",), registry=r,
        )
        self.denials = Counter(
            "appliance_policy_denials", "Policy denials by rule (or reason)", ("reason",), registry=r
        )
        self.risk = Counter(
            "appliance_risk_class", "Requests by EU AI Act risk class", ("risk_class",), registry=r
        )
        self.registration_needed = Counter(
            "appliance_registration_needed",
            "High-risk requests served from applications not registered as high-risk"
            " (AI Act Art. 26, 49), by tenant and strongest AI Act area",
            ("tenant", "area"), registry=r,
        )
        self.upstream_errors = Counter(
            "appliance_upstream_errors", "Failed upstream calls by provider and error code",
            ("provider", "code"), registry=r,
        )
        self.rate_limited = Counter(
            "appliance_rate_limited", "Requests refused by a limit (scope kind and limit)",
            ("scope", "limit"), registry=r,
        )
        self.notifications = Counter(
            "appliance_budget_notifications", "Budget notifications sent (soft limit, exhausted)",
            ("event", "scope"), registry=r,
        )
        self.unpriced = Counter(
            "appliance_unpriced_requests", "Requests to models the price table does not know",
            ("model",), registry=r,
        )
        self.policy_loads = Gauge(
            "appliance_policy_bundle_loads", "Policy bundles verified, tested and swapped in",
            registry=r, multiprocess_mode="livemax")
        self.policy_rejections = Gauge(
            "appliance_policy_bundle_rejections",
            "Policy bundles refused (signature, compilation or tests); the old policy kept",
            registry=r, multiprocess_mode="livemax")
        self.policy_refused = Gauge(
            "appliance_policy_last_change_refused",
            "1 while the latest policy change is refused and an older revision decides",
            registry=r, multiprocess_mode="livemax")

    def policy(self, status: Mapping[str, object]) -> None:
        """The policy in force, read at scrape time: bundles loaded and refused (a fleet's
        signed bundles; the reason is on ``/readyz``), and whether the latest was refused."""
        self.policy_loads.set(_number(status.get("loads")))
        self.policy_rejections.set(_number(status.get("rejections")))
        self.policy_refused.set(1 if status.get("last_error") else 0)

    def _at(self, metric: Any, *values: str) -> Any:
        """``metric.labels(*values)``, looked up once: prometheus_client validates the
        labels and takes a lock on every call (about 2.5 µs, five or more a request)."""
        key = (id(metric), values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def _count(self, metric: Any, labels: tuple[str, ...], amount: float = 1.0) -> None:
        key = (metric, labels)
        self._counted[key] = self._counted.get(key, 0.0) + amount

    def _time(self, metric: Any, labels: tuple[str, ...], seconds: float) -> None:
        key = (metric, labels)
        tally = self._timed.get(key)
        if tally is None:
            tally = self._timed[key] = [0.0] * (1 + len(self._bounds[metric]))
        tally[0] += seconds
        # prometheus_client's bucket: the first bound at or above the value
        tally[1 + bisect_left(self._bounds[metric], seconds)] += 1

    def observe(self, ctx: Context) -> None:
        """Count one finished request from what the stages left on the context."""
        model = ctx.model or ""
        count = self._count
        count(self.requests, (ctx.route, model, str(ctx.status), decision_of(ctx)))
        if ctx.finished_at is not None:
            self._time(self.latency, (ctx.route,), max(0.0, ctx.finished_at - ctx.started_at))
        # One pass over the verdicts: each stage's time, and the latest findings of the
        # three kinds counted below (``ctx.findings`` would walk them once per kind).
        pii = policy = risk = None
        for v in ctx.verdicts:
            self._time(self.stage_latency, (v.stage,), v.duration_s)
            found = v.findings
            if found is None:
                continue
            if isinstance(found, PiiFindings):
                pii = found
            elif isinstance(found, PolicyFindings):
                policy = found
            elif isinstance(found, RiskFindings):
                risk = found
        tenant = ctx.principal.tenant if ctx.principal else ""
        if ctx.usage.prompt_tokens:
            count(self.tokens, (tenant, model, "prompt"), ctx.usage.prompt_tokens)
        if ctx.usage.completion_tokens:
            count(self.tokens, (tenant, model, "completion"), ctx.usage.completion_tokens)
        if ctx.cost_usd:
            count(self.cost, (tenant, model), ctx.cost_usd)
        for entity, n in (pii.counts.items() if pii else ()):
            if n > 0:
                count(self.pii, (entity,), n)
        if policy is not None and not policy.allow:
            for rule in policy.rules or ("unspecified",):
                count(self.denials, (rule[:80],))
        if risk is not None:
            count(self.risk, (risk.risk_class,))
        if ctx.obligations.get("registration_needed") is True:
            area = risk.areas[0].id if risk is not None and risk.areas else "unknown"
            count(self.registration_needed, (tenant, area[:40]))
        if ctx.error and (ctx.status in (502, 504) or ctx.error.startswith("upstream")):
            count(self.upstream_errors, (ctx.provider or "", ctx.error))

    def publish(self) -> None:
        """Hand what was counted since the last call to prometheus_client (and, with
        several workers, to this worker's files, where the other workers' scrapes read it)."""
        counted, self._counted = self._counted, {}
        for (metric, labels), amount in counted.items():
            self._at(metric, *labels).inc(amount)
        timed, self._timed = self._timed, {}
        for (metric, labels), tally in timed.items():
            child = self._at(metric, *labels)
            # A histogram child's own values (prometheus_client keeps one per bucket,
            # not cumulative, and adds them up when collected).
            child._sum.inc(tally[0])
            for bucket, n in zip(child._buckets, tally[1:], strict=True):
                if n:
                    bucket.inc(n)

    @contextmanager
    def publishing(self, every_s: float = 1.0) -> Iterator[None]:
        """While the worker serves (inside its event loop): with several workers, publish
        every ``every_s`` seconds, since another worker may answer the scrape; at the end,
        publish what is left. A timer, not a task: nothing to await when it stops."""
        timer: asyncio.TimerHandle | None = None
        if self.multiprocess:
            loop = asyncio.get_running_loop()

            def tick() -> None:
                nonlocal timer
                try:
                    self.publish()
                except Exception as e:  # noqa: BLE001 - metrics never stop the worker
                    log.error("publishing metrics failed: %s", type(e).__name__)
                timer = loop.call_later(every_s, tick)

            timer = loop.call_later(every_s, tick)
        try:
            yield
        finally:
            if timer is not None:
                timer.cancel()
            self.publish()

    def exposition(self) -> bytes:
        """Text format of this process's registry, or of every worker's files summed."""
        self.publish()
        return generate_latest(self._exposed)


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0
