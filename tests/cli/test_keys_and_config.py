"""The CLI as a subprocess: keys, config validation, serve."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from openai import OpenAI

from appliance.testing.fakes import FakeOpenAI
from appliance.testing.harness import (
    PASS_THROUGH,
    UPSTREAM_KEY_ENV,
    merge,
    openai_upstream,
    serve_subprocess,
    to_toml,
)


def run(*args: str, config: Path | None = None, data_dir: Path | None = None,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "appliance", *args]
    if config is not None:
        cmd += ["--config", str(config)]
    if data_dir is not None:
        cmd += ["--data-dir", str(data_dir)]
    return subprocess.run(cmd, capture_output=True, text=True, input=stdin, timeout=120)


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    created = run("keys", "create", "--tenant", "acme", "--user", "bob", "--department", "hr",
                  "--role", "analyst", "--role", "admin", "--json", data_dir=tmp_path)
    assert created.returncode == 0, created.stderr
    out = json.loads(created.stdout)
    assert out["key"].startswith("ak-") and out["id"] in out["key"]
    listed = run("keys", "list", "--json", data_dir=tmp_path)
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert rows[0]["id"] == out["id"] and rows[0]["roles"] == ["analyst", "admin"]
    assert out["key"] not in listed.stdout  # the secret is shown once only
    assert run("keys", "revoke", out["id"], data_dir=tmp_path).returncode == 0
    listed = run("keys", "list", data_dir=tmp_path)
    assert "revoked" in listed.stdout
    assert run("keys", "revoke", "0000000000000000", data_dir=tmp_path).returncode == 1
    # Only a salted hash is stored: the secret part is nowhere in the file.
    secret = out["key"].rsplit("-", 1)[1]
    assert secret.encode() not in (tmp_path / "control.db").read_bytes()


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[server]\nport = 'eighty'\n", "server.port"),
        ("[server]\nbogus = 1\n", "server.bogus"),
        ("[models.x]\nprovider = 'nowhere'\n", "unknown provider 'nowhere'"),
        ("[providers.p]\nkind = 'carrier-pigeon'\n", "providers.p"),
        ("[providers.p]\nkind = 'openai'\n[models.m]\nprovider = 'p'\nfallbacks = ['zzz']\n",
         "unknown model 'zzz'"),
        ("[server]\ntls_cert = 'a.pem'\n", "tls_cert and tls_key must be set together"),
        ("this is = not toml =", "not valid TOML"),
    ],
)
def test_config_errors_are_clear(tmp_path: Path, toml: str, message: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(toml)
    r = run("keys", "list", config=cfg, data_dir=tmp_path)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_missing_config_file(tmp_path: Path) -> None:
    r = run("keys", "list", config=tmp_path / "nope.toml")
    assert r.returncode == 2 and "config file not found" in r.stderr


def test_serve_subprocess_with_openai_sdk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(UPSTREAM_KEY_ENV, "sk-up")
    with FakeOpenAI(api_key="sk-up").running() as fake:
        cfg = tmp_path / "appliance.toml"
        cfg.write_text(to_toml(merge(openai_upstream("up", fake.base_url), PASS_THROUGH)))
        data = tmp_path / "data"
        key = json.loads(run("keys", "create", "--tenant", "t", "--user", "u", "--json",
                             config=cfg, data_dir=data).stdout)["key"]
        with serve_subprocess(cfg, data) as server:
            client = OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0)
            r = client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "ping"}]
            )
            assert r.choices[0].message.content == "echo: ping"
            # A key created while the server runs works at once; a revoked one stops.
            new = json.loads(run("keys", "create", "--tenant", "t", "--user", "v", "--json",
                                 config=cfg, data_dir=data).stdout)
            c2 = OpenAI(base_url=server.url + "/v1", api_key=new["key"], max_retries=0)
            assert c2.models.list().data
            run("keys", "revoke", new["id"], config=cfg, data_dir=data)
            time.sleep(1.2)
            with pytest.raises(Exception) as e:
                c2.models.list()
            assert getattr(e.value, "status_code", None) == 401
        assert "sk-up" not in server.log()
        assert key not in server.log()


def test_keys_expire(tmp_path: Path) -> None:
    from appliance.keys.store import ControlPlane, control_plane_path

    keys = {}
    for name, days in (("past", "-0.001"), ("future", "30")):
        created = run("keys", "create", "--tenant", "acme", "--user", name,
                      "--expires-in-days", days, "--json", data_dir=tmp_path)
        assert created.returncode == 0, created.stderr
        keys[name] = json.loads(created.stdout)["key"]
    rows = {r["user"]: r for r in map(json.loads, run("keys", "list", "--json",
                                                      data_dir=tmp_path).stdout.splitlines())}
    assert rows["past"]["expires_at"] < time.time() < rows["future"]["expires_at"]
    control = ControlPlane.open(control_plane_path(tmp_path))
    try:
        assert control.verify(keys["past"]) is None
        assert control.verify(keys["future"]) is not None
    finally:
        control.close()
