"""Every example in the README, run as written.

The install-and-serve command runs in a copy of the working tree, exactly as a newcomer
types it (a fresh virtualenv, `pip install '.[cpu]'`, `appliance serve` on its embedded
defaults); the "First requests" shell and Python blocks then run against that server. The
test command is the one `.ci/run` runs (it cannot run inside itself); the TOML example is
loaded as a config file; the command-line listing is checked against the real parser.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from appliance.config import load_config

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: The README's server address.
HEALTH_URL = "http://127.0.0.1:8080/healthz"


@dataclass(frozen=True)
class Block:
    lang: str
    text: str
    section: str


def readme_blocks() -> list[Block]:
    blocks: list[Block] = []
    section = ""
    lines = README.read_text("utf-8").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            section = line[3:].strip()
        fence = re.match(r"^```(\w*)\s*$", line)
        if fence:
            body: list[str] = []
            i += 1
            while not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            blocks.append(Block(fence.group(1), "\n".join(body) + "\n", section))
        i += 1
    return blocks


def _of(section: str, lang: str) -> list[Block]:
    return [b for b in readme_blocks() if b.section == section and b.lang == lang]


def test_every_block_is_covered_here() -> None:
    """A new README example must get a check here, not slip past one."""
    covered = {("Set up", "sh"), ("First requests", "sh"), ("First requests", "python"),
               ("Configuration", "toml"), ("Command line", "")}
    found = {(b.section, b.lang) for b in readme_blocks()}
    assert found <= covered, found - covered
    assert len(_of("Set up", "sh")) == 2


def test_ci_runs_the_readme_test_command() -> None:
    test_command = _of("Set up", "sh")[1].text.strip()
    ci = (ROOT / ".ci" / "run").read_text("utf-8").strip().splitlines()
    assert ci[-1].strip() == test_command


def test_configuration_example_loads(tmp_path: Path) -> None:
    (toml,) = _of("Configuration", "toml")
    path = tmp_path / "appliance.toml"
    path.write_text(toml.text, "utf-8")
    config = load_config(path, data_dir=tmp_path / "data")
    assert config.models["gpt-4o"].provider == "openai"
    assert "local-chat" in config.models  # merged over the defaults, nothing removed


def test_command_line_listing_matches_the_parser() -> None:
    from appliance.cli import build_parser

    (listing,) = _of("Command line", "")
    for line in listing.text.strip().splitlines():
        words = re.sub(r"\[[^\]]*\]", " ", line).replace("|", " ").split()
        assert words[0] == "appliance"
        group, subcommands = words[1], words[2:]
        parser = build_parser(group)
        choices = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
        assert group in choices, line
        group_parser = choices[group]
        if subcommands:
            sub_choices = group_parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
            assert set(subcommands) <= set(sub_choices), (line, sorted(sub_choices))


def _working_tree_copy(dest: Path) -> None:
    """The files a clone has (tracked, plus new ones git would not ignore), as they are now."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            (dest / name).write_bytes(src.read_bytes())
            (dest / name).chmod(src.stat().st_mode)


def _healthy() -> bool:
    try:
        with urllib.request.urlopen(HEALTH_URL, timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


@pytest.mark.timeout(1500)
def test_first_requests_as_written(tmp_path: Path) -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout to copy the working tree")
    assert not _healthy(), "something already answers on 127.0.0.1:8080"
    clone = tmp_path / "clone"
    _working_tree_copy(clone)
    serve = _of("Set up", "sh")[0].text
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        ["bash", "-c", serve], cwd=clone, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 1200
        while not _healthy():
            assert server.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the README's server did not start"
            time.sleep(1)
        (shell,) = _of("First requests", "sh")
        (python,) = _of("First requests", "python")
        # The Python example is the user's application: it runs with an interpreter that
        # has the openai SDK (this one), in the shell where the README exported KEY.
        script = (
            f"set -e\n{shell.text}\n"
            '[ -n "$KEY" ] || { echo "the README left KEY empty" >&2; exit 3; }\n'
            f"{sys.executable} - <<'PYTHON'\n{python.text}PYTHON\n"
        )
        done = subprocess.run(
            ["bash", "-c", script], cwd=clone, capture_output=True, text=True, timeout=300,
            env={k: v for k, v in os.environ.items() if k != "KEY"},
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
