"""The real embedding model is exported once per run and shared by xdist workers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from appliance.config import Config, load_config
from appliance.risk.classifier import RiskClassifier
from appliance.risk.engine import build_classifier

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def shared_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from appliance.models.builtin import ensure_embedding_model

    root = tmp_path_factory.getbasetemp()
    shared = (root.parent if root.name.startswith("popen-gw") else root) / "appliance-risk"
    ensure_embedding_model(shared)
    return shared


def make_config(data_dir: Path, **risk: Any) -> Config:
    return load_config(
        None,
        data_dir=data_dir,
        overrides={"policy": {"dir": str(ROOT / "policies")}, "risk": risk},
    )


@pytest.fixture(scope="session")
def classifier(shared_data: Path) -> RiskClassifier:
    return build_classifier(make_config(shared_data))


@pytest.fixture
def data_dir(tmp_path: Path, shared_data: Path) -> Path:
    """A private data directory that sees the shared, already exported model."""
    d = tmp_path / "data"
    d.mkdir()
    (d / "models").symlink_to(shared_data / "models", target_is_directory=True)
    return d
