"""What fleet mode costs one replica: PostgreSQL + Redis + a signed bundle + the audit
archive (S3) against the embedded defaults (SQLite control plane and counters, policy
directory, local segments), measured in the same run, interleaved.

Both replicas are real `appliance serve` processes with the same stages on: decide
(Rego), limits (rate limits and budgets on the key, so every check runs) and record
(the audit log) — the stages fleet mode changes — with PII and risk off (they cost the
same either way and would drown the difference in noise on two shared cores). The
upstream is a fake OpenAI server in this process. Each round sends a sequential batch
(latency) and a concurrent batch (throughput) to each replica, the order alternating.

For the capacity model (docs/scaling.md) it also reads, around each concurrent batch, the
CPU time of each replica's process tree and of Redis and PostgreSQL (/proc; Redis's
``INFO cpu``), each replica's RSS, and at the end the bytes of audit segments per request:
local files for the embedded replica, objects in the archive for the fleet replica.

    python benchmarks/fleet_overhead.py [--rounds 6] [--sequential 150] [--concurrent 600]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp

from appliance.audit.keys import load_signing_key
from appliance.policy.bundle import build, new_signing_key
from appliance.policy.source import load_source
from appliance.testing.engines import postgres, redis_server, s3_server
from appliance.testing.fakes import FakeOpenAI
from appliance.testing.fleet import Fleet
from appliance.testing.harness import PASS_THROUGH, UPSTREAM_KEY_ENV, merge, openai_upstream

BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Summarise the quarterly report for Anna Schmidt."}]}
LIMITS = {"rpm": 10**9, "tpm": 10**12, "budget_usd_day": 10**6, "budget_usd_month": 10**7}
FAKE_KEY = "sk-bench-fleet"
STAGES = merge(PASS_THROUGH, {"pipeline": {"decide": True, "limits": True, "record": True}})


_TICK = os.sysconf("SC_CLK_TCK")


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d.name))
    return kids


def _tree(pid: int) -> list[int]:
    kids, out, todo = _children(), [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its descendants (live ones)."""
    total = 0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / _TICK


def tree_rss_mb(pid: int) -> float:
    total = 0
    for p in _tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def redis_cpu_s(url: str) -> float:
    import redis

    info = redis.Redis.from_url(url).info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def postgres_pid(directory: Path) -> int:
    return int((directory / "db" / "postmaster.pid").read_text().split()[0])


async def sequential(url: str, key: str, n: int) -> list[float]:
    out = []
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession() as http:
        for _ in range(n):
            t0 = time.perf_counter()
            async with http.post(f"{url}/v1/chat/completions", json=BODY, headers=headers) as r:
                await r.read()
                assert r.status == 200, r.status
            out.append((time.perf_counter() - t0) * 1000)
    return out


async def concurrent(url: str, key: str, n: int, clients: int = 16) -> float:
    headers = {"Authorization": f"Bearer {key}"}
    left = [n]

    async def client(http: aiohttp.ClientSession) -> None:
        while left[0] > 0:
            left[0] -= 1
            async with http.post(f"{url}/v1/chat/completions", json=BODY, headers=headers) as r:
                await r.read()
                assert r.status == 200, r.status

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        t0 = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        return n / (time.perf_counter() - t0)


def make_key(fleet: Fleet) -> str:
    made = fleet.cli("keys", "create", "--tenant", "bench", "--user", "u", "--json",
                     "--rpm", str(LIMITS["rpm"]), "--tpm", str(LIMITS["tpm"]),
                     "--budget-usd-day", str(LIMITS["budget_usd_day"]),
                     "--budget-usd-month", str(LIMITS["budget_usd_month"]))
    assert made.returncode == 0, made.stderr
    return str(json.loads(made.stdout)["key"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--sequential", type=int, default=150)
    ap.add_argument("--concurrent", type=int, default=600)
    ap.add_argument("--parts", default="state,limits,policy,audit",
                    help="which shared engines the fleet replica uses (to attribute the cost)")
    args = ap.parse_args()
    args.parts = set(args.parts.split(","))
    root = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    shared = root / "shared"
    shared.mkdir()
    load_signing_key(shared / "audit-signing.pem", shared / "audit-signing.pub.pem")
    private, public = new_signing_key()
    (shared / "bundle.pub").write_bytes(public)
    with postgres() as pg, redis_server() as redis_url, s3_server(("audit", "policy")) as s3, \
            FakeOpenAI(api_key=FAKE_KEY, record=False).running() as fake:
        import botocore.session

        bundle, _ = build(load_source(ROOT / "policies"), private)
        botocore.session.get_session().create_client(
            "s3", endpoint_url=s3.endpoint, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
        ).put_object(Bucket="policy", Key="bundle.tar.gz", Body=bundle)
        base = merge(openai_upstream("openai", fake.base_url, {"gpt-4o": "gpt-4o"}), STAGES)
        env = {**s3.env, "APPLIANCE_STATE_DSN": pg.dsn, UPSTREAM_KEY_ENV: FAKE_KEY,
               "APPLIANCE_AUDIT_DB_KEY": secrets.token_hex(16),
               "APPLIANCE_AUDIT_MASTER_KEY": secrets.token_hex(32)}
        embedded = Fleet.create(root / "embedded", base, env, 1)
        parts = {
            "state": {"backend": "postgres", "dsn_env": "APPLIANCE_STATE_DSN"},
            "limits": {"backend": "redis", "redis_url": redis_url},
            "policy": {"bundle_url": "s3://policy/bundle.tar.gz",
                       "bundle_public_key_file": str(shared / "bundle.pub")},
            "audit": {"archive_url": "s3://audit/bench",
                      "signing_key_file": str(shared / "audit-signing.pem")},
        }
        fleet_cfg = merge(base, {k: v for k, v in parts.items() if k in args.parts})
        fleet = Fleet.create(root / "fleet", fleet_cfg, env, 1)
        assert embedded.cli("db", "upgrade").returncode == 0 and fleet.cli("db", "upgrade").returncode == 0
        embedded.start()
        fleet.start()
        try:
            keys = {"embedded": make_key(embedded), "fleet": make_key(fleet)}
            urls = {"embedded": embedded.replicas[0].url, "fleet": fleet.replicas[0].url}
            served = {"embedded": 0, "fleet": 0}
            for name in urls:  # warm-up: caches, connections, first segment
                asyncio.run(sequential(urls[name], keys[name], 50))
                served[name] += 50
            pids = {"embedded": embedded.replicas[0].process.pid,  # type: ignore[union-attr]
                    "fleet": fleet.replicas[0].process.pid}  # type: ignore[union-attr]
            pg_pid = postgres_pid(pg.directory)
            lat: dict[str, list[float]] = {"embedded": [], "fleet": []}
            rps: dict[str, list[float]] = {"embedded": [], "fleet": []}
            cpu_ms: dict[str, list[float]] = {"embedded": [], "fleet": [], "redis": [], "postgres": []}
            rss: dict[str, list[float]] = {"embedded": [], "fleet": []}
            for rnd in range(args.rounds):
                order = ["embedded", "fleet"] if rnd % 2 == 0 else ["fleet", "embedded"]
                # Latency: one request to each in turn, so noise falls on both alike.
                for _ in range(args.sequential):
                    for name in order:
                        lat[name] += asyncio.run(sequential(urls[name], keys[name], 1))
                        served[name] += 1
                for name in order:
                    before = tree_cpu_s(pids[name])
                    engines = (redis_cpu_s(redis_url), tree_cpu_s(pg_pid))
                    rps[name].append(asyncio.run(concurrent(urls[name], keys[name], args.concurrent)))
                    served[name] += args.concurrent
                    cpu_ms[name].append((tree_cpu_s(pids[name]) - before) * 1000 / args.concurrent)
                    rss[name].append(tree_rss_mb(pids[name]))
                    if name == "fleet":
                        cpu_ms["redis"].append((redis_cpu_s(redis_url) - engines[0]) * 1000 / args.concurrent)
                        cpu_ms["postgres"].append((tree_cpu_s(pg_pid) - engines[1]) * 1000 / args.concurrent)
                print(f"round {rnd + 1}: req/s embedded {rps['embedded'][-1]:.0f}, fleet {rps['fleet'][-1]:.0f}",
                      flush=True)
        finally:
            embedded.stop()
            fleet.stop()  # seals the open segment and ships it
        local_bytes = sum(f.stat().st_size for f in (root / "embedded").rglob("*.duckdb*"))
        archived_bytes = 0
        if "audit" in args.parts:
            s3c = botocore.session.get_session().create_client(
                "s3", endpoint_url=s3.endpoint, region_name="us-east-1",
                aws_access_key_id="testing", aws_secret_access_key="testing")
            for page in s3c.get_paginator("list_objects_v2").paginate(Bucket="audit", Prefix="bench/"):
                archived_bytes += sum(int(o["Size"]) for o in page.get("Contents", []))
    e50, f50 = statistics.median(lat["embedded"]), statistics.median(lat["fleet"])
    erps, frps = sum(rps["embedded"]) / len(rps["embedded"]), sum(rps["fleet"]) / len(rps["fleet"])
    result: dict[str, Any] = {
        "parts": sorted(args.parts),
        "p50_ms": {"embedded": round(e50, 3), "fleet": round(f50, 3)},
        "added_p50_ms": round(f50 - e50, 3),
        "p90_ms": {n: round(statistics.quantiles(v, n=10)[-1], 3) for n, v in lat.items()},
        "rps_mean": {"embedded": round(erps), "fleet": round(frps)},
        "rps_ratio": round(frps / erps, 3),
        "cpu_ms_per_request": {n: round(statistics.median(v), 3) for n, v in cpu_ms.items() if v},
        "rss_mb": {n: round(max(v)) for n, v in rss.items()},
        "requests_served": served,
        "audit_bytes_per_request": {
            "embedded_local_segments": round(local_bytes / served["embedded"], 1),
            "fleet_archive": round(archived_bytes / served["fleet"], 1) if archived_bytes else None,
        },
        "rounds": args.rounds, "sequential_pairs_per_round": args.sequential,
        "concurrent_per_round": args.concurrent,
    }
    print(json.dumps(result, indent=2))
    ok = result["added_p50_ms"] <= 0.5 and result["rps_ratio"] >= 0.9
    print("bars:", "met" if ok else "NOT met", "(added P50 <= 0.5 ms, req/s within 10%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
