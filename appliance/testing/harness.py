"""Helpers to run the appliance as a user would: in-process, or as a real subprocess.

Shipped in the package (not under tests/) so that every test suite and benchmark builds
its configuration, keys and servers the same way.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.keys.store import ControlPlane, control_plane_path

#: Every compliance stage off: the appliance as a bare pass-through proxy.
PASS_THROUGH = {
    "pipeline": {
        "redact": False,
        "classify": False,
        "decide": False,
        "limits": False,
        "screen_output": False,
        "record": False,
    }
}

UPSTREAM_KEY_ENV = "APPLIANCE_TEST_UPSTREAM_KEY"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        s = str(value).replace("\\", "\\\\").replace('"', '\\"')
        return f'"{s}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f'"{k}" = {_toml_value(v)}' for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def to_toml(data: Mapping[str, Any], prefix: str = "") -> str:
    """A small TOML writer for test configs (tables of scalars, lists, inline tables)."""
    scalars = [(k, v) for k, v in data.items() if not isinstance(v, Mapping)]
    tables = [(k, v) for k, v in data.items() if isinstance(v, Mapping)]
    lines = [f'"{k}" = {_toml_value(v)}' if "." in k else f"{k} = {_toml_value(v)}" for k, v in scalars]
    out = "\n".join(lines) + ("\n" if lines else "")
    for key, table in tables:
        name = f'{prefix}"{key}"' if "." in key or "-" in key else f"{prefix}{key}"
        body = to_toml(table, prefix=name + ".")
        if any(not isinstance(v, Mapping) for v in table.values()) or not table:
            out += f"\n[{name}]\n"
        out += body
    return out


def merge(*parts: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in parts:
        for k, v in part.items():
            if isinstance(v, Mapping) and isinstance(out.get(k), dict):
                out[k] = merge(out[k], v)
            else:
                out[k] = dict(v) if isinstance(v, Mapping) else v
    return out


def openai_upstream(name: str, base_url: str, models: Mapping[str, str] | None = None,
                    kind: str = "openai", **provider: Any) -> dict[str, Any]:
    """Config for an OpenAI-compatible upstream and the models served through it.

    The upstream key is read from ``APPLIANCE_TEST_UPSTREAM_KEY`` (set it to the fake's
    key) so that no secret is ever written into a config file.
    """
    models = models or {"gpt-4o": "gpt-4o"}
    return {
        "providers": {
            name: {
                "kind": kind,
                "base_url": base_url,
                "api_key_env": UPSTREAM_KEY_ENV,
                "max_retries": 1,
                "retry_backoff_s": 0.01,
                **provider,
            }
        },
        "models": {alias: {"provider": name, "upstream_model": up} for alias, up in models.items()},
    }


def create_key(data_dir: Path, tenant: str = "acme", user: str = "alice", **kw: Any) -> str:
    control = ControlPlane.open(control_plane_path(data_dir))
    try:
        key, _ = control.create_key(tenant=tenant, user=user, **kw)
    finally:
        control.close()
    return key


def benchmark_key(data_dir: Path, tenant: str) -> str:
    """A key of ``tenant``'s application "bench", registered with an Art. 9(2) basis for
    every special category: the generated benchmark documents mention a religion, a
    party or a diagnosis now and then, which the shipped policy keeps from an external
    provider otherwise (right, but then the request measured would not be the one
    served). Pair it with a provider in an allowed region (``region="eu"``)."""
    from appliance.risk.apps import register_application

    control = ControlPlane.open(control_plane_path(data_dir))
    try:
        register_application(control, tenant=tenant, name="bench",
                             purpose="Answers staff questions about contracts and invoices",
                             annex_iii=None, art9_basis={"*": "explicit_consent"})
        key, _ = control.create_key(tenant=tenant, user="load", application="bench")
    finally:
        control.close()
    return key


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(30)


_LISTENING = re.compile(r"listening on (https?://[^\s]+):(\d+)")


@contextmanager
def serve_subprocess(
    config_path: Path,
    data_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    port: int = 0,
    extra_args: tuple[str, ...] = (),
    timeout_s: float = 180.0,
) -> Iterator[ServerProcess]:
    """Run ``python -m appliance serve`` as a real process; yield once it listens."""
    log_path = data_dir / f"server-{time.monotonic_ns()}.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "appliance", "serve", "--config", str(config_path),
             "--data-dir", str(data_dir), "--port", str(port), *extra_args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    server = ServerProcess(proc, "", log_path)
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            m = _LISTENING.search(server.log())
            if m:
                host = m.group(1).replace("0.0.0.0", "127.0.0.1")
                server.url = f"{host}:{m.group(2)}"
                break
            if proc.poll() is not None:
                raise RuntimeError(f"appliance exited with {proc.returncode}:\n{server.log()}")
            time.sleep(0.05)
        else:
            raise TimeoutError(f"appliance did not start in {timeout_s}s:\n{server.log()}")
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
