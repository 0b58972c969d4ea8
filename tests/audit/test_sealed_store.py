"""The sealed state store: blobs readable only by their tenant, shredded with its data
key, purged with its retention; nothing of their content on disk in clear."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from appliance.audit.sealed_store import SealedStore, open_keystore, state_path
from appliance.config import Config, load_config
from appliance.testing.harness import to_toml

SECRET = b"Jane Roe, jane.roe@example.com, IBAN DE89370400440532013000"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load_config(None, data_dir=tmp_path / "data",
                       overrides={"audit": {"tenant_retention_days": {"shortlived": 1}}})


def test_blob_round_trip_per_tenant(config: Config) -> None:
    store = SealedStore.open(config)
    store.put("file", "file_1", "acme", SECRET, {"filename": "a.jsonl"})
    assert store.get("file", "file_1", "acme") == SECRET
    assert store.get("file", "file_1", "globex") is None
    assert store.info("file", "file_1", "globex") is None
    assert store.get("response", "file_1", "acme") is None  # kinds do not mix
    assert [i.id for i in store.list("file", "acme")] == ["file_1"]
    store.close()
    for path in state_path(config).parent.glob("state.db*"):
        assert b"jane.roe" not in path.read_bytes()


def test_shredding_the_tenant_key_makes_blobs_unreadable(config: Config) -> None:
    store = SealedStore.open(config)
    store.put("response", "resp_1", "acme", SECRET)
    store.put("response", "resp_2", "globex", b"other")
    open_keystore(config).shred("acme")
    assert store.get("response", "resp_1", "acme") is None
    assert store.info("response", "resp_1", "acme") is None
    assert store.list("response", "acme") == []
    assert store.get("response", "resp_2", "globex") == b"other"
    store.close()


def test_purge_follows_the_tenant_retention(config: Config) -> None:
    store = SealedStore.open(config)
    store.put("file", "old_short", "shortlived", b"x")
    store.put("file", "old_default", "acme", b"y")
    assert store.purge_expired(config, now=time.time() + 2 * 86_400) == 1
    assert store.get("file", "old_short", "shortlived") is None
    assert store.get("file", "old_default", "acme") == b"y"
    assert store.purge_expired(config, now=time.time() + 400 * 86_400) == 1
    store.close()


def test_cli_shred_removes_the_tenant_state(config: Config, tmp_path: Path) -> None:
    store = SealedStore.open(config)
    store.put("file", "file_1", "acme", SECRET)
    store.close()
    cfg = tmp_path / "appliance.toml"
    cfg.write_text(to_toml({"audit": {"tenant_retention_days": {"shortlived": 1}}}))
    done = subprocess.run(
        [sys.executable, "-m", "appliance", "audit", "shred", "--tenant", "acme", "--config", str(cfg),
         "--data-dir", str(config.storage.data_dir)],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "removed 1 stored" in done.stdout
    store = SealedStore.open(config)
    assert store.list("file", "acme") == []
    store.close()
