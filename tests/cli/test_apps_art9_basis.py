"""`appliance apps register --art9-basis`: stored per application, shown, kept, cleared;
a control plane created before the column gets it on open."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from appliance.keys.store import ControlPlane, control_plane_path

ROOT = Path(__file__).resolve().parents[2]


def _apps(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "appliance.toml"
    config.write_text("[risk]\nembeddings = false\n")  # the rules read the purpose; no model
    return subprocess.run(
        [sys.executable, "-m", "appliance", "apps", *args, "--config", str(config),
         "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, cwd=ROOT, timeout=300, check=False,
    )


def _register(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return _apps(tmp_path, "register", "--tenant", "acme", "--name", "care-bot", "--purpose",
                 "Answer questions of nursing staff about care plans", "--json", *extra)


def test_register_keep_and_clear_the_basis(tmp_path: Path) -> None:
    first = _register(tmp_path, "--art9-basis", "HEALTH=health_care",
                      "--art9-basis", "*=explicit_consent")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["art9_basis"] == {"*": "explicit_consent",
                                                       "HEALTH": "health_care"}
    again = _register(tmp_path)  # re-registered without the flag: the bases stay
    assert json.loads(again.stdout)["art9_basis"] == {"*": "explicit_consent",
                                                       "HEALTH": "health_care"}
    listed = _apps(tmp_path, "list", "--tenant", "acme")
    assert "HEALTH=health_care" in listed.stdout
    cleared = _register(tmp_path, "--art9-basis", "none")
    assert json.loads(cleared.stdout)["art9_basis"] == {}


def test_a_wrong_basis_is_refused_with_the_choices(tmp_path: Path) -> None:
    bad = _register(tmp_path, "--art9-basis", "HEALTH=legitimate_interest")
    assert bad.returncode == 2
    assert "health_care" in bad.stderr and "Traceback" not in bad.stderr
    worse = _register(tmp_path, "--art9-basis", "WEALTH=health_care")
    assert worse.returncode == 2 and "SEX_LIFE" in worse.stderr


def test_an_older_control_plane_gets_the_column(tmp_path: Path) -> None:
    path = control_plane_path(tmp_path)
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE applications (tenant TEXT NOT NULL, name TEXT NOT NULL,"
        " purpose TEXT NOT NULL, annex_iii TEXT, risk_class TEXT NOT NULL,"
        " areas TEXT NOT NULL DEFAULT '[]', created_at REAL NOT NULL,"
        " PRIMARY KEY (tenant, name));"
        "INSERT INTO applications VALUES ('acme', 'old-app', 'p', NULL, 'minimal', '[]', 0);"
    )
    old.commit()
    old.close()
    control = ControlPlane.open(path)
    try:
        assert control.get_app("acme", "old-app")["art9_basis"] == {}  # type: ignore[index]
        app = control.register_app("acme", "old-app", "p", None, "minimal",
                                   art9_basis={"RELIGION": "not_for_profit"})
        assert app["art9_basis"] == {"RELIGION": "not_for_profit"}
    finally:
        control.close()
