"""Build every model a configuration needs, ahead of ``serve`` (``appliance models prepare``).

``serve`` builds what is missing at first start: the local chat and embedding models
before it listens, the multilingual encoder when the risk classifier loads, the German
tagger when the first PII worker starts (about three minutes on two cores). A container
image build, or an operator who wants a fast and predictable first start, runs this
instead; afterwards ``serve`` finds everything and builds nothing. Each step is the one
``serve`` would run, so both agree on where a model lives.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from appliance.config import Config


@dataclass(frozen=True)
class Step:
    """One model: what it is for, and the call that builds it (or finds it built)."""

    name: str
    purpose: str
    ensure: Callable[[], Path | None]


def steps(config: Config) -> list[Step]:
    """The models ``config`` needs, in the order ``serve`` would first use them."""
    from appliance.models.defaults import ensure_default_models

    out = [Step("local models", "models served by local providers",
                lambda: ensure_default_models(config))]
    if config.risk.embeddings:
        from appliance.models.builtin import EMBED_MODEL, ensure_builtin
        from appliance.risk.engine import models_dir

        out.append(Step(EMBED_MODEL, "risk classification and safety screening",
                        lambda: ensure_builtin(EMBED_MODEL, models_dir(config))))
        if config.risk.multilingual:
            from appliance.risk.multilingual import MODEL_NAME, ensure_use_model

            out.append(Step(MODEL_NAME, "risk classification and safety screening",
                            lambda: ensure_use_model(models_dir(config))))
    if config.pipeline.redact and "de" in config.pii.languages:
        from appliance.pii.de.build import ensure_model

        out.append(Step("de-ner", "German persons and places (PII)", ensure_model))
    return out


def prepare(config: Config, progress: Callable[[str], None]) -> None:
    """Run every step; a failing build raises (the operator must see it, not the first
    request)."""
    for step in steps(config):
        started = time.perf_counter()
        progress(f"{step.name} ({step.purpose}) ...")
        where = step.ensure()
        progress(f"{step.name}: ready{f' at {where}' if where else ''} "
                 f"({time.perf_counter() - started:.1f} s)")
