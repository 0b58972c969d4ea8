"""Every model a configuration needs, built before the server starts: the first-start plan.

``serve`` runs :func:`prepare` before it listens; ``appliance models prepare`` runs the
same plan ahead of time (a container image build, or an operator who wants a fast and
predictable first start), after which ``serve`` finds everything and builds nothing. Both
agree on where each model lives because each step is the one the loading code would run.
The plan spans the local models, the risk classifier's encoders and the German tagger,
so it lives above all three packages (:mod:`appliance.models.prepare` runs it).
"""

from __future__ import annotations

from pathlib import Path

from appliance.config import Config
from appliance.models.prepare import Step, builtin_step, local_model_steps, run_plan
from appliance.progress import BuildProgress


def steps(config: Config) -> list[Step]:
    """The models ``config`` needs, each once (two users of one directory share a step)."""
    out: list[Step] = []
    seen: set[Path] = set()

    def add(step: Step) -> None:
        if step.target not in seen:
            seen.add(step.target)
            out.append(step)

    for step in local_model_steps(config):
        add(step)
    if config.risk.embeddings:
        from appliance.models.builtin import EMBED_MODEL
        from appliance.risk.engine import models_dir

        add(builtin_step(EMBED_MODEL, models_dir(config), "risk classification and safety screening"))
        if config.risk.multilingual:
            from appliance.risk import multilingual

            add(multilingual.build_step(models_dir(config)))
    if config.pipeline.redact and config.pii.enabled and "de" in config.pii.languages:
        from appliance.pii.de import build

        add(build.build_step())
    return out



def prepare(config: Config, progress: BuildProgress) -> list[Step]:
    """Build every missing model of ``config`` concurrently; return the steps that built."""
    return run_plan(steps(config), progress)
