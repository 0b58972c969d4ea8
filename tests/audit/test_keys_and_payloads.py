"""Payload envelope encryption: readable only with the flag, audited access, shredding
per tenant (the chain still verifies), master-key rotation without rewriting records."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import pytest

from appliance.audit.envelope import TenantKeyStore, WrongMasterKey
from appliance.audit.keys import key_bytes
from tests.audit._tamper import cli, cli_verify
from tests.audit.conftest import PII_NAME, audit_config, make_ctx, record_all


def _search(data: Path, *args: str) -> list[dict[str, object]]:
    r = cli("search", "--data-dir", str(data), "--json", *args)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


@pytest.fixture
def two_tenants(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    contexts = [make_ctx(i, tenant=t, payload=True) for t in ("acme", "globex") for i in range(5)]
    record_all(audit_config(data), contexts)
    return data


def test_payloads_need_the_flag_and_access_is_audited(two_tenants: Path) -> None:
    plain = _search(two_tenants, "--tenant", "acme")
    assert len(plain) == 5 and all("payload" not in r and r["has_payload"] for r in plain)
    assert PII_NAME not in json.dumps(plain)
    assert _search(two_tenants, "--kind", "access") == []

    opened = _search(two_tenants, "--tenant", "acme", "--decrypt-payloads", "--reason", "DSAR 42")
    assert all(PII_NAME in r["payload"]["response"] for r in opened)  # type: ignore[index]
    (access,) = _search(two_tenants, "--kind", "access")
    assert access["extra"]["reason"] == "DSAR 42"  # type: ignore[index]
    assert sorted(access["extra"]["request_ids"]) == sorted(r["request_id"] for r in plain)  # type: ignore[index]


def test_shred_makes_one_tenants_payloads_unreadable_and_the_chain_still_verifies(two_tenants: Path) -> None:
    assert cli("shred", "--data-dir", str(two_tenants), "--tenant", "acme").returncode == 0
    acme = _search(two_tenants, "--tenant", "acme", "--kind", "request", "--decrypt-payloads")
    globex = _search(two_tenants, "--tenant", "globex", "--kind", "request", "--decrypt-payloads")
    assert acme and all(r["payload"] == {"shredded": True} for r in acme)
    assert globex and all(PII_NAME in r["payload"]["response"] for r in globex)  # type: ignore[index]
    config = audit_config(two_tenants)
    from appliance.audit.segments import AuditPaths

    rc, out = cli_verify(config, AuditPaths.from_config(config))
    assert rc == 0, out
    assert len(_search(two_tenants, "--kind", "shred")) == 1


def test_master_key_rotation_rewraps_without_rewriting_records(two_tenants: Path) -> None:
    segments = sorted((two_tenants / "audit" / "segments").glob("seg-*.duckdb"))
    before = {p: p.read_bytes() for p in segments}
    new_key = secrets.token_hex(32)
    env = {**os.environ, "NEW_AUDIT_MASTER": new_key}
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "appliance", "audit", "rotate-key", "--data-dir", str(two_tenants),
         "--new-key-env", "NEW_AUDIT_MASTER"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )
    assert r.returncode == 0, r.stderr
    assert {p: p.read_bytes() for p in segments} == before  # records untouched
    (two_tenants / "keys" / "audit-master.key").write_text(new_key)  # operator switches key
    opened = _search(two_tenants, "--decrypt-payloads")
    assert sum(1 for r in opened if r.get("payload") and PII_NAME in str(r["payload"])) == 10


def test_wrong_master_key_is_refused(two_tenants: Path) -> None:
    store = TenantKeyStore(two_tenants / "audit" / "keystore.json", key_bytes(secrets.token_hex(32), "t"))
    with pytest.raises(WrongMasterKey):
        store.refresh()


def test_segment_files_refuse_a_wrong_database_key(two_tenants: Path) -> None:
    (two_tenants / "keys" / "audit-db.key").write_text(secrets.token_hex(32))
    r = cli("search", "--data-dir", str(two_tenants), "--json")
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert not any(row.get("kind") == "request" for row in rows)


def test_no_pii_or_api_key_in_any_file_bytes(two_tenants: Path) -> None:
    """Stored payloads hold PII; no byte of any file under the data dir may show it."""
    from tests.audit.conftest import API_KEY, PII_IBAN

    _search(two_tenants, "--decrypt-payloads")  # also exercises the access record path
    needles = [PII_NAME.encode(), PII_IBAN.encode(), API_KEY.encode(), PII_NAME.encode("utf-16-le")]
    files = [p for p in two_tenants.rglob("*") if p.is_file()]
    assert any(p.suffix == ".duckdb" for p in files)
    for path in files:
        blob = path.read_bytes()
        for needle in needles:
            assert needle not in blob, f"found in {path.relative_to(two_tenants)}"
