"""A progress bar on stderr for long exports (rows written of rows to write).

Redrawn at most ten times a second, in place on a terminal; when stderr is not a
terminal it prints a plain line every ten percent, so logs of scheduled exports still
show that the export advanced.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(
        self, total: int, label: str, *, stream: TextIO | None = None, enabled: bool = True
    ) -> None:
        self.total = max(total, 0)
        self.label = label
        self.done = 0
        self._stream = stream if stream is not None else sys.stderr
        self._enabled = enabled
        self._tty = bool(getattr(self._stream, "isatty", lambda: False)())
        self._started = time.monotonic()
        self._last_draw = 0.0
        self._last_decile = -1

    def advance(self, rows: int) -> None:
        self.done += rows
        if not self._enabled:
            return
        now = time.monotonic()
        if self._tty:
            if now - self._last_draw >= 0.1:
                self._draw(now, end="")
        else:
            decile = (10 * self.done // self.total) if self.total else 10
            if decile != self._last_decile:
                self._last_decile = decile
                self._draw(now, end="\n")

    def finish(self) -> None:
        if not self._enabled:
            return
        if self._tty:
            self._draw(time.monotonic(), end="\n", final=True)
        elif self._last_decile != 10:
            self._last_decile = 10
            self._draw(time.monotonic(), end="\n", final=True)

    def _draw(self, now: float, *, end: str, final: bool = False) -> None:
        self._last_draw = now
        frac = 1.0 if final or not self.total else min(self.done / self.total, 1.0)
        width = 30
        bar = "#" * int(frac * width) + "." * (width - int(frac * width))
        elapsed = now - self._started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        line = f"{self.label} [{bar}] {frac * 100:5.1f}% {self.done:,}/{self.total:,} rows {elapsed:6.1f}s {rate:,.0f} rows/s"
        prefix = "\r" if self._tty else ""
        self._stream.write(prefix + line + end)
        self._stream.flush()


class NoProgress(Progress):
    def __init__(self) -> None:
        super().__init__(0, "", enabled=False)
