"""Build a directory once, even when several processes race for it.

Model builds take seconds to minutes; pytest-xdist workers and several server processes
may all ask for the same model at start-up. One takes a file lock and builds into a
private temporary directory, then renames it into place (atomic on one file system);
the others wait on the lock and find the finished directory. A crashed build leaves
only a temporary directory behind, never a half-written model.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock, Timeout

log = logging.getLogger(__name__)


def build_once(
    target: Path,
    build: Callable[[Path], object],
    *,
    is_done: Callable[[Path], bool] | None = None,
    timeout_s: float = 1800.0,
    waiting: Callable[[], object] | None = None,
) -> Path:
    """Return ``target``, calling ``build(tmp_dir)`` first if it does not exist yet.

    ``build`` fills the empty directory it is given; on success that directory becomes
    ``target``. ``is_done`` decides whether an existing ``target`` is usable (default:
    it exists); an unusable one is replaced. ``waiting`` is called when another process
    holds the lock (it is building the same directory): a caller that reports progress
    says so rather than falling silent.
    """
    done = is_done or (lambda p: p.is_dir())
    if done(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(target.parent / f".{target.name}.lock"), timeout=timeout_s)
    if waiting is not None:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            waiting()
        else:
            lock.release()
    with lock:
        if done(target):
            return target
        tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            build(tmp)
            if target.exists():
                # An incomplete leftover (e.g. a manifest without weights): move it aside.
                stale = target.parent / f".{target.name}.stale-{uuid.uuid4().hex[:8]}"
                os.rename(target, stale)
                shutil.rmtree(stale, ignore_errors=True)
            os.rename(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


def exit_with_parent(parent: int, poll_s: float = 1.0) -> None:
    """End this build process when ``parent`` (the process that waits for it) is gone.

    A server killed while it waits for a model leaves its build child, and that child's
    training workers, running on for minutes for nobody: the finished directory would
    land under a temporary name no one renames. Call first thing in such a child.
    """
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
