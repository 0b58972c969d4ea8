"""Child processes run the parent's own package, wherever the parent was started from.

A server installed with ``pip install .`` and started from a checkout that has moved on
would otherwise start its PII workers (``python -m appliance.pii.worker``) on the
checkout's code. Here the working directory holds a decoy ``appliance`` package that
fails on import: the workers must not see it.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

import appliance
from appliance.children import child_env, module_command
from appliance.config import load_config
from appliance.pii.pool import AnalyzerPool


@pytest.fixture()
def decoy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    package = tmp_path / "appliance"
    (package / "pii").mkdir(parents=True)
    (package / "__init__.py").write_text('raise ImportError("the decoy package was imported")\n')
    (package / "pii" / "__init__.py").write_text("")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_child_imports_the_parents_package(decoy: Path) -> None:
    interpreter = module_command("appliance.children")[:2]  # the interpreter and its flags
    probe = subprocess.run(
        [*interpreter, "-c", "import appliance, pathlib; print(pathlib.Path(appliance.__file__).resolve())"],
        env=child_env(), capture_output=True, text=True, check=True, cwd=decoy)
    assert probe.stdout.strip() == str(Path(appliance.__file__).resolve())
    # Without the guard the decoy wins: the test sees what it guards against.
    plain = subprocess.run([sys.executable, "-c", "import appliance"], capture_output=True,
                           text=True, cwd=decoy)
    assert "decoy" in plain.stderr


def test_pii_workers_start_from_a_directory_with_another_package(decoy: Path) -> None:
    async def analyse() -> list[str]:
        pool = AnalyzerPool(load_config(overrides={"pii": {"workers": 1}}).pii)
        await pool.start()
        try:
            found = await pool.analyze(["Write to jane.doe@example.com"], ["en"])
        finally:
            await pool.aclose()
        return [f.entity_type for f in found[0]]

    assert "EMAIL_ADDRESS" in asyncio.run(analyse())
