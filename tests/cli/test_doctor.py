"""``appliance doctor`` as an operator runs it: a subprocess on a good and on broken setups."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from appliance.shipped import shipped
from appliance.testing.fakes import FakeOpenAI
from appliance.testing.harness import (
    PASS_THROUGH,
    UPSTREAM_KEY_ENV,
    create_key,
    merge,
    openai_upstream,
    serve_subprocess,
    to_toml,
)
from appliance.testing.models import TestModels
from appliance.testing.engines import free_port

UPSTREAM_KEY = "sk-upstream-doctor-0123456789"
DB_KEY_ENV, MASTER_KEY_ENV = "APPLIANCE_AUDIT_DB_KEY", "APPLIANCE_AUDIT_MASTER_KEY"
#: Keys only from the environment: nothing generated, so a missing variable is a failure.
ENV_KEYS_ONLY = {
    "audit": {
        "db_key": {"env": DB_KEY_ENV, "generate_if_missing": False},
        "master_key": {"env": MASTER_KEY_ENV, "generate_if_missing": False},
    }
}


@dataclass(frozen=True)
class Installed:
    """A data dir after install: a few requests served and audited, the server stopped."""

    work: Path
    data: Path
    config: dict[str, Any]
    env: dict[str, str]

    def write_config(self, name: str, *extra: dict[str, Any]) -> Path:
        path = self.work / name
        path.write_text(to_toml(merge(self.config, *extra)))
        return path


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, test_models: TestModels) -> Iterator[Installed]:
    work = tmp_path_factory.mktemp("doctor")
    data = work / "data"
    env = {UPSTREAM_KEY_ENV: UPSTREAM_KEY, DB_KEY_ENV: secrets.token_hex(32),
           MASTER_KEY_ENV: secrets.token_hex(32)}
    with FakeOpenAI(api_key=UPSTREAM_KEY, record=False).running() as fake:
        upstream = openai_upstream("openai", fake.base_url)
        # The server only has to leave audit records: every other stage off, no models.
        server_cfg = work / "server.toml"
        server_cfg.write_text(to_toml(merge(
            upstream, PASS_THROUGH, ENV_KEYS_ONLY, {"pipeline": {"record": True}},
            {"providers": {"local": {"build_missing": False, "preload": False}}},
        )))
        key = create_key(data)
        with serve_subprocess(server_cfg, data, env=env) as server:
            async_send(server.url, key, 5)
    config = merge(
        upstream, ENV_KEYS_ONLY,
        {"providers": {"local": {"models_dir": str(test_models.models_dir)}},
         "server": {"port": free_port()}},
    )
    yield Installed(work, data, config, env)


def async_send(url: str, key: str, n: int) -> None:
    import asyncio

    async def go() -> None:
        async with aiohttp.ClientSession() as http:
            for _ in range(n):
                async with http.post(
                    f"{url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                    json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
                ) as r:
                    assert r.status == 200, await r.text()

    asyncio.run(go())


def doctor(config: Path, data: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in (UPSTREAM_KEY_ENV, DB_KEY_ENV, MASTER_KEY_ENV)}
    return subprocess.run(
        [sys.executable, "-m", "appliance", "doctor", "--config", str(config), "--data-dir", str(data), *args],
        capture_output=True, text=True, timeout=300, env={**clean, **env},
    )


def lines(out: str) -> dict[str, str]:
    """check name -> its whole line (``status  name  message  fix: ...``)."""
    found = {}
    for line in out.splitlines():
        status, name, _ = line.split(maxsplit=2)
        assert status in ("ok", "warn", "fail"), line
        found[name] = line
    return found


ALL_CHECKS = ["config", "data_dir", "policy", "audit", "state", "counters", "archive", "models", "onnxruntime",
              "pii", "providers", "mcp", "tls", "port"]


def test_a_good_install_is_all_ok(installed: Installed) -> None:
    run = doctor(installed.write_config("good.toml"), installed.data, installed.env)
    assert run.returncode == 0, run.stdout + run.stderr
    found = lines(run.stdout)
    assert list(found) == ALL_CHECKS
    for line in found.values():
        assert line.startswith("ok "), line
    assert "chain intact" in found["audit"] and "1 segments open" in found["audit"]
    passed = re.search(r"(\d+)/(\d+) tests pass", found["policy"])
    assert passed and passed[1] == passed[2] and int(passed[1]) > 0
    assert "local-chat, local-embed" in found["models"]
    assert "runs on CPUExecutionProvider" in found["onnxruntime"]
    assert "en, de" in found["pii"]
    for secret in installed.env.values():
        assert secret not in run.stdout + run.stderr


def test_missing_key_variables_fail_with_their_names(installed: Installed) -> None:
    env = {MASTER_KEY_ENV: installed.env[MASTER_KEY_ENV]}  # no database key, no upstream key
    cheap = ["data_dir", "audit", "providers", "tls", "port"]  # PII and models take seconds
    run = doctor(installed.write_config("good.toml"), installed.data, env, "--json",
                 *(f"--check={name}" for name in cheap))
    assert run.returncode == 1
    report = json.loads(run.stdout)
    assert report["ok"] is False
    by_name = {c["check"]: c for c in report["checks"]}
    assert list(by_name) == ["config", *cheap]  # a failure does not stop the checks after it
    audit = by_name["audit"]
    assert audit["status"] == "fail"
    assert f"${DB_KEY_ENV} is unset" in audit["message"] and "cannot be opened" in audit["message"]
    assert DB_KEY_ENV in audit["fix"]
    providers = by_name["providers"]
    assert providers["status"] == "fail" and f"openai needs ${UPSTREAM_KEY_ENV}" in providers["message"]
    assert {c["check"] for c in report["checks"] if c["status"] == "fail"} == {"audit", "providers"}


def test_a_wrong_database_key_fails(installed: Installed) -> None:
    env = {**installed.env, DB_KEY_ENV: secrets.token_hex(32)}
    run = doctor(installed.write_config("good.toml"), installed.data, env, "--check", "audit")
    assert run.returncode == 1
    assert lines(run.stdout)["audit"].startswith("fail  audit        1 of 1 segments do not open with the configured key")


@pytest.mark.parametrize(("window", "status"), [(1000, "fail"), (1, "ok")])
def test_an_altered_audit_record_breaks_the_chain(
    installed: Installed, tmp_path: Path, window: int, status: str
) -> None:
    """Record seq 3 of 5 altered: found when the checked tail covers it, not otherwise."""
    from appliance.audit.segments import attach, connect

    data = tmp_path / "data"
    shutil.copytree(installed.data, data)
    (segment,) = (data / "audit" / "segments").glob("seg-*.duckdb")
    conn = connect()
    attach(conn, segment, "s", installed.env[DB_KEY_ENV], read_only=False)
    assert conn.execute("SELECT count(*) FROM s.records").fetchall() == [(5,)]
    conn.execute("UPDATE s.records SET model = 'altered' WHERE seq = 3")
    conn.close()
    run = doctor(installed.write_config("good.toml"), data, installed.env,
                 "--check", "audit", "--audit-records", str(window))
    line = lines(run.stdout)["audit"]
    assert run.returncode == (1 if status == "fail" else 0), line
    if status == "fail":
        assert f"hash chain broken: {segment.stem}: record seq 3 does not match its hash (altered)" in line
        assert "fix: appliance audit verify" in line
    else:
        assert line.startswith("ok    audit") and "last 1 records" in line


def _break_policy(root: Path, how: str) -> None:
    if how == "syntax":
        module = next(p for p in sorted(root.glob("*.rego")) if not p.name.endswith("_test.rego"))
        module.write_text(module.read_text() + "\nallow_everything if {\n")
    elif how == "failing test":  # a test that no longer holds
        test = next(iter(sorted(root.glob("*_test.rego"))))
        test.write_text(test.read_text() + "\ntest_doctor_sees_this_fail if {\n\tfalse\n}\n")


@pytest.mark.parametrize(("how", "expected"), [
    ("syntax", "does not compile"),
    ("failing test", "policy tests fail: test_doctor_sees_this_fail"),
    ("OPA server down", "does not answer /health: every request would be denied"),
])
def test_a_broken_policy_fails(installed: Installed, tmp_path: Path, how: str, expected: str) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(shipped("policies"), policies)
    _break_policy(policies, how)
    policy: dict[str, Any] = {"dir": str(policies)}
    if how == "OPA server down":
        policy |= {"engine": "opa", "opa_url": f"http://127.0.0.1:{free_port()}"}
    cfg = installed.write_config(f"policy-{how}.toml", {"policy": policy})
    run = doctor(cfg, installed.data, installed.env, "--check", "policy")
    assert run.returncode == 1
    line = lines(run.stdout)["policy"]
    fix = "fix: start the OPA server" if how == "OPA server down" else "fix: appliance policy test"
    assert line.startswith("fail  policy") and expected in line and fix in line


@pytest.mark.parametrize("how", ["a file", "read-only"])
def test_a_data_dir_that_cannot_be_written_fails(installed: Installed, tmp_path: Path, how: str) -> None:
    data = tmp_path / "data"
    if how == "a file":
        data.write_text("not a directory")
        expected = "exists but is not a directory"
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only directories")
        data.mkdir()
        data.chmod(0o555)
        expected = "cannot write in"
    try:
        run = doctor(installed.write_config("good.toml"), data, installed.env, "--check", "data_dir")
    finally:
        if data.is_dir():
            data.chmod(0o755)
    assert run.returncode == 1
    line = lines(run.stdout)["data_dir"]
    assert line.startswith("fail  data_dir") and expected in line


def test_an_invalid_config_fails_first(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[server]\nworkers = 0\n\n[models.x]\nprovider = "nowhere"\n')
    run = doctor(cfg, tmp_path / "data", {})
    assert run.returncode == 1
    (line,) = run.stdout.splitlines()
    assert line.startswith("fail  config") and "server.workers" in line


def _certificate(tmp_path: Path, not_after: dt.datetime) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "appliance.test")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_after - dt.timedelta(days=400)).not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.mark.parametrize(("days", "status", "expected"), [
    (365, "ok", "valid until"),
    (10, "warn", "expires in 10 days"),
    (-1, "fail", "expired on"),
])
def test_tls_certificate_expiry(installed: Installed, tmp_path: Path, days: int, status: str, expected: str) -> None:
    cert, key = _certificate(tmp_path, dt.datetime.now(dt.UTC) + dt.timedelta(days=days, hours=1))
    cfg = installed.write_config(f"tls{days}.toml", {"server": {"tls_cert": str(cert), "tls_key": str(key)}})
    run = doctor(cfg, installed.data, installed.env, "--check", "tls")
    assert run.returncode == (1 if status == "fail" else 0)
    line = lines(run.stdout)["tls"]
    assert line.startswith(status) and expected in line and "CN=appliance.test" in line


def test_a_port_in_use_fails(installed: Installed) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cfg = installed.write_config("busy.toml", {"server": {"port": port}})
        run = doctor(cfg, installed.data, installed.env, "--check", "port")
    assert run.returncode == 1
    assert lines(run.stdout)["port"].startswith(f"fail  port         127.0.0.1:{port} is in use by another program")
