"""Policy fixtures: the shipped policy directory, copied per test when a test edits it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from appliance.config.policy import PolicyConfig

SHIPPED = Path(__file__).resolve().parents[2] / "policies"


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    """A private copy of the shipped policies (tests may edit it)."""
    dst = tmp_path / "policies"
    shutil.copytree(SHIPPED, dst)
    return dst


@pytest.fixture
def policy_config(policy_dir: Path) -> PolicyConfig:
    return PolicyConfig(dir=policy_dir, reload_interval_s=0.05)
