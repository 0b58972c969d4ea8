"""Segment files: where they live, how they are opened, and how records are appended.

One process writes one segment at a time (DuckDB lets one process write a file). A
segment file is created lazily with its first record, so an idle writer holds no file.
Its writer also holds an flock on a ``.lock`` file beside it for the segment's whole life
(:class:`WriterLock`): DuckDB's own file lock lapses while the writer re-opens the file to
let go of its memory, and every attach checks the flock first.
Sealing signs a final checkpoint and closes the file; from then on any process may read
it. Appending assigns ``seq``, ``prev_hash`` and ``leaf_hash`` and extends the Merkle
frontier; a failed commit rolls the chain state back with the transaction. A writer's
segment appends through its journal (:mod:`appliance.audit.journal`) and inserts into
DuckDB in batches; a checkpoint or close inserts whatever is still pending first.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import functools
import os
import re
import socket
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from appliance.audit.checkpoints import Checkpoint, append_external
from appliance.audit.journal import Journal, JournalCorrupt, journal_key, journal_path, read_frames
from appliance.audit.keys import SigningKey, load_secret, load_signing_key
from appliance.audit.merkle import MerkleFrontier, leaf_hash
from appliance.audit.schema import (
    COLUMNS,
    ARROW_SCHEMA,
    COLUMN_NAMES,
    SCHEMA_VERSION,
    canonical_bytes_fast,
    genesis_hash,
    render_schema_sql,
)
from appliance.config import Config

_SEGMENT_RE = re.compile(r"^(?P<prefix>[A-Za-z0-9_]+)-(?P<host>[A-Za-z0-9_.]+)-(?P<pid>\d+)-(?P<start>\d{8}T\d{12})Z$")
ADMIN_PREFIX = "admin"


class SegmentLocked(Exception):
    """Another process holds the segment open for writing."""


@dataclass(frozen=True)
class AuditPaths:
    """Every file of the audit log, derived from the config."""

    root: Path
    data_dir: Path
    segments: Path
    checkpoints: Path
    mirror: Path | None
    keystore: Path
    rotate_request: Path
    public_key: Path
    signing_key: Path
    tmp: Path

    @classmethod
    def from_config(cls, config: Config) -> AuditPaths:
        root = config.resolve(config.audit.dir)
        data_dir = config.storage.data_dir
        mirror = config.audit.checkpoint_mirror_dir
        return cls(
            root=root,
            data_dir=data_dir,
            segments=root / "segments",
            checkpoints=root / "checkpoints",
            mirror=None if mirror is None else config.resolve(mirror),
            keystore=root / "keystore.json",
            rotate_request=root / "rotate.request",
            public_key=root / "signing.pub.pem",
            signing_key=config.resolve(config.audit.signing_key_file),
            tmp=root / "tmp",
        )

    def checkpoint_dirs(self) -> list[Path]:
        return [self.checkpoints] + ([self.mirror] if self.mirror is not None else [])

    def segment_files(self) -> list[Path]:
        if not self.segments.is_dir():
            return []
        return sorted(self.segments.glob("*.duckdb"))


def db_key(config: Config) -> str:
    return load_secret(config.audit.db_key, config.storage.data_dir, "audit database")


def signer(config: Config, paths: AuditPaths) -> SigningKey:
    return load_signing_key(paths.signing_key, paths.public_key)


def host_name() -> str:
    return re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname()) or "host"


def replica_name(config: Config) -> str:
    """This replica's name in segment ids and the archive: ``[fleet] replica`` or the host."""
    return config.fleet.replica or host_name()


def new_segment_id(prefix: str, now: float | None = None, host: str | None = None) -> str:
    stamp = dt.datetime.fromtimestamp(now or time.time(), dt.UTC).strftime("%Y%m%dT%H%M%S%f")
    return f"{prefix}-{host or host_name()}-{os.getpid()}-{stamp}Z"


def admin_segment_id() -> str:
    return f"{ADMIN_PREFIX}-{host_name()}"


def segment_start(segment_id: str) -> float | None:
    """Creation time encoded in a writer segment's name (None for the admin segment)."""
    m = _SEGMENT_RE.match(segment_id)
    if m is None:
        return None
    return dt.datetime.strptime(m["start"], "%Y%m%dT%H%M%S%f").replace(tzinfo=dt.UTC).timestamp()


def httpfs_extension_path() -> Path:
    """The httpfs extension shipped by ``duckdb-extension-httpfs`` (OpenSSL AES-GCM, offline)."""
    base = resources.files("duckdb_extension_httpfs") / "extensions" / f"v{duckdb.__version__}"
    return Path(str(base / "httpfs.duckdb_extension"))


#: DuckDB's memory bound per connection: large sorts (verification reads a whole segment in
#: order) spill to encrypted temporary files instead of growing without limit.
MEMORY_LIMIT = "384MB"


#: Batches up to this size are inserted with VALUES; larger ones through Arrow.
_VALUES_MAX_ROWS = 8


@functools.lru_cache(maxsize=_VALUES_MAX_ROWS)
def _insert_values(n: int) -> str:
    # Timestamps travel as epoch microseconds, as in the Arrow batches.
    row = "(" + ", ".join("make_timestamp(?)" if c.kind == "ts" else "?" for c in COLUMNS) + ")"
    return "INSERT INTO records (" + ", ".join(COLUMN_NAMES) + ") VALUES " + ", ".join([row] * n)


def connect(tmp_dir: Path | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with OpenSSL crypto loaded, bounded memory, encrypted spills."""
    conn = duckdb.connect(
        ":memory:",
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
    )
    conn.execute(f"LOAD '{httpfs_extension_path()}'")
    conn.execute("SET temp_file_encryption = true")
    conn.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    if tmp_dir is not None:
        conn.execute(f"SET temp_directory = '{_quote(str(tmp_dir))}'")
    return conn


def _quote(text: str) -> str:
    return text.replace("'", "''")


def lock_path(segment: Path) -> Path:
    """The writer's flock file beside a segment (see :class:`WriterLock`)."""
    return segment.with_name(segment.name + ".lock")


class WriterLock:
    """An exclusive flock that a segment's writer holds from creation until it closes.

    DuckDB's file lock is what first kept other processes out of a live segment, but it
    is let go whenever the writer re-opens the file (:meth:`SegmentFile.release_memory`);
    in that moment a reader could attach, and the writer could not get its file back, or
    crash recovery could seal a live segment. This flock is never let go while the segment
    is live; :func:`attach` checks it before DuckDB's. An flock (unlike DuckDB's fcntl
    lock) belongs to an open file, so a reader in the writer's own process is kept out too.
    """

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, segment: Path, *, wait_s: float = 0.0) -> WriterLock:
        """Raises :class:`SegmentLocked` if another writer still holds it after ``wait_s``."""
        fd = os.open(lock_path(segment), os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return cls(fd)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise SegmentLocked(segment.name) from None
                time.sleep(0.05)
            except BaseException:
                os.close(fd)
                raise

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the file lets the flock go
            self._fd = None


@contextmanager
def _no_writer(segment: Path, *, shared: bool) -> Iterator[None]:
    """While this holds, no writer holds the segment's flock (see :class:`WriterLock`)."""
    try:
        fd = os.open(lock_path(segment), os.O_RDONLY)
    except FileNotFoundError:
        yield  # never written since locks came in: DuckDB's lock is the only one
        return
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise SegmentLocked(segment.name) from None
        raise
    try:
        yield
    finally:
        os.close(fd)


def attach(
    conn: duckdb.DuckDBPyConnection, path: Path, alias: str, key: str, *, read_only: bool,
    held: WriterLock | None = None,
) -> None:
    """Attach an encrypted segment; raises :class:`SegmentLocked` if another process writes it.

    ``held``: the caller holds the segment's :class:`WriterLock` (its own writer).
    """
    mode = ", READ_ONLY" if read_only else ""
    sql = f"ATTACH '{_quote(str(path))}' AS {alias} (ENCRYPTION_KEY '{_quote(key)}'{mode})"
    try:
        if held is not None:
            conn.execute(sql)
        else:
            with _no_writer(path, shared=read_only):
                conn.execute(sql)
    except duckdb.IOException as e:
        if "lock" in str(e).lower():
            raise SegmentLocked(str(path.name)) from None
        raise


class SegmentFile:
    """One open, writable segment: the chain state plus the DuckDB attachment."""

    def __init__(
        self, conn: duckdb.DuckDBPyConnection, path: Path, segment_id: str, lock: WriterLock, key: str
    ) -> None:
        self.conn = conn
        self.path = path
        self.segment_id = segment_id
        self._lock = lock
        self._key = key
        self.frontier = MerkleFrontier()
        self.prev = genesis_hash(segment_id)
        # the time in the name: readers compare it with their rotation request
        self.created_at = segment_start(segment_id) or time.time()
        self.last_checkpoint_size = 0
        self.last_checkpoint_at = time.monotonic()
        self.journal: Journal | None = None
        #: Rows durable in the journal, not yet inserted; since when the oldest waits.
        self.pending: list[dict[str, Any]] = []
        self.pending_since = 0.0

    @property
    def size(self) -> int:
        return self.frontier.size

    @classmethod
    def create(cls, paths: AuditPaths, key: str, segment_id: str) -> SegmentFile:
        paths.segments.mkdir(parents=True, exist_ok=True)
        path = paths.segments / f"{segment_id}.duckdb"
        if path.exists():
            raise FileExistsError(path.name)
        lock = WriterLock.acquire(path)
        conn = connect(paths.tmp)
        try:
            attach(conn, path, "seg", key, read_only=False, held=lock)
        except BaseException:
            conn.close()
            lock.release()
            raise
        seg = cls(conn, path, segment_id, lock, key)
        conn.execute("USE seg")
        conn.execute("SET threads = 1")  # small batches: extra threads only cost CPU
        conn.execute(render_schema_sql())
        conn.execute(
            "INSERT INTO segment_info VALUES (?, ?, ?, ?, make_timestamp(?), ?)",
            [segment_id, SCHEMA_VERSION, host_name(), os.getpid(), round(seg.created_at * 1e6), genesis_hash(segment_id)],
        )
        conn.execute("CHECKPOINT")
        return seg

    @classmethod
    def open_existing(cls, paths: AuditPaths, key: str, path: Path, *, wait_s: float = 0.0) -> SegmentFile:
        """Open a segment another process left (admin segment, crash recovery)."""
        deadline = time.monotonic() + wait_s
        lock = WriterLock.acquire(path, wait_s=wait_s)
        conn = connect(paths.tmp)
        try:
            while True:  # a reader may hold DuckDB's lock for a moment
                try:
                    attach(conn, path, "seg", key, read_only=False, held=lock)
                    break
                except SegmentLocked:
                    if time.monotonic() >= deadline:
                        raise
                    time.sleep(0.05)
            conn.execute("USE seg")
            conn.execute("SET threads = 1")
            row = conn.execute("SELECT segment_id FROM segment_info").fetchone()
            if row is None:
                raise ValueError(f"{path.name}: no segment_info")
        except BaseException:
            conn.close()
            lock.release()
            raise
        seg = cls(conn, path, str(row[0]), lock, key)
        for (h,) in conn.execute("SELECT leaf_hash FROM records ORDER BY seq").fetchall():
            seg.frontier.append(bytes(h))
            seg.prev = bytes(h)
        cp = conn.execute("SELECT max(tree_size) FROM checkpoints").fetchone()
        seg.last_checkpoint_size = int(cp[0]) if cp and cp[0] is not None else 0
        return seg

    @classmethod
    def create_or_open(cls, paths: AuditPaths, key: str, segment_id: str, *, wait_s: float) -> SegmentFile:
        path = paths.segments / f"{segment_id}.duckdb"
        if not path.exists():
            try:
                return cls.create(paths, key, segment_id)
            except (FileExistsError, SegmentLocked):
                pass
        return cls.open_existing(paths, key, path, wait_s=wait_s)

    def open_journal(self, key: str) -> None:
        """Append through a journal from now on (see :meth:`append_journaled`)."""
        self.journal = Journal(journal_path(self.path), self.segment_id, journal_key(key))

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Chain and insert ``rows`` in one transaction; durable when this returns."""
        saved = self._chain(rows)
        try:
            self._insert(rows)
        except BaseException:
            self._unchain(saved)
            raise

    def append_journaled(self, rows: list[dict[str, Any]]) -> None:
        """Chain ``rows`` and make them durable in the journal; :meth:`flush` inserts them."""
        assert self.journal is not None
        saved = self._chain(rows)
        try:
            self.journal.append(rows)
        except BaseException:
            self._unchain(saved)
            raise
        if not self.pending:
            self.pending_since = time.monotonic()
        self.pending.extend(rows)

    def flush(self) -> None:
        """Insert the journaled rows in one transaction, then empty the journal.

        On failure the rows stay pending (and journaled) for the next try or for recovery.
        """
        if not self.pending:
            return
        self._insert(self.pending)
        self.pending = []
        if self.journal is not None:
            self.journal.truncate()

    def _chain(self, rows: list[dict[str, Any]]) -> tuple[list[tuple[int, bytes]], int, bytes]:
        saved = (list(self.frontier._nodes), self.frontier.size, self.prev)
        for row in rows:
            row["seq"] = self.frontier.size
            row["prev_hash"] = self.prev
            h = leaf_hash(canonical_bytes_fast(self.segment_id, row))
            row["leaf_hash"] = h
            self.frontier.append(h)
            self.prev = h
        return saved

    def _unchain(self, saved: tuple[list[tuple[int, bytes]], int, bytes]) -> None:
        self.frontier._nodes, self.frontier.size, self.prev = saved

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        cols: dict[str, list[Any]] = {name: [row.get(name) for row in rows] for name in COLUMN_NAMES}
        self.conn.execute("BEGIN TRANSACTION")
        try:
            if len(rows) <= _VALUES_MAX_ROWS:
                # A few rows (light load): one prepared INSERT, no Arrow round trip.
                self.conn.execute(_insert_values(len(rows)), [v for row in zip(*cols.values(), strict=True) for v in row])
            else:
                self.conn.register("audit_batch", pa.Table.from_pydict(cols, schema=ARROW_SCHEMA))
                self.conn.execute("INSERT INTO records SELECT * FROM audit_batch")
                self.conn.unregister("audit_batch")
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def replay_journal(self, key: str) -> int:
        """Insert what a dead writer journaled but never inserted; returns how many rows."""
        path = journal_path(self.path)
        if not path.exists():
            return 0
        rows = list(read_frames(path, self.segment_id, journal_key(key), self.size))
        for i, row in enumerate(rows):
            if row["seq"] != self.size + i:
                raise JournalCorrupt(f"{path.name}: seq {row['seq']} where {self.size + i} was due")
        for start in range(0, len(rows), 10_000):
            self.append(rows[start : start + 10_000])  # re-chains to the same hashes
        return len(rows)

    def checkpoint(self, key: SigningKey, directories: Iterable[Path], *, sealed: bool = False) -> Checkpoint:
        self.flush()  # a checkpoint signs rows that are in the file
        cp = Checkpoint(
            segment_id=self.segment_id,
            tree_size=self.size,
            root_hash=self.frontier.root().hex(),
            time_us=round(time.time() * 1e6),
            sealed=sealed,
            key_id=key.key_id,
        ).signed(key)
        self.conn.execute(
            "INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?)",
            [cp.tree_size, cp.root_hash, cp.time_us, cp.sealed, cp.key_id, cp.signature],
        )
        append_external(directories, cp)
        # DuckDB keeps appended rows in memory until its own checkpoint (when the WAL
        # reaches 16 MB); checkpointing with every signed checkpoint moves them to the
        # file, so a live segment's memory does not grow with its records for an hour.
        self.conn.execute("CHECKPOINT seg")
        self.last_checkpoint_size = self.size
        self.last_checkpoint_at = time.monotonic()
        return cp

    def release_memory(self) -> None:
        """Detach and re-attach the file (about 2 ms), under the writer's flock.

        Even after a checkpoint DuckDB keeps the table data of a segment it has written in
        memory, pinned (a 48 MB memory limit makes the checkpoint itself fail), while the
        file stays attached: about 0.5-1.5 MiB per 1,000 records, for up to an hour. Detaching
        is what lets it go.
        """
        self.flush()
        self.conn.execute("USE memory")
        self.conn.execute("DETACH seg")
        attach(self.conn, self.path, "seg", self._key, read_only=False, held=self._lock)
        self.conn.execute("USE seg")

    def close(self, *, sealed: bool = False) -> None:
        """Insert what is pending and close; the journal is removed only once it is empty.

        ``sealed``: nobody writes the segment again, so its lock file goes too (removed
        while still held: whoever opens it afterwards finds no writer either way).
        """
        flushed = False
        try:
            self.flush()
            flushed = True
        finally:
            if self.journal is not None:
                self.journal.close(remove=flushed)
            try:
                self.conn.execute("USE memory")
                self.conn.execute("DETACH seg")
            finally:
                self.conn.close()
                if sealed:
                    lock_path(self.path).unlink(missing_ok=True)
                self._lock.release()


def iter_rows(conn: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Iterator[dict[str, Any]]:
    """Stream query rows as dicts, in Arrow batches (bounded memory)."""
    reader = conn.execute(sql, params or []).fetch_record_batch(4096)
    for batch in reader:
        yield from batch.to_pylist()
