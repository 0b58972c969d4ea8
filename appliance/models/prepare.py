"""Building models before the server starts: a plan of steps, run side by side.

A :class:`Step` is one model: where it lives, how long it takes, how to build it (in a
child process). The built-in local models' steps are here; the risk classifier's encoder
(:mod:`appliance.risk.multilingual`) and the German tagger (:mod:`appliance.pii.de.build`)
declare their own, and :mod:`appliance.first_start` puts a configuration's plan together.

The builds are independent, so they run together, each in a child process (torch and
the exporters never enter the server): on two cores the German tagger's single-threaded
data preparation leaves a core for the local models, and its training processes take
both cores while the small builds wait at a lower priority. The step everybody waits for
(the longest) runs at normal priority; the others are niced, so they fill idle cycles
rather than stretch the critical path. Every step reports progress
(:class:`~appliance.progress.BuildProgress`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from appliance.config import Config, LocalProviderConfig
from appliance.progress import BuildProgress, Report, duration

log = logging.getLogger(__name__)

#: Priority offset of the builds off the critical path (see the module docstring).
NICE_OFF_CRITICAL_PATH = 10


@dataclass(frozen=True)
class Step:
    """One model: what it is for, where it lives, and how to build it (in a child)."""

    name: str
    purpose: str
    target: Path
    is_done: Callable[[Path], bool]
    #: Seconds the build takes alone on a 2-core machine (the first line says so).
    expected_s: float
    #: Builds ``target`` (in a child process, at the given nice level) or finds it built.
    build: Callable[[Report, int], Path]

    @property
    def ready(self) -> bool:
        return self.is_done(self.target)


def local_model_steps(config: Config) -> list[Step]:
    """A step per configured local model that a built-in recipe can build; a missing model
    without one is reported, not invented (the operator exports it)."""
    from appliance.models.builtin import BUILTIN_BUILDERS
    from appliance.models.defaults import local_models_dir
    from appliance.models.manifest import is_complete

    out = []
    for name, spec in config.models.items():
        cfg = config.providers.get(spec.provider)
        if not isinstance(cfg, LocalProviderConfig):
            continue
        upstream = config.upstream_name(name)
        models_dir = local_models_dir(config, spec.provider)
        if upstream in BUILTIN_BUILDERS and cfg.build_missing:
            out.append(builtin_step(upstream, models_dir, f"served as {name}"))
        elif not is_complete(models_dir / upstream):
            log.warning(
                "local model %s is missing under %s; export it with "
                "`appliance models export HF_ID --task %s --out %s`",
                name, models_dir, spec.task, models_dir / upstream,
            )
    return out


def builtin_step(name: str, models_dir: Path, purpose: str) -> Step:
    from appliance.models.builtin import EXPECTED_S
    from appliance.models.child import build_in_child
    from appliance.models.manifest import is_complete

    target = models_dir / name
    return Step(
        name, purpose, target, is_complete, EXPECTED_S[name],
        lambda report, nice: build_in_child(target, "appliance.models.builtin", [name], report,
                                            is_done=is_complete, nice=nice),
    )


def run_plan(plan: list[Step], progress: BuildProgress) -> list[Step]:
    """Build every missing model of ``plan`` concurrently; return the steps that built.

    A failing build raises once the others have finished (theirs are kept for the next
    start): the operator must see it now, not at the first request.
    """
    todo = [s for s in plan if not s.ready]
    for s in plan:
        if s.ready:
            log.debug("%s: ready at %s", s.name, s.target)
    if not todo:
        return []
    cores = os.cpu_count() or 1
    critical = max(todo, key=lambda s: s.expected_s)
    # Alone, the critical step takes its expected time; the others share what is left of
    # the cores meanwhile, and what does not fit comes after it.
    work = sum(s.expected_s for s in todo)
    estimate = max(critical.expected_s, work / min(cores, len(todo)))
    names = ", ".join(s.name for s in todo)
    progress.say(
        f"First start: building {len(todo)} model(s) offline, once ({names}); about "
        f"{duration(estimate)} on {cores} cores; later starts find them. "
        "(`appliance models prepare` does this ahead of time, e.g. in an image build.)"
    )
    errors: list[BaseException] = []

    def run(step: Step) -> None:
        reporter = progress.step(step.name, f"building offline ({step.purpose})", step.expected_s)
        try:
            where = step.build(reporter, 0 if step is critical else NICE_OFF_CRITICAL_PATH)
        except BaseException as e:  # noqa: BLE001 - reported, then raised by prepare()
            reporter.failed(str(e).splitlines()[0] if str(e) else type(e).__name__)
            errors.append(e)
        else:
            reporter.done(f"ready at {where}")

    threads = [threading.Thread(target=run, args=(s,), name=f"build-{s.name}", daemon=True)
               for s in todo]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    progress.say(f"all models built in {duration(time.perf_counter() - started)}")
    return todo
