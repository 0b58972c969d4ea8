"""How long ``appliance serve`` takes until /healthz answers, what it prints meanwhile, and
what the whole process tree holds once it idles.

    python benchmarks/first_start.py --data-dir /tmp/fs/data --cache-dir /tmp/fs/cache

A fresh ``--data-dir`` and ``--cache-dir`` (used as ``XDG_CACHE_HOME``, where the German
tagger is cached) make it a first start: every model is built. Reusing them measures a
warm start. Printed: seconds until ready, the longest stretch without a line of output
before that (what a newcomer stares at), the number of lines, and per process of the
tree its RSS and PSS from ``/proc/PID/smaps_rollup`` after ``--idle-s`` seconds of idling
(PSS splits shared pages among the processes that map them, so the sum of PSS is what the
tree really costs; RSS counts shared pages once per process). ``--json`` writes the
figures to a file. Linux only.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from /proc/*/stat's parent ids)."""
    parent_of: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent_of[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    out: list[int] = []
    frontier = [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent_of.items() if pp == p]
        out += kids
        frontier += kids
    return out


def memory_mb(pid: int) -> tuple[float, float]:
    """(RSS, PSS) of one process in MB, from smaps_rollup."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            fields[key] = int(parts[0])
    return fields.get("Rss", 0) / 1024, fields.get("Pss", 0) / 1024


def describe(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [c.decode(errors="replace") for c in cmd if c]
    text = " ".join(w for w in words if not w.startswith("/"))[:70]
    return text or " ".join(words)[:70]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--cache-dir", type=Path, required=True, help="XDG_CACHE_HOME of the server")
    ap.add_argument("--port", type=int, default=18080)
    ap.add_argument("--idle-s", type=float, default=10.0, help="idle time before measuring memory")
    ap.add_argument("--timeout-s", type=float, default=900.0)
    ap.add_argument("--python", default=sys.executable, help="interpreter that runs appliance")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here too")
    ap.add_argument("--echo", action="store_true", help="print the server's output as it comes")
    args = ap.parse_args()

    env = dict(os.environ, XDG_CACHE_HOME=str(args.cache_dir),
               APPLIANCE_ADMIN_KEY="first-start-bench")
    cmd = [args.python, "-m", "appliance", "serve", "--data-dir", str(args.data_dir),
           "--port", str(args.port)]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                            cwd=os.getcwd(), text=True, errors="replace")
    lines: list[tuple[float, str]] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append((time.monotonic() - started, line.rstrip("\n")))
            if args.echo:
                print(f"  {lines[-1][0]:7.1f}  {lines[-1][1]}", flush=True)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    url = f"http://127.0.0.1:{args.port}/healthz"
    ready_s: float | None = None
    while time.monotonic() - started < args.timeout_s and proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    ready_s = time.monotonic() - started
                    break
        except OSError:
            pass
        time.sleep(0.2)
    if ready_s is None:
        print(f"not ready after {time.monotonic() - started:.0f} s (exit code {proc.poll()})")
        for t, line in lines[-30:]:
            print(f"  {t:7.1f}  {line}")
        proc.kill()
        return 1
    before = [t for t, _ in lines if t <= ready_s]
    marks = [0.0, *before, ready_s]
    gaps = [(b - a, a) for a, b in zip(marks, marks[1:], strict=False)]
    silence, silence_at = max(gaps)
    time.sleep(args.idle_s)
    tree = [proc.pid, *children(proc.pid)]
    rows = []
    for pid in tree:
        try:
            rows.append((pid, *memory_mb(pid), describe(pid)))
        except OSError:
            continue
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
    reader.join(5)

    print(f"ready after {ready_s:.1f} s; {len(before)} lines of output before; longest "
          f"silence {silence:.1f} s (from {silence_at:.1f} s)")
    print(f"{'pid':>8} {'RSS MB':>8} {'PSS MB':>8}  process")
    for pid, rss, pss, what in rows:
        print(f"{pid:>8} {rss:8.0f} {pss:8.0f}  {what}")
    total_rss = sum(r[1] for r in rows)
    total_pss = sum(r[2] for r in rows)
    print(f"{'tree':>8} {total_rss:8.0f} {total_pss:8.0f}  (after {args.idle_s:.0f} s idle)")
    if args.json:
        args.json.write_text(json.dumps({
            "ready_s": round(ready_s, 1), "lines": len(before),
            "longest_silence_s": round(silence, 1),
            "processes": [{"pid": p, "rss_mb": round(r), "pss_mb": round(s), "what": w}
                          for p, r, s, w in rows],
            "tree_rss_mb": round(total_rss), "tree_pss_mb": round(total_pss),
            "output": [[round(t, 1), line] for t, line in lines],
        }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
