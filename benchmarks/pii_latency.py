"""What PII analysis adds to a request, by request shape, next to a baseline build.

Usage: .venv/bin/python benchmarks/pii_latency.py [--requests N] [--rounds R]
       [--shapes S,M,L,XL,R] [--baseline DIR] [--workers W]

For each shape (the request shapes of benchmarks/pipeline_profile.py: S a short
question, M a 2 KB e-mail thread, L a 20 KB retrieved context with a question, XL a
100 KB document, R an 8 KB system prompt and tool definitions that repeat while the user
turn changes, R0 those user turns alone), a child process starts the analyzer pool of one build (its own code,
or the build in ``--baseline DIR``, e.g. a ``git archive`` of an earlier commit), then
sends N requests one after another: the request's texts (as pii_detect does: the
tenant's cache, a language per run of a long text), then the answer's, an echo of the
last user text of similar size (as pii_output does when it must screen: answer
paragraphs that repeat the request are skipped). It reports the P50 and mean wall time
per request of each, the PII processes' CPU time per request, and how many requests
failed. Builds alternate shape by shape and round by round, so both see the same load;
the summary gives medians over rounds and the ratio to the baseline.

Texts come from appliance/testing/documents.py (English and German with names,
addresses, e-mails, phone numbers, IBANs) and are written to a file the children read,
so both builds analyse the same characters. M, L and XL carry a different document in
every request; R's system prompt and tools repeat.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]


def _requests(shape: str, n: int) -> list[dict[str, Any]]:
    """``n`` requests of ``shape`` as texts and languages, plus the answer text."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(HERE.parent))
    from pipeline_profile import body  # the shapes, one definition

    from appliance.pii.slots import request_slots

    out = []
    for i in range(n):
        b = body(shape, 1000 + i)
        texts = [t for t in request_slots("chat.completions", b).texts if t.strip()]
        last_user = next(m["content"] for m in reversed(b["messages"]) if m["role"] == "user")
        out.append({"texts": texts, "answer": f"echo: {last_user}"})
    return out


def _child(args: argparse.Namespace) -> None:
    """Runs in the build under test (its own ``appliance`` on PYTHONPATH)."""
    from appliance.config.pii import PiiConfig
    from appliance.pii.language import detect_language
    from appliance.pii.pool import AnalyzerPool

    requests = json.loads(Path(args.child).read_text())
    pool = AnalyzerPool(PiiConfig(workers=args.workers))
    # A build before the pool knew tenants and long texts takes texts and languages only.
    params = inspect.signature(pool.analyze).parameters
    current = "tenant" in params
    digests: Any = None
    if "known" in params:
        from appliance.pii.pieces import known_digests as digests

    async def run() -> dict[str, Any]:
        await pool.start()
        pids = pool.pids() + ([t] if (t := getattr(pool, "template_pid", lambda: None)()) else [])
        req_t: list[float] = []
        ans_t: list[float] = []
        failed: list[str] = []
        cpu0 = sum(_cpu_s(p) for p in pids)
        for k, r in enumerate(requests):
            langs = [detect_language(t) for t in r["texts"]]
            extra: dict[str, Any] = {"tenant": "bench", "detect_pieces": True} if current else {}
            began = time.perf_counter()
            try:
                await pool.analyze(r["texts"], langs, **extra)
            except Exception as e:  # noqa: BLE001 - counted and reported
                failed.append(str(e))
                continue
            mid = time.perf_counter()
            answer_extra = dict(extra)
            if digests is not None:
                answer_extra["known"] = digests(r["texts"])
            try:
                await pool.analyze([r["answer"]], [detect_language(r["answer"])], **answer_extra)
            except Exception as e:  # noqa: BLE001 - counted and reported
                failed.append(str(e))
                continue
            end = time.perf_counter()
            if k >= args.warmup:
                req_t.append(mid - began)
                ans_t.append(end - mid)
        cpu = sum(_cpu_s(p) for p in pool.pids()) + (
            _cpu_s(t) if (t := getattr(pool, "template_pid", lambda: None)()) else 0.0) - cpu0
        await pool.aclose()
        done = max(1, len(req_t))
        return {"request": req_t, "answer": ans_t, "failed": failed, "cpu_ms": cpu / done * 1e3}

    print(json.dumps(asyncio.run(run())))


def _cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run_child(build: Path, data: Path, workers: int, warmup: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(build)}
    out = subprocess.run(
        [sys.executable, str(HERE), "--child", str(data), "--workers", str(workers),
         "--warmup", str(warmup)],
        env=env, cwd=str(build), capture_output=True, text=True, timeout=3600,
    )
    if out.returncode != 0:
        raise SystemExit(f"child on {build} failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--shapes", default="S,M,L,XL,R,R0")
    ap.add_argument("--baseline", type=Path, help="another build's root (its appliance/ is used)")
    ap.add_argument("--workers", type=int, default=0, help="analyzer workers (0: one per core)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args)
        return
    builds = {"this build": ROOT}
    if args.baseline:
        builds["baseline"] = args.baseline.resolve()
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    print(f"cores: {os.cpu_count()}; load average: {os.getloadavg()[0]:.1f}; {args.requests} "
          f"requests per shape (first {args.warmup} not counted), {args.rounds} round(s)")
    with tempfile.TemporaryDirectory() as tmp:
        for shape in args.shapes.split(","):
            data = Path(tmp) / f"{shape}.json"
            data.write_text(json.dumps(_requests(shape, args.requests + args.warmup)))
            for _ in range(args.rounds):
                for name, build in builds.items():
                    r = _run_child(build, data, args.workers, args.warmup)
                    results.setdefault((shape, name), []).append(r)
                    print(f"  {shape:2s} {name:10s} request P50 {_p50(r['request']):8.2f} ms, "
                          f"answer P50 {_p50(r['answer']):8.2f} ms, PII CPU {r['cpu_ms']:8.1f} ms, "
                          f"failed {len(r['failed'])}", flush=True)
    print("\nmedians over rounds (ms): request P50 / mean, answer P50 / mean, PII CPU per request")
    for (shape, name), runs in results.items():
        req = statistics.median(_p50(r["request"]) for r in runs)
        line = (f"{shape:2s} {name:10s} {req:8.2f} / {statistics.median(_mean(r['request']) for r in runs):8.2f}"
                f"   {statistics.median(_p50(r['answer']) for r in runs):8.2f} / "
                f"{statistics.median(_mean(r['answer']) for r in runs):8.2f}"
                f"   {statistics.median(r['cpu_ms'] for r in runs):8.1f}")
        failed = sum(len(r["failed"]) for r in runs)
        if failed:
            first = next(f for r in runs for f in r["failed"])
            line += f"   failed {failed} ({first})"
        base = results.get((shape, "baseline"))
        if name != "baseline" and base:
            b = statistics.median(_p50(r["request"]) for r in base)
            if b > 0 and req > 0:
                line += f"   request P50 x{b / req:.2f} faster than the baseline"
        print(line)


def _p50(values: list[float]) -> float:
    return statistics.median(values) * 1e3 if values else float("nan")


def _mean(values: list[float]) -> float:
    return statistics.mean(values) * 1e3 if values else float("nan")


if __name__ == "__main__":
    main()
