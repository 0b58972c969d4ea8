"""A pytest plugin: no secret or PII value the tests plant appears in any log line.

Every log record of the test process is checked as it is emitted, at every level (the
root logger is opened to DEBUG for the session), and the test that emitted a canary
fails at teardown. Servers and CLIs started as subprocesses write their logs to files
under the session's temporary directory (``serve_subprocess`` puts them in the data
directory, at DEBUG through ``APPLIANCE_LOG_LEVEL``); those are read at the end of the
session, and a canary there fails it.

The canaries are the values the tests plant: upstream and admin secrets, the secret part
of every API key created in this process (``ControlPlane.create_key`` is wrapped), and
the PII values the prompts carry. A leak is reported masked: the report must not become
the leak.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SECRETS = (
    "sk-upstream-test", "sk-e2e-upstream", "sk-crlf-upstream", "sk-agents-upstream",
    "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd", "sk-proj-abcdefghijklmnopqrstuvwxyz123456",
    "sk-secret-value", "admin-e2e", "admin-secret-for-tests", "admin-matrix-secret",
    "admin-crlf-secret",
)
PII = (
    "john.smith@example.com", "anna.weber@example.org", "mary.jones@example.org",
    "jane.roe@example.com", "jane.doe@example.com", "carl.iso@example.org",
    "anna.schmidt@example.com", "anna.schmidt.iso@example.com", "sarah.lee@example.com",
    "wilhelmina.oosterhuizen@example.org", "maria.garcia@example.com",
    "DE89 3704 0044 0532 0130 00", "DE89370400440532013000", "Maria Schneider",
    "+49 30 12345678",
)


#: Loggers of the test's own clients (the SDKs a test calls the appliance with): they log
#: what the caller sends, which the caller has anyway; the appliance uses none of them.
CLIENT_LOGGERS = ("mcp.client.", "openai.", "anthropic.", "httpx", "httpcore", "google_genai.",
                  "urllib3.", "schemathesis", "hypothesis")


def masked(value: str) -> str:
    return f"{value[:4]}…({len(value)} chars)"


class Canaries:
    """The planted values, and the leaks seen so far."""

    def __init__(self) -> None:
        self.values: set[str] = set(SECRETS) | set(PII)
        self.leaks: list[str] = []
        self._lock = threading.Lock()

    def add(self, value: str) -> None:
        with self._lock:
            self.values.add(value)

    def found_in(self, text: str) -> list[str]:
        with self._lock:
            values = list(self.values)
        return [v for v in values if v in text]


class CanaryHandler(logging.Handler):
    """Checks every record, at every level, as it is emitted."""

    def __init__(self, canaries: Canaries) -> None:
        super().__init__(logging.DEBUG)
        self.canaries = canaries
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if f"{record.name}.".startswith(CLIENT_LOGGERS):
            return
        try:
            line = self.format(record)
        except Exception:  # noqa: BLE001 - a record that cannot format is not ours to judge
            return
        for value in self.canaries.found_in(line):
            self.canaries.leaks.append(
                f"{record.levelname} {record.name}: {masked(value)} in a log record")


CANARIES = pytest.StashKey[Canaries]()


def pytest_configure(config: pytest.Config) -> None:
    canaries = Canaries()
    config.stash[CANARIES] = canaries
    handler = CanaryHandler(canaries)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    # Servers the tests start as processes log at DEBUG too (read back at the end).
    os.environ.setdefault("APPLIANCE_LOG_LEVEL", "DEBUG")
    _record_created_keys(canaries)


def _record_created_keys(canaries: Canaries) -> None:
    """Every API key created in this process becomes a canary (its secret part)."""
    from appliance.keys.store import ControlPlane, split_key

    if getattr(ControlPlane.create_key, "_canary", False):
        return
    create = ControlPlane.create_key

    def create_key(self: ControlPlane, **kw: Any) -> Any:
        key, record = create(self, **kw)
        parts = split_key(key)
        if parts is not None:
            canaries.add(parts[1])
        return key, record

    create_key._canary = True  # type: ignore[attr-defined]
    ControlPlane.create_key = create_key  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _no_canary_in_this_tests_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    canaries = request.config.stash[CANARIES]
    before = len(canaries.leaks)
    yield
    leaks = canaries.leaks[before:]
    if leaks:
        pytest.fail("a planted secret or PII value reached a log line:\n" + "\n".join(leaks),
                    pytrace=False)


def scan_log_files(root: Path, canaries: Canaries) -> list[str]:
    """Leaks in the ``*.log`` files under ``root`` (subprocess servers and CLIs)."""
    leaks = []
    for path in sorted(root.rglob("*.log")):
        if not path.is_file():
            continue
        text = path.read_text("utf-8", "replace")
        for value in canaries.found_in(text):
            leaks.append(f"{path.relative_to(root)}: {masked(value)}")
    return leaks


@pytest.fixture(scope="session", autouse=True)
def _no_canary_in_subprocess_logs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    yield
    leaks = scan_log_files(tmp_path_factory.getbasetemp(), request.config.stash[CANARIES])
    if leaks:
        pytest.fail("a planted secret or PII value reached a subprocess's log:\n"
                    + "\n".join(leaks), pytrace=False)
