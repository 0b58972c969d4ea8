"""Manifests in the repository, the build cache under races, default models, the CLI."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from appliance.config import load_config
from appliance.errors import ConfigError
from appliance.models.build_cache import build_once
from appliance.models.defaults import ensure_default_models
from appliance.models.manifest import discover, is_complete, load_manifest
from appliance.testing.models import TestModels

REPO = Path(__file__).resolve().parents[2]


def test_repository_manifests_are_valid() -> None:
    found = discover(REPO / "models")
    assert {"local-chat", "local-embed"} <= set(found)
    for name, path in found.items():
        manifest = load_manifest(path)
        assert manifest.name == name


BAD_MANIFESTS = [
    ("task: chat\ncontext_length: 0\n", "context_length"),
    ("task: translate\n", "task"),
    ("task: chat\nunknown_field: 1\n", "unknown_field"),
    ("- just\n- a list\n", "mapping"),
]


@pytest.mark.parametrize(("text", "needle"), BAD_MANIFESTS)
def test_bad_manifest_is_a_config_error(tmp_path: Path, text: str, needle: str) -> None:
    (tmp_path / "model.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_manifest(tmp_path)
    assert needle in str(info.value) and "model.yaml" in str(info.value)


def _racer(target: str, log: str) -> None:
    def build(tmp: Path) -> None:
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(0.5)
        (tmp / "done").write_text("ok")

    build_once(Path(target), build)


def test_build_once_builds_once_under_a_race(tmp_path: Path) -> None:
    target, log = tmp_path / "model", tmp_path / "builds.log"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_racer, args=(str(target), str(log))) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert len(log.read_text().split()) == 1
    assert (target / "done").read_text() == "ok"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".model.tmp")] == []


def test_failed_build_leaves_nothing(tmp_path: Path) -> None:
    def boom(tmp: Path) -> None:
        (tmp / "half").write_text("x")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        build_once(tmp_path / "m", boom)
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_default_models_are_built_when_missing(tmp_path: Path, test_models: TestModels) -> None:
    models_dir = tmp_path / "data" / "models"
    models_dir.mkdir(parents=True)
    (models_dir / "local-embed").symlink_to(test_models.embed)  # already built: kept
    config = load_config(None, data_dir=tmp_path / "data")
    ensure_default_models(config)
    assert is_complete(models_dir / "local-chat")
    assert load_manifest(models_dir / "local-chat").source.kind == "test-model"  # type: ignore[union-attr]
    assert (models_dir / "local-embed").is_symlink()


def test_cli_models_list(tmp_path: Path, test_models: TestModels) -> None:
    models_dir = tmp_path / "data" / "models"
    models_dir.mkdir(parents=True)
    for model in (test_models.chat, test_models.embed):
        (models_dir / model.name).symlink_to(model)
    out = subprocess.run(
        [sys.executable, "-m", "appliance", "models", "list", "--json",
         "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=120, cwd=REPO, check=False,
    )
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert rows["local-chat"]["loads"] is True and rows["local-chat"]["runs_on"] == "CPU"
    assert rows["local-embed"]["task"] == "embedding"
    assert rows["local-embed"]["quantization"] == "int8"
    assert rows["local-embed"]["configured_as"] == "local-embed"


def test_cli_models_prepare_builds_what_is_missing_then_nothing(
    tmp_path: Path, test_models: TestModels
) -> None:
    """``models prepare`` builds every model ``serve`` would build on first start (here
    the chat model is missing), and a second run finds them all."""
    from appliance.risk.multilingual import MODEL_NAME, ensure_use_model

    models_dir = tmp_path / "data" / "models"
    models_dir.mkdir(parents=True)
    (models_dir / "local-embed").symlink_to(test_models.embed)
    (models_dir / MODEL_NAME).symlink_to(ensure_use_model(test_models.models_dir))

    def prepare() -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [sys.executable, "-m", "appliance", "models", "prepare",
             "--data-dir", str(tmp_path / "data")],
            capture_output=True, text=True, timeout=900, cwd=REPO, check=False,
        )
        assert out.returncode == 0, out.stderr
        return out

    first = prepare()
    assert is_complete(models_dir / "local-chat")
    assert "First start: building 1 model(s) offline, once (local-chat)" in first.stderr
    assert "local-chat: building offline (served as local-chat), about 7 s ..." in first.stderr
    for name, note in (("local-chat", "built now"), ("local-embed", "built before"),
                       (MODEL_NAME, "built before"), ("de-ner", "built before")):
        assert re.search(rf"{name} \(.*\): ready at .* \({note}\)", first.stderr), first.stderr
    second = prepare()
    assert "building" not in second.stderr.lower(), second.stderr


def test_a_build_child_ends_when_the_process_waiting_for_it_is_killed() -> None:
    """A killed server must not leave its model build (and its training workers) running."""
    import os
    import time

    grandchild = ("import os, time\n"
                  "from appliance.models.build_cache import exit_with_parent\n"
                  "exit_with_parent(os.getppid(), poll_s=0.05)\n"
                  "time.sleep(120)\n")
    child = ("import subprocess, sys, time\n"
             f"p = subprocess.Popen([sys.executable, '-c', {grandchild!r}])\n"
             "print(p.pid, flush=True)\n"
             "time.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True,
                              cwd=REPO)
    assert parent.stdout is not None
    build_pid = int(parent.stdout.readline())

    def running() -> bool:
        try:
            status = Path(f"/proc/{build_pid}/status").read_text()
        except FileNotFoundError:
            return False
        return "\nState:\tZ" not in status

    time.sleep(0.5)
    assert running()
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 20
    while running() and time.monotonic() < deadline:
        time.sleep(0.05)
    if running():
        os.kill(build_pid, 9)
        raise AssertionError("the build child outlived the process waiting for it")
