"""Configuration of the audit log (``[audit]`` in the TOML file).

Secrets never live in this file: a key is found through a :class:`KeySourceConfig`
(an environment variable, a key file, or a KMS hook), in that order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KeySourceConfig(_Frozen):
    """Where one secret comes from; the first source that yields a key wins."""

    #: Environment variable holding the key (hex, base64, or for the database key any string).
    env: str | None = None
    #: File holding the key; relative paths resolve under ``storage.data_dir``.
    file: Path | None = None
    #: ``"package.module:function"`` called as ``function(purpose: str) -> bytes | str``.
    kms_hook: str | None = None
    #: Create ``file`` with a random key when no source yields one (development default).
    generate_if_missing: bool = True


class AuditConfig(_Frozen):
    #: Keep the audit log (operators only: it is the system of record; see [pipeline] record).
    enabled: bool = True
    #: Directory of the audit log; relative paths resolve under ``storage.data_dir``.
    dir: Path = Path("audit")
    #: Key of DuckDB's AES-GCM database encryption (every segment file and its WAL).
    db_key: KeySourceConfig = KeySourceConfig(
        env="APPLIANCE_AUDIT_DB_KEY", file=Path("keys/audit-db.key")
    )
    #: Master key (32 bytes) that wraps the per-tenant payload data keys.
    master_key: KeySourceConfig = KeySourceConfig(
        env="APPLIANCE_AUDIT_MASTER_KEY", file=Path("keys/audit-master.key")
    )
    #: Ed25519 private key (PEM) that signs checkpoints; created if missing.
    signing_key_file: Path = Path("keys/audit-signing.pem")
    #: Seconds between signed checkpoints of a segment that receives records.
    checkpoint_interval_s: float = Field(10.0, gt=0)
    #: Also sign a checkpoint after this many new records.
    checkpoint_every_records: int = Field(10_000, gt=0)
    #: Second place checkpoints are written to (another disk, a WORM mount); None: only the data dir.
    checkpoint_mirror_dir: Path | None = None
    #: Records are kept at least this many days (AI Act Art. 19, 26(6): at least six months).
    retention_days: int = Field(183, ge=1)
    #: Per-tenant retention overrides in days (may only lengthen or shorten for that tenant).
    tenant_retention_days: dict[str, int] = {}
    #: Group commit: most records written in one transaction.
    commit_max_records: int = Field(2000, gt=0)
    #: Group commit: how long the writer waits for more records before committing, in ms
    #: (0: none; records that arrive during a commit form the next batch anyway).
    commit_max_delay_ms: float = Field(0.0, ge=0)
    #: Acknowledged records wait in the encrypted journal at most this long, in ms, before
    #: they are inserted into the segment (one DuckDB commit per batch, not per record).
    flush_interval_ms: float = Field(200.0, ge=0)
    #: ... or until this many are waiting.
    flush_max_records: int = Field(5000, gt=0)
    #: Seal the current segment and start a new one after this many records.
    segment_max_records: int = Field(1_000_000, gt=0)
    #: ... or after this many seconds.
    segment_max_age_s: float = Field(3600.0, gt=0)
    #: Segment file names: ``{prefix}-{host}-{pid}-{start}.duckdb`` in ``<dir>/segments``.
    segment_prefix: str = Field("seg", pattern=r"^[A-Za-z0-9_]+$")
    #: How long a reader waits for running writers to seal their segment on request, in s.
    reader_rotation_wait_s: float = Field(5.0, ge=0)
    #: Bound on queued records; record() waits when the writer falls this far behind.
    queue_max_records: int = Field(100_000, gt=0)
    #: Where sealed segments go in a fleet: ``s3://bucket/prefix`` (endpoint and credentials
    #: from the environment) or a directory such as an NFS mount (None: they stay local).
    #: Each copy is checksum-verified; the local file is deleted only once it is confirmed.
    archive_url: str | None = None
    #: Object Lock (COMPLIANCE) retention of archived objects in days (None: no lock;
    #: the bucket must have Object Lock enabled).
    archive_lock_days: int | None = Field(None, ge=1)
    #: Seconds between two looks at the archive (fleet readers' seal requests, retries).
    archive_poll_s: float = Field(1.0, gt=0)
    #: What readers (search, verify, reports) read: "local" segments under the data dir,
    #: or "archive": every replica's segments in ``archive_url`` (the CLI's ``--fleet``).
    read_from: Literal["local", "archive"] = "local"
    #: How long a fleet reader waits for running replicas to seal and ship, in seconds.
    fleet_rotation_wait_s: float = Field(20.0, ge=0)

    def retention_for(self, tenant: str | None) -> int:
        """Retention in days that applies to ``tenant``."""
        if tenant is not None and tenant in self.tenant_retention_days:
            return self.tenant_retention_days[tenant]
        return self.retention_days
