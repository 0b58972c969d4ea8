"""The request path type-checks strictly: a rename that breaks a joint fails here, not in
production. mypy follows the imports of these packages into the rest of the appliance."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STRICT = ["appliance/core", "appliance/pipeline", "appliance/server", "appliance/audit",
          "appliance/policy"]


@pytest.mark.timeout(900)
def test_mypy_strict_on_the_request_path(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"),
         *STRICT],
        cwd=ROOT, capture_output=True, text=True, timeout=880,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
