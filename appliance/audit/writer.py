"""The group-commit writer: one thread per server process owns that process's segment.

Callers hand over a finished row and a completion callback. The thread takes whatever is
queued (waiting up to ``commit_max_delay_ms`` for more, at most ``commit_max_records``),
chains it and appends it to the segment's encrypted journal with one fsync, and only then
completes the callbacks: a record is acknowledged once it is on disk. Journaled rows are
inserted into DuckDB in batches (``flush_interval_ms``, ``flush_max_records``) and before
every checkpoint. The thread also signs checkpoints on schedule and rotates (seals) the
segment when it is large, old, or a reader asks for it by touching ``rotate.request``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from appliance.audit.journal import journal_path
from appliance.audit.keys import SigningKey
from appliance.audit.rows import admin_row
from appliance.audit.segments import (
    AuditPaths,
    SegmentFile,
    SegmentLocked,
    db_key,
    new_segment_id,
    replica_name,
    segment_start,
    signer,
)
from appliance.config import Config

if TYPE_CHECKING:
    from appliance.audit.archive import Shipper

log = logging.getLogger(__name__)

Done = Callable[[BaseException | None], None]

#: How long a readiness answer is reused (seconds): a statvfs per request is cheap, but
#: under load this makes it one per half second.
_READY_CHECK_S = 0.5


@dataclass(slots=True)
class _Item:
    row: dict[str, Any]
    done: Done | None = None
    #: asyncio callers: the future is settled on its loop, one wake-up per loop per commit.
    loop: asyncio.AbstractEventLoop | None = None
    fut: asyncio.Future[None] | None = None


def _settle_all(futs: list[asyncio.Future[None]], err: BaseException | None) -> None:
    for fut in futs:
        if fut.done():
            continue
        if err is None:
            fut.set_result(None)
        else:
            fut.set_exception(err)


@dataclass
class WriterStats:
    records: int = 0
    commits: int = 0
    segments_sealed: int = 0
    checkpoints: int = 0
    errors: int = 0
    last_error: str | None = field(default=None)


class WriterClosed(RuntimeError):
    pass


class AuditWriter:
    def __init__(self, config: Config) -> None:
        self._cfg = config.audit
        self._config = config
        self.paths = AuditPaths.from_config(config)
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._segment: SegmentFile | None = None
        self._key: str = ""
        self._signer: SigningKey | None = None
        self._closed = False
        self._last_rotate_check = 0.0
        self._rotate_seen_ns = 0
        self.stats = WriterStats()
        self._replica = replica_name(config)
        #: A fleet reader asked (through the shipper) to seal now; set again once sealed.
        self._seal_request = threading.Event()
        self._sealed = threading.Event()
        #: Ships sealed segments to ``[audit] archive_url`` (None: they stay local).
        self.shipper: Shipper | None = None
        #: The last commit failed (cleared by the next one, or by a test write that works).
        self._failing = False
        #: Segments left after a failed commit, not yet recovered.
        self._abandoned: set[str] = set()
        self._recovery_tried_at = -1.0
        self._checked_at = -1.0
        self._unready: str | None = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Load keys, seal segments left by dead writers, start the writer thread."""
        self._key = db_key(self._config)
        self._signer = signer(self._config, self.paths)
        for d in (self.paths.segments, self.paths.checkpoints, self.paths.tmp):
            d.mkdir(parents=True, exist_ok=True)
        try:
            self._rotate_seen_ns = self.paths.rotate_request.stat().st_mtime_ns
        except FileNotFoundError:
            self._rotate_seen_ns = 0
        recover_orphans(self._config, self.paths, self._key, self._signer)
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()
        if self._cfg.archive_url is not None:
            from appliance.audit.archive import Shipper

            self.shipper = Shipper(self._config, self.paths, rotate=self.seal_now)
            self.shipper.start()  # ships what earlier runs left sealed (a crash, too) first

    def seal_now(self, _asked_at: float = 0.0, timeout_s: float = 5.0) -> None:
        """Seal the current segment now and wait for it (a fleet reader's request)."""
        self._sealed.clear()
        self._seal_request.set()
        self._sealed.wait(timeout_s)

    def close(self) -> None:
        """Write everything queued, seal the segment, stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join()
        if self.shipper is not None:
            self.shipper.close(self._config.fleet.drain_timeout_s)

    def submit(self, row: dict[str, Any], done: Done) -> None:
        """Queue ``row``; ``done(error_or_None)`` is called from the writer thread."""
        if self._closed:
            raise WriterClosed("the audit writer is closed")
        self._queue.put(_Item(row, done=done))

    def submit_async(self, row: dict[str, Any]) -> asyncio.Future[None]:
        """Queue ``row``; the returned future resolves once the row is durable."""
        if self._closed:
            raise WriterClosed("the audit writer is closed")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._queue.put(_Item(row, loop=loop, fut=fut))
        return fut

    def pending(self) -> int:
        return self._queue.qsize()

    # -- readiness -------------------------------------------------------------------

    def unready(self) -> str | None:
        """Why the log cannot take a record now, or None. Asked before every request (so
        a request is refused before it goes upstream, rather than answered and then found
        unrecordable); the file system is looked at no more than every half second."""
        now = time.monotonic()
        if now - self._checked_at >= _READY_CHECK_S:
            self._checked_at = now
            self._unready = self._probe()
        return self._unready

    def _probe(self) -> str | None:
        try:
            fs = os.statvfs(self.paths.segments)
        except OSError:
            return "the audit directory cannot be read"
        if fs.f_flag & os.ST_RDONLY:
            return "the audit file system is read-only"
        if fs.f_bavail * fs.f_frsize < self._cfg.min_free_mb * 1024 * 1024:
            return "the audit disk is full"
        if self._failing:
            # A commit failed and none has worked since: see whether a write goes through.
            probe = self.paths.tmp / f".probe-{os.getpid()}"
            try:
                with open(probe, "wb") as f:
                    f.write(b"\0" * 4096)
                    f.flush()
                    os.fsync(f.fileno())
                probe.unlink()
            except OSError:
                probe.unlink(missing_ok=True)
                return "the audit log cannot write"
            self._failing = False
        return None

    # -- the thread ------------------------------------------------------------------

    def _run(self) -> None:
        max_n = self._cfg.commit_max_records
        delay = self._cfg.commit_max_delay_ms / 1000.0
        stopping = False
        while not stopping:
            try:
                first = self._queue.get(timeout=self._idle_wait())
            except queue.Empty:
                self._flush()
                self._housekeeping()
                continue
            if first is None:
                break
            batch = [first]
            deadline = time.monotonic() + delay
            while len(batch) < max_n:
                try:
                    timeout = deadline - time.monotonic()
                    item = self._queue.get_nowait() if timeout <= 0 else self._queue.get(timeout=timeout)
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            self._write(batch)
            self._flush()
            self._housekeeping()
        # drain whatever raced with close()
        rest: list[_Item] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                rest.append(item)
        if rest:
            self._write(rest)
        try:
            self._seal()
        except Exception as e:  # noqa: BLE001 - e.g. a full disk: the next start recovers it
            log.error("sealing the audit segment at shutdown failed (recovered at the next "
                      "start): %s", type(e).__name__)

    def _write(self, batch: list[_Item]) -> None:
        err: BaseException | None = None
        try:
            if self._segment is None:
                seg = SegmentFile.create(self.paths, self._key, new_segment_id(self._cfg.segment_prefix, host=self._replica))
                seg.open_journal(self._key)
                self._segment = seg
            self._segment.append_journaled([it.row for it in batch])
            self.stats.records += len(batch)
            self.stats.commits += 1
            self._failing = False
        except Exception as e:  # noqa: BLE001 - the callers learn it; the request fails closed
            err = e
            self._failing = True
            self._checked_at = -1.0  # the next request looks again
            self.stats.errors += 1
            self.stats.last_error = type(e).__name__
            log.error("audit commit failed: %s", type(e).__name__)
            self._abandon_segment()
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for it in batch:
            if it.fut is not None and it.loop is not None:
                by_loop.setdefault(it.loop, []).append(it.fut)
            elif it.done is not None:
                try:
                    it.done(err)
                except Exception:  # a callback must not stop the writer
                    log.exception("audit completion callback failed")
        for loop, futs in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle_all, futs, err)
            except RuntimeError:  # that loop is closed: nobody waits any more
                pass

    def _idle_wait(self) -> float:
        """How long to wait for the next record: until pending rows are due, at most 0.2 s."""
        seg = self._segment
        if seg is None or not seg.pending:
            return 0.2
        due = seg.pending_since + self._cfg.flush_interval_ms / 1000.0 - time.monotonic()
        return min(0.2, max(due, 0.0005))

    def _flush(self) -> None:
        """Insert the journaled rows into DuckDB when they are due (they are durable already)."""
        seg = self._segment
        if seg is None or not seg.pending:
            return
        due = (
            len(seg.pending) >= self._cfg.flush_max_records
            or time.monotonic() - seg.pending_since >= self._cfg.flush_interval_ms / 1000.0
        )
        if not due:
            return
        try:
            seg.flush()
        except Exception as e:  # noqa: BLE001 - the rows stay journaled; retried next time
            self.stats.errors += 1
            self.stats.last_error = type(e).__name__
            log.error("audit segment insert failed (records stay in the journal): %s", type(e).__name__)

    def _abandon_segment(self) -> None:
        """After a failed commit, start afresh: the next record opens a new segment. The
        old one's journal still holds every record acknowledged in it; it is recovered
        (replayed and sealed) once writes work again, see :meth:`_recover_abandoned`."""
        seg, self._segment = self._segment, None
        if seg is not None:
            self._abandoned.add(seg.segment_id)
            try:
                seg.close()
            except Exception:  # noqa: BLE001 - already failing; keep the writer alive
                log.error("closing the failed audit segment failed")

    def _recover_abandoned(self) -> None:
        """Seal the segments left after failed commits, as a restart would (their journals
        replayed, a ``recover`` record appended), so that what was acknowledged in them is
        in the searchable, verifiable log without waiting for a restart."""
        now = time.monotonic()
        if self._failing or now - self._recovery_tried_at < 1.0:
            return
        self._recovery_tried_at = now
        assert self._signer is not None
        try:
            recovered = recover_orphans(self._config, self.paths, self._key, self._signer)
        except Exception as e:  # noqa: BLE001 - retried in a second; the journals stay
            log.error("recovering the abandoned audit segment failed: %s", type(e).__name__)
            return
        # Done with those recovered, and with those whose journal is gone (sealed since);
        # one a reader held locked just now is tried again.
        self._abandoned = {
            s for s in self._abandoned if s not in recovered and _journal_left(self.paths, s)
        }

    def _housekeeping(self) -> None:
        if self._abandoned:
            self._recover_abandoned()
        seg = self._segment
        if seg is None:
            if self._seal_request.is_set():
                self._seal_request.clear()
                self._sealed.set()
            return
        assert self._signer is not None
        now = time.monotonic()
        rotate = (
            seg.size >= self._cfg.segment_max_records
            or time.time() - seg.created_at >= self._cfg.segment_max_age_s
            or self._rotation_requested(now)
            or self._seal_request.is_set()
        )
        try:
            if rotate:
                self._seal()
                if self._seal_request.is_set():
                    self._seal_request.clear()
                    self._sealed.set()
            elif seg.size > seg.last_checkpoint_size and (
                now - seg.last_checkpoint_at >= self._cfg.checkpoint_interval_s
                or seg.size - seg.last_checkpoint_size >= self._cfg.checkpoint_every_records
            ):
                seg.checkpoint(self._signer, self.paths.checkpoint_dirs())
                self.stats.checkpoints += 1
                self._release_memory(seg)
        except Exception as e:  # noqa: BLE001 - retried at the next interval
            self.stats.errors += 1
            self.stats.last_error = type(e).__name__
            log.error("audit checkpoint failed: %s", type(e).__name__)

    def _release_memory(self, seg: SegmentFile) -> None:
        """Let go of what DuckDB holds of the live segment (see
        :meth:`SegmentFile.release_memory`). Should the file not re-attach, the segment is
        given up like one whose commit failed: its journal holds every record since the
        checkpoint, and it is recovered and sealed in the background."""
        try:
            seg.release_memory()
        except Exception as e:  # noqa: BLE001 - recovered like a failed commit
            self.stats.errors += 1
            self.stats.last_error = type(e).__name__
            log.error("re-opening the audit segment failed: %s", type(e).__name__)
            self._abandon_segment()

    def _rotation_requested(self, now: float) -> bool:
        if now - self._last_rotate_check < 0.05:
            return False
        self._last_rotate_check = now
        try:
            mtime = self.paths.rotate_request.stat().st_mtime_ns
        except FileNotFoundError:
            return False
        if mtime != self._rotate_seen_ns:
            self._rotate_seen_ns = mtime
            seg = self._segment
            return seg is not None and mtime / 1e9 >= seg.created_at
        return False

    def _seal(self) -> None:
        seg, self._segment = self._segment, None
        if seg is None:
            return
        assert self._signer is not None
        sealed = False
        try:
            seg.checkpoint(self._signer, self.paths.checkpoint_dirs(), sealed=True)
            sealed = True
            self.stats.segments_sealed += 1
        finally:
            seg.close(sealed=sealed)
        if self.shipper is not None:
            self.shipper.wake()


def _journal_left(paths: AuditPaths, segment_id: str) -> bool:
    """Whether a segment still has a journal beside it (recovery removes it)."""
    return journal_path(paths.segments / f"{segment_id}.duckdb").exists()


def recover_orphans(config: Config, paths: AuditPaths, key: str, sign: SigningKey) -> list[str]:
    """Seal segments whose writer died (not locked, no sealed checkpoint covering them).

    A ``recover`` record is appended first, so the log itself says that its writer
    ended without sealing. Returns the ids of the recovered segments.
    """
    from appliance.audit.checkpoints import load_external

    sealed = {
        (cp.segment_id, cp.tree_size) for cp in load_external(paths.checkpoints) if cp.sealed
    }
    recovered: list[str] = []
    for path in paths.segment_files():
        segment_id = path.stem
        if segment_start(segment_id) is None:  # the admin segment is never sealed
            continue
        if any(s == segment_id for s, _ in sealed):
            # sealed after its last insert: a journal left beside it holds nothing new
            journal_path(path).unlink(missing_ok=True)
            continue
        try:
            seg = SegmentFile.open_existing(paths, key, path)
        except SegmentLocked:
            continue  # a live writer (or a reader) holds it
        try:
            # Re-check under the lock: its writer may have sealed it since we looked.
            sealed_inside = seg.conn.execute(
                "SELECT count(*) FROM checkpoints WHERE sealed AND tree_size = ?", [seg.size]
            ).fetchone()
            if (seg.segment_id, seg.size) in sealed or (sealed_inside and sealed_inside[0]):
                continue
            replayed = seg.replay_journal(key)
            seg.append([admin_row("recover", "appliance",
                                  {"records_found": seg.size, "replayed_from_journal": replayed})])
            seg.checkpoint(sign, paths.checkpoint_dirs(), sealed=True)
            recovered.append(seg.segment_id)
            log.warning("audit segment %s recovered and sealed", seg.segment_id)
        finally:
            seg.close(sealed=seg.segment_id in recovered)
        journal_path(path).unlink(missing_ok=True)
    return recovered
