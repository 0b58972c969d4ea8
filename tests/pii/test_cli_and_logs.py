"""`appliance pii analyze` as a subprocess; raw values never reach logs or the data dir."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("language", "text", "entity"),
    [
        ("en", "Call John Smith at john.smith@example.com", "EMAIL_ADDRESS"),
        ("de", "Herr Dr. Müller wohnt in der Hauptstraße 12.", "ADDRESS"),
    ],
)
def test_analyze_json(tmp_path: Path, language: str, text: str, entity: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "appliance", "pii", "analyze", "--language", language, "--json",
         "--data-dir", str(tmp_path)],
        input=text, capture_output=True, text=True, cwd=ROOT, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    types = {f["type"] for f in out["findings"]}
    assert entity in types
    for f in out["findings"]:
        assert {"type", "start", "end", "score", "recognizer"} <= set(f)
        assert f["type"] not in out["redacted"] or f"<{f['type']}_" in out["redacted"]
    assert "john.smith@example.com" not in out["redacted"] and "Müller" not in out["redacted"]
    # nothing written under the data directory, and nothing sensitive on stderr
    assert not any(tmp_path.rglob("*"))
    assert "Smith" not in proc.stderr and "Müller" not in proc.stderr


def test_analyze_text_output() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "appliance", "pii", "analyze"],
        input="Meine IBAN ist DE89 3704 0044 0532 0130 00.", capture_output=True, text=True,
        cwd=ROOT, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "IBAN_CODE" in proc.stdout
    assert "Meine IBAN ist <IBAN_CODE_1>." in proc.stdout
