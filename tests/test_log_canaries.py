"""The log canary plugin (tests/log_canaries.py) fails a session whose logs carry a
planted value: run on a small test file of its own, in a pytest subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LEAKY = '''
import logging

from appliance.keys.store import ControlPlane


def test_logs_a_secret():
    logging.getLogger("appliance.somewhere").debug("upstream key %s", "sk-e2e-upstream")


def test_logs_a_created_keys_secret(tmp_path):
    control = ControlPlane.open(tmp_path / "keys.db")
    key, _ = control.create_key(tenant="t", user="u")
    control.close()
    logging.getLogger("appliance.auth").info("verified %s", key)


def test_a_server_log_file_with_pii(tmp_path):
    (tmp_path / "server-1.log").write_text("INFO mail to john.smith@example.com\\n")


def test_clean():
    logging.getLogger("appliance.access").info("request_id=req_1 status=200")
'''


def test_a_leak_fails_the_test_that_logged_it_and_the_report_is_masked() -> None:
    # Outside this session's temporary directory: its own scan must not see the planted log.
    with tempfile.TemporaryDirectory(prefix="canaries-") as tmp:
        work = Path(tmp)
        (work / "test_inner.py").write_text(LEAKY)
        (work / "pytest.ini").write_text("[pytest]\n")
        env = {**os.environ,
               "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "tests.log_canaries", "-p",
             "no:cacheprovider", "-q", "-rA", "--basetemp", str(work / "inner"),
             str(work / "test_inner.py")],
            cwd=work, env=env, capture_output=True, text=True, timeout=300,
        )
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert "ERROR test_inner.py::test_logs_a_secret" in out
    assert "ERROR test_inner.py::test_logs_a_created_keys_secret" in out
    assert "PASSED test_inner.py::test_clean" in out
    assert "server-1.log: john…(22 chars)" in out  # the subprocess-log scan, at the end
    # The plugin's own reports are masked (pytest still shows the captured log itself).
    reports = [line for line in out.splitlines() if "in a log record" in line]
    assert reports and not any("sk-e2e-upstream" in line for line in reports)
