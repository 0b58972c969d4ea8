"""Stored payloads: which data keys still exist, and opening one payload.

The key store is the audit log's own (:mod:`appliance.audit.envelope`); a tenant whose
keys were shredded (GDPR Art. 17) has its payloads unreadable, and the console says so.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from appliance.audit.envelope import SealedPayload, TenantKeyStore
from appliance.audit.keys import key_bytes, load_secret
from appliance.audit.segments import AuditPaths
from appliance.config import Config
from appliance.config.audit import KeySourceConfig


@lru_cache(maxsize=4)
def _store(path: Path, data_dir: Path, master: KeySourceConfig) -> TenantKeyStore:
    secret = load_secret(master, data_dir, "audit master")
    return TenantKeyStore(path, key_bytes(secret, "audit master"))


def keystore(config: Config) -> TenantKeyStore:
    """The audit key store (one per data dir; it reloads itself when the file changes)."""
    return _store(AuditPaths.from_config(config).keystore, config.storage.data_dir, config.audit.master_key)


def key_ids(config: Config) -> set[str]:
    """Every data key id that still exists (a payload under any other is shredded)."""
    return {k for ids in keystore(config).tenants().values() for k in ids}


def open_payload(config: Config, raw: dict[str, Any]) -> dict[str, Any]:
    """The decrypted payload of a raw record, or ``{"shredded": True}``."""
    sealed = SealedPayload(raw["payload_key_id"], bytes(raw["payload_nonce"]), bytes(raw["payload_ct"]))
    opened = keystore(config).open(raw["tenant"] or "_none", raw["request_id"], sealed)
    if opened is None:
        return {"shredded": True}
    return opened if isinstance(opened, dict) else {"payload": opened}
