"""N replicas of the appliance as real processes, sharing engines: for the fleet tests
and ``benchmarks/fleet_overhead.py``.

Each replica has its own data directory and config file (its ``[fleet] replica`` name),
and the same environment (DSN, audit keys, admin key). Replicas start concurrently;
:meth:`Fleet.kill` and :meth:`Fleet.start` stop and restart one on the same data dir.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.testing.harness import merge, to_toml

_LISTENING = re.compile(r"listening on (https?://[^\s]+):(\d+)")


@dataclass
class Replica:
    name: str
    data_dir: Path
    config_path: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace") if self.log_path else ""

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class Fleet:
    root: Path
    config: Mapping[str, Any]
    env: Mapping[str, str]
    replicas: list[Replica] = field(default_factory=list)

    @classmethod
    def create(cls, root: Path, config: Mapping[str, Any], env: Mapping[str, str], n: int) -> Fleet:
        fleet = cls(root, config, env)
        for i in range(1, n + 1):
            name = f"replica{i}"
            data_dir = root / name
            data_dir.mkdir(parents=True, exist_ok=True)
            path = root / f"{name}.toml"
            path.write_text(to_toml(merge(config, {"fleet": {"replica": name}})), "utf-8")
            fleet.replicas.append(Replica(name, data_dir, path))
        return fleet

    @property
    def environ(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def cli(self, *args: str, replica: int = 0, timeout_s: float = 180) -> subprocess.CompletedProcess[str]:
        """``python -m appliance ARGS --config <replica's config>``, as an operator runs it."""
        r = self.replicas[replica]
        return subprocess.run(
            [sys.executable, "-m", "appliance", *args, "--config", str(r.config_path),
             "--data-dir", str(r.data_dir)],
            capture_output=True, text=True, env=self.environ, timeout=timeout_s,
        )

    def launch(self, i: int) -> None:
        r = self.replicas[i]
        r.log_path = r.data_dir / f"server-{time.monotonic_ns()}.log"
        with open(r.log_path, "wb") as log:
            r.process = subprocess.Popen(
                [sys.executable, "-m", "appliance", "serve", "--config", str(r.config_path),
                 "--data-dir", str(r.data_dir), "--port", str(r.port)],
                stdout=log, stderr=subprocess.STDOUT, env=self.environ,
            )

    def wait_listening(self, i: int, timeout_s: float = 480) -> None:
        r = self.replicas[i]
        assert r.process is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            m = _LISTENING.search(r.log())
            if m:
                r.port = int(m.group(2))
                return
            if r.process.poll() is not None:
                raise RuntimeError(f"{r.name} exited with {r.process.returncode}:\n{r.log()}")
            time.sleep(0.05)
        raise TimeoutError(f"{r.name} did not start in {timeout_s:.0f} s:\n{r.log()}")

    def start(self, *which: int) -> None:
        """Start the given replicas (all by default) side by side; return once all listen."""
        indexes = which or tuple(range(len(self.replicas)))
        for i in indexes:
            self.launch(i)
        for i in indexes:
            self.wait_listening(i)

    def signal(self, i: int, sig: int) -> None:
        r = self.replicas[i]
        if r.running:
            assert r.process is not None
            r.process.send_signal(sig)

    def wait(self, i: int, timeout_s: float = 60) -> int:
        r = self.replicas[i]
        assert r.process is not None
        return r.process.wait(timeout_s)

    def stop(self) -> None:
        for i in range(len(self.replicas)):
            self.signal(i, signal.SIGTERM)
        for r in self.replicas:
            if r.process is not None:
                try:
                    r.process.wait(60)
                except subprocess.TimeoutExpired:
                    r.process.kill()
                    r.process.wait(10)
