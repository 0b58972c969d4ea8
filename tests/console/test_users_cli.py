"""``appliance users create | list | disable`` as a subprocess, as an operator runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from appliance.testing.console import ConsoleClient, create_users
from tests.conftest import StartAppliance
from tests.console.conftest import console_config, copy_policies


def users(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "appliance", "users", *args, "--data-dir", str(data_dir)],
                          input=stdin, capture_output=True, text=True, timeout=120)


async def test_users_cli_creates_lists_and_disables(start_appliance: StartAppliance, fake_openai, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    running = await start_appliance(console_config(fake_openai, copy_policies(tmp_path)))
    data = running.data_dir
    create_users(None, data, {"olga": (("auditor", "policy_author"), None)}, via_cli=True)
    short = users(data, "create", "--username", "eve", "--role", "auditor", stdin="short\n")
    assert short.returncode == 2 and "at least 12" in short.stderr
    no_tenant = users(data, "create", "--username", "tv", "--role", "tenant_viewer", stdin="a long enough one\n")
    assert no_tenant.returncode == 2 and "--tenant" in no_tenant.stderr
    again = users(data, "create", "--username", "olga", "--role", "auditor", stdin="a long enough one\n")
    assert again.returncode == 2 and "exists" in again.stderr
    listed = users(data, "list", "--json")
    olga = json.loads(listed.stdout.splitlines()[0])
    assert olga["roles"] == ["auditor", "policy_author"] and "hash" not in listed.stdout
    control_db = b"".join(p.read_bytes() for p in data.glob("control.db*"))
    assert b"correct horse battery staple" not in control_db and b"$argon2id$" in control_db

    async with ConsoleClient(running.url) as c:
        assert await c.sign_in("olga") == 200
        status, _, _ = await c.get("/console/policies")
        assert status == 200
        assert users(data, "disable", "--username", "olga").returncode == 0
        status, _, _ = await c.get("/console/policies", allow_redirects=False)
        assert status == 303  # the session ended with the account
        assert await c.sign_in("olga") == 401
