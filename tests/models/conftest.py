"""Models are built once per test run and shared by pytest-xdist workers (file lock)."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.testing.models import TestModels, ensure_test_models


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The parent of the per-worker base temp is shared by every xdist worker of this run.
    root = tmp_path_factory.getbasetemp()
    shared = root.parent if root.name.startswith("popen-gw") else root
    return shared / "appliance-models"


@pytest.fixture(scope="session")
def test_models(model_cache: Path) -> TestModels:
    return ensure_test_models(model_cache)
