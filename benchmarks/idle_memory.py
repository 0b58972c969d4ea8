"""Idle memory of the appliance's whole process tree with the defaults, process by process.

Usage: .venv/bin/python benchmarks/idle_memory.py [--requests N] [--settle S] [--data-dir DIR]

Starts ``python -m appliance serve`` on its default configuration (every stage on) in
front of the fake OpenAI upstream, sends N small chat requests (so that lazily loaded
parts are loaded, as on a server that has served traffic), waits S seconds, and reads
``/proc/PID/smaps_rollup`` of the server and of every process under it: RSS (what each
process maps, shared pages counted in every process), PSS (shared pages divided among
the processes that map them: the PSS column sums to the tree's real footprint) and USS
(private pages: what killing the process would free). The fake upstream runs in the
benchmark's own process, outside the tree. ``--data-dir`` reuses a data directory whose
local models are built (the first start builds them, which takes minutes).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from appliance.testing.fakes import FakeOpenAI
from appliance.testing.harness import (
    UPSTREAM_KEY_ENV,
    create_key,
    merge,
    openai_upstream,
    serve_subprocess,
    to_toml,
)

ROOT = Path(__file__).resolve().parents[1]


def rollup(pid: int) -> dict[str, int]:
    """smaps_rollup's fields in kB (Rss, Pss, Private_Clean, Private_Dirty, ...)."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, value = line.partition(":")
        parts = value.split()
        if parts and parts[0].isdigit():
            out[key.strip()] = int(parts[0])
    return out


def descendants(pid: int) -> list[int]:
    out: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        for child in Path(f"/proc/{pid}/task/{task}/children").read_text().split():
            out += [int(child), *descendants(int(child))]
    return out


def role(pid: int) -> str:
    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    comm = Path(f"/proc/{pid}/comm").read_text().strip()
    if "appliance serve" in cmd:
        return "server (main process)"
    return f"{comm}: {cmd[:60]}".strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--settle", type=float, default=5.0)
    ap.add_argument("--data-dir", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAI(api_key="sk-up").running() as fake:
        work = Path(tmp)
        config = merge(openai_upstream("openai", fake.base_url, {"gpt-4o": "gpt-4o"}, region="us"),
                       {"policy": {"dir": str(ROOT / "policies")}})
        (work / "appliance.toml").write_text(to_toml(config))
        data = args.data_dir or work / "data"
        began = time.perf_counter()
        with serve_subprocess(work / "appliance.toml", data, env={UPSTREAM_KEY_ENV: "sk-up"},
                              timeout_s=900) as server:
            started = time.perf_counter() - began
            key = create_key(data, tenant="acme", user="alice")
            body = {"model": "gpt-4o", "messages": [
                {"role": "user", "content": "Hi, I am Anna Schmidt from Köln, please call me on "
                                            "+49 221 1234567 about the contract."}]}
            with httpx.Client(timeout=60) as client:
                for _ in range(args.requests):
                    r = client.post(server.url + "/v1/chat/completions", json=body,
                                    headers={"Authorization": f"Bearer {key}"})
                    r.raise_for_status()
            time.sleep(args.settle)
            root = server.process.pid
            pids = [root, *descendants(root)]
            rows = [(pid, role(pid), rollup(pid)) for pid in pids]
    print(f"cores: {os.cpu_count()}; load average: {os.getloadavg()[0]:.1f}; "
          f"server ready in {started:.1f} s; {args.requests} requests, then {args.settle:.0f} s idle")
    print(f"{'pid':>8}  {'RSS MB':>8} {'PSS MB':>8} {'USS MB':>8}  process")
    total = {"Rss": 0, "Pss": 0, "Uss": 0}
    for pid, name, m in rows:
        uss = m.get("Private_Clean", 0) + m.get("Private_Dirty", 0)
        total["Rss"] += m["Rss"]
        total["Pss"] += m["Pss"]
        total["Uss"] += uss
        print(f"{pid:>8}  {m['Rss'] / 1024:8.1f} {m['Pss'] / 1024:8.1f} {uss / 1024:8.1f}  {name}")
    print(f"{'tree':>8}  {total['Rss'] / 1024:8.1f} {total['Pss'] / 1024:8.1f} "
          f"{total['Uss'] / 1024:8.1f}  (RSS double-counts shared pages; PSS is the footprint)")


if __name__ == "__main__":
    main()
