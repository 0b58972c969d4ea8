"""A record altered in the archive is named by ``audit verify --fleet``: the replica that
wrote it and the record, even when the tamperer also rewrote the manifest's checksums.
The archive here is a directory (an NFS mount's stand-in), the state embedded."""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path

import aiohttp
import pytest

from appliance.audit.keys import load_signing_key
from appliance.audit.segments import attach, connect, db_key
from appliance.config import load_config
from appliance.objstore.store import sha256_hex
from appliance.testing.fakes import FakeOpenAI
from appliance.testing.fleet import Fleet
from appliance.testing.harness import PASS_THROUGH, UPSTREAM_KEY_ENV, merge, openai_upstream
from tests.fleet.conftest import FAKE_KEY


def test_a_changed_record_in_the_archive_names_replica_and_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    load_signing_key(shared / "audit-signing.pem", shared / "audit-signing.pub.pem")
    archive = tmp_path / "archive"
    env = {UPSTREAM_KEY_ENV: FAKE_KEY, "APPLIANCE_AUDIT_DB_KEY": secrets.token_hex(16),
           "APPLIANCE_AUDIT_MASTER_KEY": secrets.token_hex(32)}
    with FakeOpenAI(api_key=FAKE_KEY, record=False).running() as fake:
        config = merge(openai_upstream("openai", fake.base_url, {"gpt-4o": "gpt-4o"}), PASS_THROUGH, {
            "pipeline": {"record": True},
            "audit": {"archive_url": str(archive), "archive_poll_s": 0.3,
                      "signing_key_file": str(shared / "audit-signing.pem")},
        })
        fleet = Fleet.create(tmp_path / "fleet", config, env, 1)
        made = fleet.cli("keys", "create", "--tenant", "acme", "--user", "u", "--json")
        assert made.returncode == 0, made.stderr
        key = json.loads(made.stdout)["key"]
        fleet.start()
        try:
            async def traffic() -> None:
                body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello."}]}
                async with aiohttp.ClientSession() as session:
                    for _ in range(5):
                        async with session.post(f"{fleet.replicas[0].url}/v1/chat/completions", json=body,
                                                headers={"Authorization": f"Bearer {key}"}) as r:
                            assert r.status == 200

            asyncio.run(traffic())
        finally:
            fleet.stop()  # seals and ships
    public = str(shared / "audit-signing.pub.pem")
    clean = fleet.cli("audit", "verify", "--fleet", "--public-key", public)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    [segment] = (archive / "replicas" / "replica1" / "segments").glob("*.duckdb")
    monkeypatch.setenv("APPLIANCE_AUDIT_DB_KEY", env["APPLIANCE_AUDIT_DB_KEY"])
    cfg = load_config(fleet.replicas[0].config_path, data_dir=fleet.replicas[0].data_dir)
    conn = connect()
    attach(conn, segment, "seg", db_key(cfg), read_only=False)
    changed = conn.execute("UPDATE seg.records SET model = 'gpt-4o-mini' WHERE seq = 2 RETURNING seq").fetchall()
    assert changed == [(2,)]
    conn.execute("CHECKPOINT seg")
    conn.execute("DETACH seg")
    conn.close()
    manifest_path = archive / "replicas" / "replica1" / "manifests" / f"{segment.stem}.json"
    manifest = json.loads(manifest_path.read_text())
    data = segment.read_bytes()
    manifest.update(sha256=sha256_hex(data), bytes=len(data))  # the tamperer covers the copy too
    manifest_path.write_text(json.dumps(manifest))

    broken = fleet.cli("audit", "verify", "--fleet", "--public-key", public)
    assert broken.returncode != 0, broken.stdout
    assert f"replica replica1: {segment.stem} record seq 2" in broken.stdout + broken.stderr, (
        broken.stdout + broken.stderr)
