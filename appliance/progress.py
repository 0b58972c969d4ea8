"""Progress of the long steps of a first start, for a person watching and for a log.

A first start builds models offline (minutes on two cores) and then loads them. Nobody
should stare at a silent terminal meanwhile, and nobody should read a log of a thousand
lines afterwards. :class:`BuildProgress` reports any number of concurrent steps:

- on a terminal (the stream is a TTY) one status line, redrawn in place a few times a
  second, shows every running step with its percentage and time left; a step's start, its
  phases and its end are printed above it, and so is whatever is logged meanwhile;
- otherwise (a service's journal, a container log, CI) each step logs a line when it
  starts (what it builds, roughly how long it takes), one per phase, one at most every
  ``log_every_s`` seconds with its percentage, elapsed time and estimated time left, and
  one when it ends.

A step's fraction is either measured (the German tagger counts its training batches) or,
for a step that cannot count, estimated from the time it is expected to take (shown with
a ``~``). Time left comes from the measured rate once there is one, else from the
expectation.

Builds run in child processes (torch and the exporters stay out of the server). A child
reports through :func:`child_report`, which writes JSON lines to the pipe that
:func:`run_child` hands it (the descriptor is in ``APPLIANCE_PROGRESS_FD``); the parent
feeds them into the step.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TextIO

log = logging.getLogger("appliance.progress")

#: Environment variable naming the file descriptor a child build reports progress to.
ENV_FD = "APPLIANCE_PROGRESS_FD"
#: Environment variable asking a child build to lower its CPU priority (``os.nice``).
ENV_NICE = "APPLIANCE_BUILD_NICE"


class Report(Protocol):
    """Where a long step says what it does: a phase note, and how far it is (0..1) when it
    can count. ``report("exporting to ONNX")``, ``report("training", 0.42)``."""

    def __call__(self, note: str, fraction: float | None = None) -> None: ...


def log_report(logger: logging.Logger) -> Report:
    """A :class:`Report` that only logs its notes (for a step run without a reporter)."""

    def report(note: str, fraction: float | None = None) -> None:
        if fraction is None:
            logger.info("%s", note)

    return report


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 5 s``: how people say how long something takes."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    return f"{s // 60} min {s % 60} s" if s % 60 else f"{s // 60} min"


def _clock(seconds: float) -> str:
    s = max(0, round(seconds))
    return f"{s // 60}:{s % 60:02d}"


@dataclass
class _State:
    name: str
    what: str
    expected_s: float
    started: float
    note: str = ""
    fraction: float | None = None
    #: (time, fraction) of the phase's first measured fraction above zero: the rate's origin.
    anchor: tuple[float, float] | None = None
    #: The fraction the current phase started from.
    phase_from: float = 0.0
    last_log: float = 0.0
    ended: bool = False


class Step:
    """One running step; call it as a :class:`Report`, then :meth:`done` or :meth:`failed`."""

    def __init__(self, owner: BuildProgress, state: _State) -> None:
        self._owner = owner
        self._state = state

    @property
    def name(self) -> str:
        return self._state.name

    def __call__(self, note: str, fraction: float | None = None) -> None:
        self._owner._update(self._state, note, fraction)

    def done(self, summary: str = "ready") -> None:
        self._owner._end(self._state, summary, failed=False)

    def failed(self, reason: str) -> None:
        self._owner._end(self._state, reason, failed=True)


class BuildProgress:
    """Reports concurrent steps on ``stream`` (default stderr): a status line on a terminal,
    log lines otherwise. Use as a context manager; :meth:`step` starts a step."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        tty: bool | None = None,
        log_every_s: float = 10.0,
        tick_s: float = 0.25,
        logger: logging.Logger = log,
    ) -> None:
        self._stream = stream if stream is not None else sys.stderr
        isatty = getattr(self._stream, "isatty", None)
        self.tty = bool(isatty and isatty()) if tty is None else tty
        self._log_every_s = log_every_s
        self._tick_s = tick_s
        self._log = logger
        self._lock = threading.RLock()
        self._steps: list[_State] = []
        self._line_shown = False
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._patched: list[tuple[logging.StreamHandler[TextIO], TextIO]] = []

    # -- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> BuildProgress:
        if self.tty:
            self._route_logging_above()
        self._ticker = threading.Thread(target=self._tick, name="progress", daemon=True)
        self._ticker.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        with self._lock:
            self._clear_line()
            for handler, stream in self._patched:
                handler.setStream(stream)
            self._patched.clear()

    def step(self, name: str, what: str, expected_s: float) -> Step:
        """Start a step: ``what`` says what is built or loaded, ``expected_s`` how long it
        usually takes (the first line says so; estimates lean on it until a rate exists)."""
        state = _State(name, what, max(expected_s, 1.0), time.monotonic())
        with self._lock:
            self._steps.append(state)
            state.last_log = state.started
            self.say(f"{name}: {what}, about {duration(expected_s)} ...")
        return Step(self, state)

    def say(self, message: str) -> None:
        """A line of its own: above the status line on a terminal, a log line otherwise."""
        with self._lock:
            if self.tty:
                self._clear_line()
                self._stream.write(message + "\n")
                self._stream.flush()
                self._draw()
            else:
                self._log.info("%s", message)

    # -- updates --------------------------------------------------------------------------

    def _update(self, s: _State, note: str, fraction: float | None) -> None:
        now = time.monotonic()
        with self._lock:
            if s.ended:
                return
            if note and note != s.note:
                # A new phase has its own pace: the rate is measured afresh from its first
                # step forward (not from its start: a phase may begin with loading).
                s.note = note
                s.anchor = None
                s.phase_from = fraction if fraction is not None else (s.fraction or 0.0)
                s.last_log = now
                self.say(f"{s.name}: {note}")
            if fraction is not None:
                fraction = min(max(fraction, 0.0), 1.0)
                s.fraction = max(fraction, s.fraction or 0.0)
                if s.anchor is None and s.fraction > s.phase_from:
                    s.anchor = (now, s.fraction)

    def _end(self, s: _State, summary: str, *, failed: bool) -> None:
        with self._lock:
            if s.ended:
                return
            s.ended = True
            self._steps.remove(s)
            took = duration(time.monotonic() - s.started)
            if failed:
                if self.tty:
                    self.say(f"{s.name}: FAILED after {took}: {summary}")
                else:
                    self._log.error("%s: failed after %s: %s", s.name, took, summary)
            else:
                self.say(f"{s.name}: {summary} ({took})")

    # -- figures --------------------------------------------------------------------------

    def _figures(self, s: _State, now: float) -> tuple[float, bool, float | None]:
        """(fraction, measured?, seconds left or None when past the expectation)."""
        elapsed = now - s.started
        if s.fraction is not None and s.fraction > 0.0:
            left: float | None
            if s.anchor is not None and now - s.anchor[0] >= 3.0 and s.fraction > s.anchor[1]:
                rate = (s.fraction - s.anchor[1]) / (now - s.anchor[0])
                left = (1.0 - s.fraction) / rate
            else:
                left = s.expected_s - elapsed if elapsed < s.expected_s else None
            return s.fraction, True, left
        frac = min(elapsed / s.expected_s, 0.99)
        return frac, False, (s.expected_s - elapsed if elapsed < s.expected_s else None)

    def _describe(self, s: _State, now: float) -> str:
        frac, measured, left = self._figures(s, now)
        pct = f"{'' if measured else '~'}{frac * 100:.0f}%"
        rest = f"about {duration(left)} left" if left is not None else "taking longer than usual"
        phase = f" ({s.note})" if s.note else ""
        return f"{s.name}: {pct}{phase}, {duration(now - s.started)} elapsed, {rest}"

    def _status_line(self, now: float) -> str:
        parts = []
        for s in self._steps:
            frac, measured, left = self._figures(s, now)
            width = 12
            filled = int(frac * width)
            bar = "#" * filled + "." * (width - filled)
            eta = f" {_clock(left)} left" if left is not None else f" {_clock(now - s.started)}"
            parts.append(f"{s.name} [{bar}] {'' if measured else '~'}{frac * 100:3.0f}%{eta}")
        line = " | ".join(parts)
        columns = shutil.get_terminal_size((100, 20)).columns
        return line[: max(columns - 1, 20)]

    # -- drawing --------------------------------------------------------------------------

    def _tick(self) -> None:
        while not self._stop.wait(self._tick_s):
            now = time.monotonic()
            with self._lock:
                if self.tty:
                    self._draw()
                    continue
                for s in list(self._steps):
                    if now - s.last_log >= self._log_every_s:
                        s.last_log = now
                        self._log.info("%s", self._describe(s, now))

    def _draw(self) -> None:
        if not self.tty:
            return
        if not self._steps:
            self._clear_line()
            return
        self._stream.write("\r\x1b[K" + self._status_line(time.monotonic()))
        self._stream.flush()
        self._line_shown = True

    def _clear_line(self) -> None:
        if self._line_shown:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._line_shown = False

    def _route_logging_above(self) -> None:
        """Log records written to our stream clear the status line first (no torn lines)."""
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is self._stream:
                old = handler.setStream(_Above(self, self._stream))
                if old is not None:
                    self._patched.append((handler, old))


class _Above:
    """A stream that clears the status line before each write (it is redrawn next tick)."""

    def __init__(self, owner: BuildProgress, stream: TextIO) -> None:
        self._owner = owner
        self._stream = stream

    def write(self, text: str) -> int:
        with self._owner._lock:
            self._owner._clear_line()
            return self._stream.write(text)

    def flush(self) -> None:
        self._stream.flush()


# -- child processes ----------------------------------------------------------------------


def child_report(fallback: Report) -> Report:
    """The report of a build child: JSON lines to the parent's pipe when it gave one
    (``APPLIANCE_PROGRESS_FD``), else ``fallback``. Fractions are sent at most five times
    a second; notes always."""
    fd = os.environ.get(ENV_FD)
    if not fd:
        return fallback
    pipe = os.fdopen(int(fd), "w", buffering=1, encoding="utf-8")
    lock = threading.Lock()
    last = [0.0]

    def report(note: str, fraction: float | None = None) -> None:
        now = time.monotonic()
        if not note and fraction is not None and now - last[0] < 0.2 and fraction < 1.0:
            return
        last[0] = now
        line = json.dumps({"note": note, "fraction": fraction}) + "\n"
        with lock:
            try:
                pipe.write(line)
            except (BrokenPipeError, ValueError):
                pass  # the parent stopped listening; the build goes on

    return report


def nice_if_asked() -> None:
    """Lower this child's CPU priority when the parent asked (a step off the critical path
    yields the cores to the one everybody waits for)."""
    value = os.environ.get(ENV_NICE)
    if value:
        try:
            os.nice(int(value))
        except (OSError, ValueError):
            pass


class ChildFailed(RuntimeError):
    """A build child exited non-zero; the message ends with the last lines it printed."""


def run_child(args: Sequence[str], report: Report, *, nice: int = 0,
              env: dict[str, str] | None = None) -> None:
    """Run ``args`` (a build child), feed its progress into ``report``, raise
    :class:`ChildFailed` with the tail of its output when it fails.

    The child's own output (library warnings, tracebacks) is kept, not shown: a build that
    works prints nothing but its progress; one that fails shows its last lines.
    """
    read_fd, write_fd = os.pipe()
    child_env = dict(os.environ if env is None else env)
    child_env[ENV_FD] = str(write_fd)
    if nice:
        child_env[ENV_NICE] = str(nice)
    try:
        proc = subprocess.Popen(
            list(args), pass_fds=(write_fd,), env=child_env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
        )
    finally:
        os.close(write_fd)
    tail: deque[str] = deque(maxlen=25)
    assert proc.stdout is not None
    out = proc.stdout
    drain = threading.Thread(target=lambda: tail.extend(line.rstrip() for line in out),
                             name="build-output", daemon=True)
    drain.start()
    try:
        with os.fdopen(read_fd, encoding="utf-8", errors="replace") as events:
            for event in _events(events):
                report(str(event.get("note") or ""), _fraction(event.get("fraction")))
        code = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    drain.join(5)
    if code != 0:
        shown = "\n".join(tail)
        raise ChildFailed(f"{' '.join(args[1:3])} failed (exit code {code}); its last output:\n"
                          f"{shown}")


def _events(lines: Iterator[str] | TextIO) -> Iterator[dict[str, object]]:
    for line in lines:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict):
            yield event


def _fraction(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None

