"""Latency of the classify stage's work, this checkout against a baseline, interleaved.

    git worktree add /tmp/risk-baseline <commit>      # or: git archive <commit> | tar -x -C DIR
    .venv/bin/python benchmarks/risk_latency_ab.py --baseline /tmp/risk-baseline [--rounds 3]

On a shared machine absolute timings drift with the load, so two worker processes (one
importing the baseline's ``appliance`` package, one this checkout's) classify the same
requests in alternating batches of ``--batch`` requests, who goes first alternating too;
each request is what the classify stage runs (``RiskClassifier.analyse``: tags and safety
screen, a system prompt plus the prompt). Prints the median and p95 wall and CPU time of
each side and the ratio this/baseline. Prompts: the ordinary-prompts development part
(benchmarks/data/ordinary_prompts/dev.yaml, 730 EN+DE prompts incl. multi-paragraph ones).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ROOT / "benchmarks" / "data" / "ordinary_prompts" / "dev.yaml"

#: Runs in each worker: reads a JSON list of texts per line, answers with timings.
WORKER = r"""
import json, sys, time
from pathlib import Path
from appliance.blas import one_blas_thread
one_blas_thread()  # as in the server
from appliance.config import load_config
from appliance.risk.classifier import Segments
from appliance.risk.engine import build_classifier
clf = build_classifier(load_config(None, data_dir=Path(sys.argv[1])))
system = "You are a helpful assistant of ACME GmbH. Answer briefly."
for text in ("warm up", "Rank these applicants.", "Schreibe eine Mail an Frau Becker."):
    clf.analyse(Segments(rules_text=text, context=system, content=text, safety_text=text))
print("ready", flush=True)
for line in sys.stdin:
    wall, cpu = [], []
    for text in json.loads(line):
        seg = Segments(rules_text=system + "\n" + text, context=system, content=text,
                       safety_text=text)
        t0, c0 = time.perf_counter(), time.process_time()
        clf.analyse(seg)
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    print(json.dumps({"wall": wall, "cpu": cpu}), flush=True)
"""


def _worker(package_root: Path, data_dir: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(package_root)}
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(data_dir)], cwd=package_root, env=env,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit(f"worker for {package_root} did not start")
    return proc


def _run(proc: subprocess.Popen[str], texts: list[str]) -> dict[str, list[float]]:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(texts) + "\n")
    proc.stdin.flush()
    out: dict[str, list[float]] = json.loads(proc.stdout.readline())
    return out


def _summary(name: str, times: dict[str, list[float]]) -> tuple[float, float]:
    wall, cpu = sorted(times["wall"]), sorted(times["cpu"])
    p95 = wall[int(0.95 * (len(wall) - 1))]
    print(f"{name:<10} median {statistics.median(wall):6.2f} ms  p95 {p95:6.2f} ms  "
          f"CPU median {statistics.median(cpu):6.2f} ms  ({len(wall)} requests)")
    return statistics.median(wall), statistics.median(cpu)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baseline", type=Path, required=True, help="checkout of the baseline")
    ap.add_argument("--data-dir", type=Path, default=ROOT / "data",
                    help="where the built models are (shared by both sides)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=50)
    args = ap.parse_args()
    texts = [it["text"] for it in yaml.safe_load(PROMPTS.read_text("utf-8"))["items"]]
    sides = {"baseline": _worker(args.baseline.resolve(), args.data_dir.resolve()),
             "this": _worker(ROOT, args.data_dir.resolve())}
    times: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []} for name in sides}
    order = list(sides)
    try:
        for _ in range(args.rounds):
            for start in range(0, len(texts), args.batch):
                batch = texts[start : start + args.batch]
                for name in order:
                    got = _run(sides[name], batch)
                    times[name]["wall"] += got["wall"]
                    times[name]["cpu"] += got["cpu"]
                order.reverse()
    finally:
        for proc in sides.values():
            proc.terminate()
            proc.wait()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"classify stage work, interleaved in batches of {args.batch}, {args.rounds} rounds,"
          f" load average {load:.1f}:")
    base_wall, base_cpu = _summary("baseline", times["baseline"])
    this_wall, this_cpu = _summary("this", times["this"])
    print(f"ratio this/baseline: wall median {this_wall / base_wall:.2f},"
          f" CPU median {this_cpu / base_cpu:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
