"""``appliance doctor --check mcp``: every declared MCP server must answer ``initialize``."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from appliance.testing.fakes.mcp_server import FakeMcpServer
from appliance.testing.harness import to_toml


def _doctor(tmp_path: Path, servers: dict[str, dict[str, str]]) -> dict[str, str]:
    cfg = tmp_path / "appliance.toml"
    cfg.write_text(to_toml({"mcp": {"servers": servers}}))
    done = subprocess.run(
        [sys.executable, "-m", "appliance", "doctor", "--config", str(cfg), "--data-dir",
         str(tmp_path / "data"), "--check", "mcp", "--json"],
        capture_output=True, text=True, timeout=120,
    )
    checks = {c["check"]: c for c in json.loads(done.stdout)["checks"]}
    return {"status": checks["mcp"]["status"], "message": checks["mcp"]["message"],
            "rc": str(done.returncode)}


def test_answering_servers_are_ok(tmp_path: Path) -> None:
    with FakeMcpServer("crm").running() as crm:
        found = _doctor(tmp_path, {"crm": {"url": crm.url}})
    assert found["status"] == "ok" and found["rc"] == "0", found
    assert "crm (crm, 4 tools)" in found["message"]


def test_a_server_that_does_not_answer_fails(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    found = _doctor(tmp_path, {"gone": {"url": f"http://127.0.0.1:{port}/mcp"}})
    assert found["status"] == "fail" and found["rc"] == "1", found
    assert "gone" in found["message"]
