"""One audit trail for the fleet: sealed segments shipped to shared object storage.

Each replica keeps writing its own encrypted, hash-chained segments. Once a segment is
sealed (rotation, a reader's request, shutdown, or recovery after a crash) the shipper
copies it to the archive with its signed checkpoints, then a manifest naming both
SHA-256 sums; each upload is checked against the store's own checksum, failures are
retried, and the local files are deleted only once the manifest is confirmed. Layout:

    replicas/<replica>/segments/<segment>.duckdb      the sealed segment, as written
    replicas/<replica>/checkpoints/<segment>.jsonl    its signed checkpoints
    replicas/<replica>/manifests/<segment>.json       sha256 of both, records, sealed size
    replicas/<replica>/status-<pid>.json              heartbeat per writer process: alive,
                                                      the last seal request it served
    control/rotate-request.json                       a fleet reader's request to seal now

A fleet reader (``audit search|verify --fleet``, ``report export --fleet``) writes the
seal request, waits until every live replica has sealed and shipped what it had (its
status names the request), downloads the segments into a local cache, checks each
against its manifest and attaches them, so it sees every record acknowledged before it
asked, from every replica.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.audit.checkpoints import external_path, load_external
from appliance.audit.journal import journal_path
from appliance.audit.segments import AuditPaths, lock_path, replica_name, segment_start
from appliance.config import Config
from appliance.objstore.store import ObjectStore, StoreError, open_store, sha256_hex

log = logging.getLogger(__name__)

ROTATE_KEY = "control/rotate-request.json"
#: Seconds between two status writes of a writer process that has nothing new to say.
_HEARTBEAT_S = 4.0


def _segment_key(replica: str, segment_id: str) -> str:
    return f"replicas/{replica}/segments/{segment_id}.duckdb"


def _checkpoints_key(replica: str, segment_id: str) -> str:
    return f"replicas/{replica}/checkpoints/{segment_id}.jsonl"


def _manifest_key(replica: str, segment_id: str) -> str:
    return f"replicas/{replica}/manifests/{segment_id}.json"


def _status_key(replica: str) -> str:
    """One heartbeat per writer process (a replica may run several workers)."""
    return f"replicas/{replica}/status-{os.getpid()}.json"


@dataclass
class ShipperStats:
    shipped: int = 0
    failures: int = 0
    last_error: str | None = None
    last_shipped_at: float | None = None
    #: Sealed segments waiting on this replica's disk for their copy.
    backlog: int = 0


@contextmanager
def _ship_lock(paths: AuditPaths) -> Iterator[None]:
    """One shipper at a time per data dir (several worker processes share it)."""
    paths.root.mkdir(parents=True, exist_ok=True)
    with open(paths.root / "ship.lock", "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def sealed_segments(paths: AuditPaths) -> list[Path]:
    """Local writer segments with a sealed checkpoint covering them: ready to ship."""
    sealed = {cp.segment_id for cp in load_external(paths.checkpoints) if cp.sealed}
    return [p for p in paths.segment_files()
            if segment_start(p.stem) is not None and p.stem in sealed]


def ship_segment(store: ObjectStore, paths: AuditPaths, replica: str, path: Path,
                 lock_days: int | None) -> None:
    """Copy one sealed segment and its checkpoints, then its manifest; delete the local
    files once the manifest is confirmed. Raises StoreError (the local files stay)."""
    segment_id = path.stem
    wal = path.with_name(path.name + ".wal")
    if wal.exists():
        raise StoreError(f"{segment_id} still has a WAL file; it is shipped once DuckDB folded it in")
    data = path.read_bytes()
    cps_path = external_path(paths.checkpoints, segment_id)
    cps = cps_path.read_bytes()
    sealed = [json.loads(line) for line in cps.splitlines() if line.strip()]
    size = max((c["tree_size"] for c in sealed if c.get("sealed")), default=0)
    manifest = {
        "v": 1,
        "replica": replica,
        "segment_id": segment_id,
        "sha256": sha256_hex(data),
        "bytes": len(data),
        "checkpoints_sha256": sha256_hex(cps),
        "sealed_size": size,
        "shipped_at": time.time(),
    }
    for key, body, want in (
        (_segment_key(replica, segment_id), data, manifest["sha256"]),
        (_checkpoints_key(replica, segment_id), cps, manifest["checkpoints_sha256"]),
    ):
        got = store.put(key, body, retain_days=lock_days)
        if got != want:
            raise StoreError(f"{key}: the archive holds SHA-256 {got[:12]}…, {str(want)[:12]}… was sent")
    body = json.dumps(manifest, sort_keys=True).encode()
    if store.put(_manifest_key(replica, segment_id), body, retain_days=lock_days) != sha256_hex(body):
        raise StoreError(f"{segment_id}: the archived manifest does not match")
    # Confirmed: the archive holds the segment, its checkpoints and its manifest.
    path.unlink()
    journal_path(path).unlink(missing_ok=True)
    lock_path(path).unlink(missing_ok=True)
    cps_path.unlink(missing_ok=True)


class Shipper:
    """Ships this replica's sealed segments (a thread owned by the audit writer)."""

    def __init__(self, config: Config, paths: AuditPaths, *, rotate: Any) -> None:
        assert config.audit.archive_url is not None
        self._cfg = config.audit
        self.paths = paths
        self.replica = replica_name(config)
        self.store: ObjectStore = open_store(config.audit.archive_url)
        self._rotate = rotate  # asks this process's writer to seal now
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rotate_etag: str | None = None
        self._acked = 0.0
        self.stats = ShipperStats()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="audit-shipper", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """A segment was sealed: ship it now."""
        self._wake.set()

    def ship_pending(self) -> int:
        """Ship every sealed local segment; returns how many went. Failures are counted
        and logged; their files stay for the next try."""
        shipped = 0
        with _ship_lock(self.paths):
            pending = sealed_segments(self.paths)
            for path in pending:
                try:
                    ship_segment(self.store, self.paths, self.replica, path, self._cfg.archive_lock_days)
                except (StoreError, OSError) as e:
                    self.stats.failures += 1
                    self.stats.last_error = str(e)
                    log.error("audit archive: %s not shipped (kept locally, retried): %s", path.stem, e)
                    break
                shipped += 1
                self.stats.shipped += 1
                self.stats.last_shipped_at = time.time()
            self.stats.backlog = len(sealed_segments(self.paths))
        if shipped and self.stats.backlog == 0:
            self.stats.last_error = None
        return shipped

    def _rotation_requested(self) -> float | None:
        """The time of a fleet reader's seal request newer than the last one served."""
        try:
            got = self.store.fetch(ROTATE_KEY, self._rotate_etag)
        except StoreError as e:
            self.stats.last_error = str(e)  # the store is down: /readyz says so at once
            return None
        self._rotate_etag = got.etag
        if got.body is None:
            return None
        try:
            at = float(json.loads(got.body)["at"])
        except (ValueError, KeyError, TypeError):
            return None
        return at if at > self._acked else None

    def _heartbeat(self, *, stopped: bool = False) -> None:
        status = {"replica": self.replica, "at": time.time(), "acked": self._acked,
                  "stopped": stopped, "backlog": self.stats.backlog}
        try:
            self.store.put(_status_key(self.replica), json.dumps(status).encode())
        except StoreError as e:
            self.stats.last_error = str(e)
            return
        if self.stats.backlog == 0:  # the store answers and nothing waits: the outage is over
            self.stats.last_error = None

    def _run(self) -> None:
        next_scan = 0.0
        # The status is written when it says something new (a seal request served) and
        # otherwise every few seconds, inside the window in which fleet readers count a
        # replica alive (request_fleet_rotation: 10 s at least): a PUT and its checksum
        # read each poll cost ~5 ms of CPU a second per process and two requests to the store.
        beat_every = max(self._cfg.archive_poll_s, _HEARTBEAT_S)
        next_beat = 0.0
        while not self._stop.is_set():
            acked = self._acked
            asked = self._rotation_requested()
            if asked is not None:
                self._rotate(asked)  # the writer seals what began before the request
            if asked is not None or self._wake.is_set() or time.monotonic() >= next_scan:
                self._wake.clear()
                self.ship_pending()
                next_scan = time.monotonic() + 10 * self._cfg.archive_poll_s
                if asked is not None and self.stats.backlog == 0:
                    self._acked = asked
            if self._acked != acked or time.monotonic() >= next_beat:
                self._heartbeat()
                next_beat = time.monotonic() + beat_every
            self._wake.wait(self._cfg.archive_poll_s)

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop the thread and ship what is sealed (the writer sealed its last segment)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
        deadline = time.monotonic() + timeout_s
        while self.ship_pending() or self.stats.backlog:
            if time.monotonic() > deadline:
                log.error("audit archive: %d sealed segment(s) left unshipped at shutdown; "
                          "the next start ships them", self.stats.backlog)
                break
            time.sleep(0.5)
        self._heartbeat(stopped=True)

    def status(self) -> dict[str, Any]:
        return {"archive": self.store.url, "replica": self.replica, "shipped": self.stats.shipped,
                "backlog": self.stats.backlog, "failures": self.stats.failures,
                "last_error": self.stats.last_error}


# -- the fleet reader's side --------------------------------------------------------------


@dataclass
class FleetSegments:
    """What a fleet reader fetched: local copies of archived segments and checkpoints."""

    #: segment_id -> local path of the verified copy
    files: dict[str, Path] = field(default_factory=dict)
    #: segment_id -> replica
    replicas: dict[str, str] = field(default_factory=dict)
    #: segment_id -> why it could not be used
    problems: dict[str, str] = field(default_factory=dict)
    checkpoint_dir: Path | None = None
    #: replicas that did not answer the seal request in time (their newest records may be missing)
    silent: list[str] = field(default_factory=list)


def request_fleet_rotation(store: ObjectStore, wait_s: float, poll_s: float) -> list[str]:
    """Ask every live replica to seal and ship; returns those that did not answer in time."""
    asked = time.time()
    store.put(ROTATE_KEY, json.dumps({"at": asked}).encode())
    stale_s = max(10.0, 5 * poll_s)
    deadline = time.monotonic() + wait_s
    while True:
        waiting = []
        for key in store.list("replicas/"):
            if "/status-" not in key or not key.endswith(".json"):
                continue
            try:
                status = json.loads(store.get(key))
            except (StoreError, ValueError):
                continue
            alive = not status.get("stopped") and float(status.get("at", 0)) >= asked - stale_s
            if alive and float(status.get("acked", 0)) < asked:
                waiting.append(str(status.get("replica")))
        if not waiting or time.monotonic() >= deadline:
            return sorted(waiting)
        time.sleep(0.2)


def fetch_fleet(config: Config, paths: AuditPaths, *, fresh: bool) -> FleetSegments:
    """Download (into ``<audit dir>/fleet-cache``) every archived segment, verified."""
    if config.audit.archive_url is None:
        raise ValueError("--fleet needs [audit] archive_url (where the replicas ship their segments)")
    store = open_store(config.audit.archive_url)
    out = FleetSegments()
    if fresh:
        out.silent = request_fleet_rotation(store, config.audit.fleet_rotation_wait_s,
                                            config.audit.archive_poll_s)
    cache = paths.root / "fleet-cache"
    cps_dir = cache / "checkpoints"
    cps_dir.mkdir(parents=True, exist_ok=True)
    out.checkpoint_dir = cps_dir
    for key in sorted(store.list("replicas/")):
        if "/manifests/" not in key or not key.endswith(".json"):
            continue
        try:
            manifest = json.loads(store.get(key))
            replica, segment_id = str(manifest["replica"]), str(manifest["segment_id"])
        except (StoreError, ValueError, KeyError) as e:
            out.problems[key] = f"manifest unreadable: {e}"
            continue
        out.replicas[segment_id] = replica
        local = cache / replica / f"{segment_id}.duckdb"
        try:
            if not local.exists() or sha256_hex(local.read_bytes()) != manifest["sha256"]:
                local.parent.mkdir(parents=True, exist_ok=True)
                data = store.get(_segment_key(replica, segment_id))
                if sha256_hex(data) != manifest["sha256"]:
                    out.problems[segment_id] = "archived segment does not match its manifest's SHA-256"
                    continue
                tmp = local.with_suffix(".tmp")
                tmp.write_bytes(data)
                tmp.replace(local)
            cps = store.get(_checkpoints_key(replica, segment_id))
            if sha256_hex(cps) != manifest["checkpoints_sha256"]:
                out.problems[segment_id] = "archived checkpoints do not match the manifest's SHA-256"
                continue
            external_path(cps_dir, segment_id).write_bytes(cps)
        except StoreError as e:
            out.problems[segment_id] = f"missing from the archive ({e})"
            continue
        out.files[segment_id] = local
    return out
