"""The console's repository on both control-plane engines: SQLite (one box) and a real
PostgreSQL (a fleet), its tables made by the control plane's versioned migrations.

On PostgreSQL two backends stand for two replicas: a session opened on one is found,
refreshed and ended on the other, and a policy change moves through its states on both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.console.store import ConsoleStore, LoginState
from appliance.keys.backend import SqliteBackend, StateBackend
from appliance.keys.migrations import upgrade
from appliance.testing.engines import PG_BIN


@pytest.fixture(params=["sqlite", "postgres"])
def replicas(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[StateBackend, StateBackend]]:
    """Two backends on one control-plane database, its schema upgraded once."""
    if request.param == "sqlite":
        pair: tuple[StateBackend, StateBackend] = (SqliteBackend(tmp_path / "control.db"),
                                                   SqliteBackend(tmp_path / "control.db"))
        upgrade(pair[0])
        yield pair
        for b in pair:
            b.close()
        return
    if not (PG_BIN / "initdb").exists():
        pytest.fail("PostgreSQL 15 is not installed (.ci/run installs it)")
    from appliance.keys.postgres import PostgresBackend
    from appliance.testing.engines import postgres

    with postgres() as pg:
        first, second = PostgresBackend(pg.dsn, listen=False), PostgresBackend(pg.dsn, listen=False)
        try:
            upgrade(first)
            yield first, second
        finally:
            first.close()
            second.close()


def test_users_sessions_and_lockout_on_both_engines(replicas: tuple[StateBackend, StateBackend]) -> None:
    one, two = ConsoleStore(replicas[0]), ConsoleStore(replicas[1])
    user = one.create_user("ada", roles=("admin", "auditor"), password_hash="$argon2id$x", tenant=None)
    assert two.get_user("ada") == user and user.roles == ("admin", "auditor")
    with pytest.raises(ValueError):
        one.create_user("ada", roles=("admin",), password_hash="$argon2id$y")

    assert not two.record_failure("ada", max_failed=2, lockout_s=60)
    assert two.record_failure("ada", max_failed=2, lockout_s=60)  # the second failure locks
    locked = one.get_user("ada")
    assert locked is not None and locked.locked_until is not None
    one.record_success("ada")
    again = two.get_user("ada")
    assert again is not None and again.locked_until is None and again.failed_logins == 0

    token, session = one.create_session(user, user.roles)
    found = two.session(token, idle_s=60, absolute_s=3600)  # another replica knows it
    assert found is not None and found.username == "ada" and found.csrf == session.csrf
    assert two.session(token, idle_s=0, absolute_s=3600) is None  # idle: ended
    assert one.session(token, idle_s=60, absolute_s=3600) is None

    token, _ = one.create_session(user, user.roles)
    assert two.set_disabled("ada", True)
    assert one.session(token, idle_s=60, absolute_s=3600) is None  # disabling ends sessions
    two.set_language("ada", "de")
    assert [u.language for u in one.list_users()] == ["de"]

    sso = two.upsert_sso_user("olivia", roles=("auditor",), tenant="acme", display_name="Olivia")
    assert one.get_user("olivia") == sso and sso.source == "oidc"

    one.put_login("state-1", LoginState("nonce", "verifier", "/console/"))
    assert two.take_login("state-1") == LoginState("nonce", "verifier", "/console/")
    assert one.take_login("state-1") is None  # taken once


def test_policy_changes_incidents_and_revisions_on_both_engines(
    replicas: tuple[StateBackend, StateBackend],
) -> None:
    one, two = ConsoleStore(replicas[0]), ConsoleStore(replicas[1])
    change = one.create_change(kind="edit", title="Suspend mallory", author="pat", base_revision="r1",
                               files={"access.rego": "package x"})
    assert two.update_draft(change.id, "pat", {"access.rego": "package y"}, "Suspend mallory")
    assert not two.update_draft(change.id, "someone else", {}, "hijack")
    two.save_results(change.id, checks={"compiled": True}, replay={"flipped": 1})
    assert one.transition(change.id, from_status="draft", to_status="submitted")
    assert not two.transition(change.id, from_status="draft", to_status="submitted")  # once only
    assert two.transition(change.id, from_status="submitted", to_status="applied", by="apu",
                          note="ok", applied_revision="r2")
    got = one.get_change(change.id)
    assert got is not None and got.status == "applied" and got.decided_by == "apu"
    assert got.files == {"access.rego": "package y"} and got.replay == {"flipped": 1}
    assert [c.id for c in two.list_changes(["applied"])] == [change.id]

    one.record_revision("r2", {"access.rego": "package y"}, change.id, "apu")
    one.record_revision("r2", {"access.rego": "package y"}, change.id, "apu")  # idempotent
    assert [r["revision"] for r in two.revisions()] == ["r2"]
    assert two.revision_files("r2") == {"access.rego": "package y"}

    incident = one.create_incident(title="Wrong advice", severity="death", aware_at=1.0e9,
                                   description="", request_ids=["req-1"], created_by="aud")
    assert two.get_incident(incident["id"]) == incident
    assert two.set_incident_status(incident["id"], "reported")
    assert [i["status"] for i in one.list_incidents()] == ["reported"]


def test_users_cli_on_a_fleets_postgresql(tmp_path: Path) -> None:
    """``appliance db upgrade`` makes the console's tables; ``appliance users create`` then
    writes to the shared database, where every replica's console finds the account."""
    if not (PG_BIN / "initdb").exists():
        pytest.fail("PostgreSQL 15 is not installed (.ci/run installs it)")
    import json
    import os
    import subprocess
    import sys

    from appliance.keys.postgres import PostgresBackend
    from appliance.testing.engines import postgres

    config = tmp_path / "appliance.toml"
    config.write_text('[state]\nbackend = "postgres"\ndsn_env = "CONSOLE_TEST_DSN"\n')
    with postgres() as pg:
        env = {**os.environ, "CONSOLE_TEST_DSN": pg.dsn}

        def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "appliance", *args, "--config", str(config),
                                   "--data-dir", str(tmp_path / "data")],
                                  input=stdin, capture_output=True, text=True, timeout=120, env=env)

        refused = cli("users", "list")
        assert refused.returncode == 2 and "db upgrade" in refused.stderr  # no schema yet
        assert "Traceback" not in refused.stderr
        assert cli("db", "upgrade").returncode == 0
        made = cli("users", "create", "--username", "aud", "--role", "auditor", stdin="a long passphrase\n")
        assert made.returncode == 0, made.stderr
        listed = cli("users", "list", "--json")
        assert [json.loads(line)["username"] for line in listed.stdout.splitlines()] == ["aud"]
        backend = PostgresBackend(pg.dsn, listen=False)
        try:
            user = ConsoleStore(backend).get_user("aud")
        finally:
            backend.close()
        assert user is not None and user.password_hash and user.password_hash.startswith("$argon2id$")
