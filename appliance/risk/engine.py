"""Builds the classifier and the threshold store from the config (at start, never at import)."""

from __future__ import annotations

import json
import logging
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from appliance.config import Config
from appliance.risk.classifier import (
    MINILM_FEATURES,
    MULTILINGUAL_FEATURES,
    AreaModel,
    Calibration,
    Embedder,
    MinimalGate,
    RiskClassifier,
)
from appliance.risk.glossary import load_glossary
from appliance.risk.lexicon import ThresholdStore, load_lexicon
from appliance.risk.taxonomy import load_taxonomy

log = logging.getLogger(__name__)


def calibration_of(config: Config) -> Calibration:
    r = config.risk
    return Calibration(
        area_floor=r.area_floor,
        area_ceiling=r.area_ceiling,
        area_floor_de=r.area_floor_de,
        area_ceiling_de=r.area_ceiling_de,
        safety_floor=r.safety_floor,
        safety_ceiling=r.safety_ceiling,
        safety_floor_multilingual=r.safety_floor_multilingual,
        safety_ceiling_multilingual=r.safety_ceiling_multilingual,
        tag_threshold=r.tag_threshold,
        gloss_min_coverage=r.gloss_min_coverage,
    )


def models_dir(config: Config) -> Path:
    """Where the built-in models live: the local provider's directory, else the default."""
    from appliance.config import LocalProviderConfig
    from appliance.models.builtin import MODELS_SUBDIR

    local = next(
        (p for p in config.providers.values() if isinstance(p, LocalProviderConfig)), None
    )
    if local is not None:
        return config.resolve(local.models_dir)
    return Path(config.storage.data_dir) / MODELS_SUBDIR


def load_embedder(config: Config) -> Embedder:
    """The int8 all-MiniLM-L6-v2 on ONNX Runtime, from the directory the local provider
    serves as ``local-embed`` (built once, offline): its screening copy when present."""
    from appliance.models.builtin import EMBED_MODEL, ensure_builtin
    from appliance.models.quantize import SCREENING_ONNX
    from appliance.providers.local.embedding import OnnxEmbedder

    model_dir = ensure_builtin(EMBED_MODEL, models_dir(config))
    screening = (model_dir / SCREENING_ONNX).is_file()
    if not screening:
        log.info("risk: %s has no %s (built by an older version): screening with the "
                 "served model", model_dir, SCREENING_ONNX)
    return OnnxEmbedder(
        model_dir,
        config.risk.execution_providers,
        batch_size=64,
        intra_op_threads=config.risk.intra_op_threads or None,
        onnx_file=SCREENING_ONNX if screening else None,
    )


def load_multilingual(config: Config) -> Embedder:
    """USE-multilingual v3 on ONNX Runtime, exported once beside all-MiniLM."""
    from appliance.risk.multilingual import UseEmbedder, ensure_use_model

    return UseEmbedder(
        ensure_use_model(models_dir(config)),
        config.risk.execution_providers,
        intra_op_threads=config.risk.intra_op_threads or None,
    )


def build_classifier(config: Config, *, embedder: Embedder | None = None) -> RiskClassifier:
    """The classifier the config describes; ``embedder`` lets callers share one model."""
    r = config.risk
    if embedder is None and r.embeddings:
        embedder = load_embedder(config)
    area_model = load_area_model(r.area_model_path) if r.area_model and r.embeddings else None
    multilingual = None
    if r.embeddings and r.multilingual:
        multilingual = load_multilingual(config)
    elif area_model is not None and MULTILINGUAL_FEATURES in area_model.features:
        log.warning("risk.multilingual is off: the trained area model needs it and is not used")
    return RiskClassifier(
        load_taxonomy(r.taxonomy, r.application_dates),
        load_lexicon(r.safety_lexicon),
        embedder if r.embeddings else None,
        calibration_of(config),
        glossary=load_glossary(r.glossary) if r.glossary_enabled else None,
        area_model=area_model,
        multilingual=multilingual,
        gate=load_minimal_gate(r.minimal_gate_path) if r.minimal_gate and multilingual else None,
    )


def load_area_model(path: Path | None = None) -> AreaModel | None:
    """The trained area model, or None when none has been trained (rules + similarity)."""
    raw = _trained("area_model.json", path)
    if raw is None:
        return None
    return AreaModel(
        labels=tuple(raw["labels"]),
        weights=np.asarray(raw["weights"], dtype=np.float32),
        bias=np.asarray(raw["bias"], dtype=np.float32),
        features=tuple(raw.get("features") or (MINILM_FEATURES,)),
    )


def load_minimal_gate(path: Path | None = None) -> MinimalGate | None:
    """The trained minimal gate, or None when none has been trained."""
    raw = _trained("minimal_gate.json", path)
    if raw is None:
        return None
    return MinimalGate(
        weights=np.asarray(raw["weights"], dtype=np.float32),
        bias=float(raw["bias"]),
        threshold=float(raw["threshold"]),
    )


def _trained(name: str, path: Path | None) -> dict[str, Any] | None:
    """A trained model's JSON: from ``path``, else the packaged ``data/name`` (None when
    it has not been trained)."""
    if path is not None:
        return dict(json.loads(Path(path).read_text("utf-8")))
    ref = resources.files("appliance.risk").joinpath("data", name)
    return dict(json.loads(ref.read_text("utf-8"))) if ref.is_file() else None


def thresholds_path(config: Config) -> Path:
    """The configured file, else the policy directory's, else the packaged default."""
    if config.risk.safety_thresholds is not None:
        return config.risk.safety_thresholds
    in_policies = config.policy.directory / "data" / "safety.yaml"
    if in_policies.is_file():
        return in_policies
    packaged = Path(str(resources.files("appliance.risk").joinpath("data", "safety.yaml")))
    log.warning("no %s: using the packaged safety thresholds", in_policies)
    return packaged


def threshold_store(config: Config, classifier: RiskClassifier) -> ThresholdStore:
    return ThresholdStore(
        thresholds_path(config),
        tuple(c.id for c in classifier.categories),
        config.risk.thresholds_reload_s,
    )
