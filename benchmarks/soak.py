"""Soak: a long run of mixed traffic with every stage on; does anything leak or drift?

The appliance runs as ``appliance serve`` (every compliance stage on, the shipped
policies, the audit log) in front of fake OpenAI and Anthropic upstreams (their own
process). A closed loop of ``--concurrency`` clients sends ``--requests`` requests, turn by
turn through the mix below: chat and Responses, streamed and not, embeddings, Anthropic
Messages streamed and not, tool calls and tool results, with English and German PII
(names, e-mail addresses, phone numbers, IBANs, addresses), each prompt made unique by its
request number so no cache answers for free.

Reported (printed as Markdown, and written whole to ``--out`` as JSON):

* RSS and open file descriptors of every process of the server (supervisor, workers,
  the PII template and its worker processes), sampled every ``--sample-s`` seconds;
* P50/P99 latency per 10,000 requests (a stream's latency is its last byte);
* errors by kind: HTTP status by request kind, transport errors, streams that ended in an
  error event;
* audit records against acknowledged requests: every response that came back whole with
  an ``x-request-id`` (whatever its status) is looked up in the audit log after the run
  (``appliance audit search``), and the log's chain is verified (``appliance audit verify``).

Targets (issue 23): RSS grows less than 5% after warm-up (the median over the first
10,000 requests after ``--warmup`` against the median over the last 10,000; per process,
and per role, since recycled PII workers are new processes), open
descriptors flat, P99 drifts less than 20% (each later 10,000-request window against the
first one after warm-up), no 5xx, not one acknowledged request missing from the log.

    python benchmarks/soak.py [--requests 100000] [--concurrency 16] [--workers 2]
                              [--warmup 10000] [--out /tmp/soak.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from appliance.testing.engines import free_port  # noqa: E402
from appliance.testing.harness import (  # noqa: E402
    UPSTREAM_KEY_ENV,
    create_key,
    merge,
    openai_upstream,
    serve_subprocess,
    to_toml,
)

UPSTREAM_KEY = "sk-soak-upstream"
WINDOW = 10_000

FIRST = ["Anna", "Jürgen", "Maria", "Thomas", "Sophie", "Lukas", "Emma", "Oliver", "Grace", "James"]
LAST = ["Schmidt", "Weber", "Müller", "Fischer", "Wagner", "Becker", "Hoffmann", "Miller", "Smith", "Brown"]
CITY_DE = ["München", "Hamburg", "Köln", "Frankfurt am Main", "Stuttgart", "Leipzig"]
CITY_EN = ["London", "Manchester", "Bristol", "Leeds", "Edinburgh", "Cardiff"]
IBANS = ["DE89 3704 0044 0532 0130 00", "GB29 NWBK 6016 1331 9268 19", "DE44 5001 0517 5407 3249 31"]

TOOLS = [{
    "type": "function",
    "function": {
        "name": "lookup_customer",
        "description": "Find a customer record by e-mail address",
        "parameters": {"type": "object", "properties": {"email": {"type": "string"}},
                       "required": ["email"]},
    },
}]


def _person(n: int) -> tuple[str, str, str]:
    first, last = FIRST[n % len(FIRST)], LAST[(n // 7) % len(LAST)]
    email = f"{first.lower().replace('ü', 'ue')}.{last.lower().replace('ü', 'ue')}{n % 97}@example.com"
    return first, last, email


def english(n: int) -> str:
    first, last, email = _person(n)
    return (
        f"Ticket {n}: please draft a short, friendly reply to {first} {last} ({email}, "
        f"phone +44 20 7946 {n % 10000:04d}) who lives at {n % 200 + 1} High Street, "
        f"{CITY_EN[n % len(CITY_EN)]}. The refund for order {100000 + n} goes to "
        f"{IBANS[n % len(IBANS)]}. Keep it to two sentences."
    )


def german(n: int) -> str:
    first, last, email = _person(n + 3)
    return (
        f"Vorgang {n}: Bitte schreibe eine kurze Antwort an {first} {last} aus "
        f"{CITY_DE[n % len(CITY_DE)]} ({email}, Telefon 089 {n % 1000000:06d}) wegen der "
        f"Rechnung {4000 + n}. Die Gutschrift geht auf das Konto {IBANS[n % len(IBANS)]}."
    )


@dataclass(frozen=True)
class Kind:
    """One kind of request in the mix: where it goes and how its body is built."""

    name: str
    path: str
    body: Callable[[int], dict[str, Any]]
    stream: bool = False
    #: The caller's API: its errors and SSE error events look different.
    anthropic: bool = False


MIX: tuple[Kind, ...] = (
    Kind("chat_en", "/v1/chat/completions",
         lambda n: {"model": "gpt-4o", "messages": [{"role": "user", "content": english(n)}]}),
    Kind("chat_de_stream", "/v1/chat/completions",
         lambda n: {"model": "gpt-4o", "stream": True,
                    "messages": [{"role": "user", "content": german(n)}]}, stream=True),
    Kind("responses_en", "/v1/responses",
         lambda n: {"model": "gpt-4o", "input": english(n), "store": False}),
    Kind("responses_de_stream", "/v1/responses",
         lambda n: {"model": "gpt-4o", "input": german(n), "stream": True, "store": False},
         stream=True),
    Kind("embeddings", "/v1/embeddings",
         lambda n: {"model": "text-embedding-3-small", "input": [english(n), german(n)]}),
    Kind("anthropic_en", "/v1/messages",
         lambda n: {"model": "claude-sonnet", "max_tokens": 256,
                    "messages": [{"role": "user", "content": english(n)}]}, anthropic=True),
    Kind("anthropic_de_stream", "/v1/messages",
         lambda n: {"model": "claude-sonnet", "max_tokens": 256, "stream": True,
                    "messages": [{"role": "user", "content": german(n)}]},
         stream=True, anthropic=True),
    Kind("chat_tool_call", "/v1/chat/completions",
         lambda n: {"model": "gpt-4o", "tools": TOOLS, "tool_choice": "required",
                    "messages": [{"role": "user", "content": "Look up " + _person(n)[2]}]}),
    Kind("chat_tool_result_stream", "/v1/chat/completions",
         lambda n: {"model": "gpt-4o", "stream": True, "tools": TOOLS, "messages": [
             {"role": "user", "content": "Look up " + _person(n)[2]},
             {"role": "assistant", "content": None, "tool_calls": [{
                 "id": f"call_{n}", "type": "function",
                 "function": {"name": "lookup_customer",
                              "arguments": json.dumps({"email": _person(n)[2]})}}]},
             {"role": "tool", "tool_call_id": f"call_{n}", "content": english(n)},
         ]}, stream=True),
)


# ----------------------------------------------------------------- processes


@contextmanager
def fake_upstreams() -> Iterator[tuple[str, str]]:
    """Fake OpenAI and Anthropic in their own process (uvloop); their base URLs."""
    openai_port, anthropic_port = free_port(), free_port()
    code = (
        "import asyncio, uvloop\n"
        "from appliance.testing.fakes import FakeOpenAI, FakeAnthropic\n"
        "async def main():\n"
        f"    o = FakeOpenAI(api_key={UPSTREAM_KEY!r}, record=False)\n"
        f"    a = FakeAnthropic(api_key={UPSTREAM_KEY!r}, record=False)\n"
        f"    await o.start(port={openai_port}); await a.start(port={anthropic_port})\n"
        "    await asyncio.Event().wait()\n"
        "uvloop.run(main())\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        for port in (openai_port, anthropic_port):
            deadline = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), 0.5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise SystemExit("the fake upstreams did not start") from None
                    time.sleep(0.1)
        yield f"http://127.0.0.1:{openai_port}/v1", f"http://127.0.0.1:{anthropic_port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def config(openai_url: str, anthropic_url: str, workers: int) -> dict[str, Any]:
    """Every stage on (the defaults), the shipped policies; two upstreams."""
    return merge(
        openai_upstream("openai", openai_url,
                        {"gpt-4o": "gpt-4o", "text-embedding-3-small": "text-embedding-3-small"},
                        region="eu", max_retries=0),
        {"models": {"text-embedding-3-small": {"task": "embedding"}}},
        {"providers": {"anthropic": {"kind": "anthropic", "base_url": anthropic_url,
                                     "api_key_env": UPSTREAM_KEY_ENV, "region": "eu",
                                     "max_retries": 0}},
         "models": {"claude-sonnet": {"provider": "anthropic",
                                      "upstream_model": "claude-sonnet-4-20250514"}}},
        {"server": {"workers": workers}},
    )


# ------------------------------------------------------------------ sampling


def _ppid(pid: int | str) -> int:
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    return int(stat[stat.rindex(")") + 2:].split()[1])  # after the command's ")"


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            kids[_ppid(entry)].append(int(entry))
        except OSError:
            continue
    return kids


def process_tree(root: int) -> list[int]:
    kids, out, todo = _children(), [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, ()))
    return out


def _cmdline(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode("utf-8", "replace")


def _role(pid: int) -> str:
    try:
        cmd = _cmdline(pid)
        with open(f"/proc/{pid}/comm") as f:
            comm = f.read().strip()
        if "appliance.pii.worker" in cmd:
            # The template is started by a server worker; the PII workers are its forks
            # (same command line), and are replaced by fresh forks now and then.
            return "pii-worker" if "appliance.pii.worker" in _cmdline(_ppid(pid)) else "pii-template"
    except OSError:
        return "?"
    if "appliance serve" in cmd or "appliance.cli" in cmd and "serve" in cmd:
        return "server"
    return comm or cmd[:40]


def snapshot(root: int) -> dict[str, dict[str, Any]]:
    """RSS (KiB) and open descriptors of every process under ``root``, keyed by pid."""
    procs: dict[str, dict[str, Any]] = {}
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/status") as f:
                rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
            fds = os.listdir(f"/proc/{pid}/fd")
        except (OSError, StopIteration):
            continue
        sockets = 0
        for fd in fds:
            try:
                sockets += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
            except OSError:
                pass
        procs[str(pid)] = {"role": _role(pid), "rss_kib": rss, "fds": len(fds),
                           "files": len(fds) - sockets}
    return procs


@dataclass
class Run:
    n: int
    latency_ms: list[float] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    acknowledged: list[str] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    by_kind: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    samples: list[dict[str, Any]] = field(default_factory=list)
    done: int = 0


def _stream_failed(kind: Kind, body: bytes) -> bool:
    """A stream whose last event is an error event (the SSE of either API)."""
    tail = body[-600:]
    if kind.anthropic:
        return b"event: error" in tail
    return b'data: {"error"' in tail or b"event: error" in tail or b'"type":"error"' in tail


async def one(http: aiohttp.ClientSession, base: str, key: str, i: int, run: Run) -> None:
    kind = MIX[i % len(MIX)]
    headers = {"Authorization": f"Bearer {key}"}
    if kind.anthropic:
        headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    t0 = time.perf_counter()
    status = 0
    try:
        async with http.post(base + kind.path, json=kind.body(i), headers=headers) as resp:
            body = await resp.read()
            status = resp.status
            request_id = resp.headers.get("x-request-id")
        if request_id:
            run.acknowledged.append(request_id)
        if kind.stream and status == 200 and _stream_failed(kind, body):
            run.errors[f"{kind.name}: stream error event"] += 1
    except (aiohttp.ClientError, TimeoutError, OSError) as e:
        run.errors[f"{kind.name}: {type(e).__name__}"] += 1
    run.latency_ms.append((time.perf_counter() - t0) * 1000.0)
    run.kinds.append(kind.name)
    run.statuses.append(status)
    run.by_kind[kind.name][status] += 1
    run.done += 1


#: Set by SIGINT/SIGTERM: no new requests; those in flight finish, then the report.
STOPPING = threading.Event()


async def load(base: str, key: str, n: int, concurrency: int, run: Run) -> None:
    counter = iter(range(n))
    timeout = aiohttp.ClientTimeout(total=120)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:

        async def client() -> None:
            for i in counter:
                if STOPPING.is_set():
                    return
                await one(http, base, key, i, run)

        await asyncio.gather(*(client() for _ in range(concurrency)))


def sampler(root: int, run: Run, every_s: float, stop: threading.Event) -> None:
    t0 = time.monotonic()
    while True:
        run.samples.append({"t_s": round(time.monotonic() - t0, 1), "requests": run.done,
                            "procs": snapshot(root)})
        progress = Path(f"/tmp/soak-progress-{os.getpid()}.json")
        progress.write_text(json.dumps({"requests": run.done, "errors": dict(run.errors),
                                        "statuses": dict(Counter(run.statuses)),
                                        "last": run.samples[-1]}))
        if stop.wait(every_s):
            run.samples.append({"t_s": round(time.monotonic() - t0, 1), "requests": run.done,
                                "procs": snapshot(root)})
            return


# ------------------------------------------------------------------- audit


def audit_ids(data_dir: Path, cfg: Path) -> tuple[set[str], str]:
    """Request ids of every request record, and ``audit verify``'s verdict."""
    ids: set[str] = set()
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance", "audit", "search", "--config", str(cfg),
         "--data-dir", str(data_dir), "--kind", "request", "--limit", "100000000", "--json"],
        stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip():
            ids.add(json.loads(line)["request_id"])
    proc.wait()
    verify = subprocess.run(
        [sys.executable, "-m", "appliance", "audit", "verify", "--config", str(cfg),
         "--data-dir", str(data_dir)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    verdict = (verify.stdout + verify.stderr).strip().splitlines()
    return ids, f"exit {verify.returncode}: " + (verdict[-1] if verdict else "")


# ------------------------------------------------------------------ report


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def windows(run: Run) -> list[dict[str, Any]]:
    out = []
    for start in range(0, len(run.latency_ms), WINDOW):
        lat = run.latency_ms[start:start + WINDOW]
        out.append({"requests": f"{start + 1}-{start + len(lat)}",
                    "p50_ms": round(_pct(lat, 0.50), 1), "p99_ms": round(_pct(lat, 0.99), 1)})
    return out


def by_role(procs: dict[str, dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per process, keyed by role and pid (stable across samples while the pid lives)."""
    return {f"{p['role']}[{pid}]": {"rss_kib": p["rss_kib"], "fds": p["fds"], "files": p["files"]}
            for pid, p in procs.items()}


def memory(run: Run, warmup: int) -> dict[str, Any]:
    """Each process's RSS after warm-up and at the end, and its descriptors throughout.

    RSS after warm-up is the median of the samples over the first ``WINDOW`` requests
    after ``warmup``, RSS at the end the median over the last ``WINDOW`` (the final sample
    included): a server worker's RSS swings by 20-70 MiB for seconds while its audit
    segment checkpoints, so one sample at either end says more about the moment than
    about a trend. The peak after warm-up is reported beside them."""
    after = [s for s in run.samples if s["requests"] >= warmup] or run.samples[-1:]
    total = run.samples[-1]["requests"]
    head = [by_role(s["procs"]) for s in after if s["requests"] < after[0]["requests"] + WINDOW]
    tail = [by_role(s["procs"]) for s in after if s["requests"] > total - WINDOW]
    seen_after = [by_role(s["procs"]) for s in after]

    def median(values: list[int]) -> int | None:
        return int(statistics.median(values)) if values else None

    rows = {}
    for name in sorted({n for procs in seen_after for n in procs}):
        seen = [procs[name] for procs in seen_after if name in procs]
        a = median([procs[name]["rss_kib"] for procs in head if name in procs])
        b = median([procs[name]["rss_kib"] for procs in tail if name in procs])
        rows[name] = {
            "rss_warm_kib": a, "rss_end_kib": b,
            "rss_peak_kib": max(p["rss_kib"] for p in seen),
            "rss_growth_pct": round(100.0 * (b - a) / a, 2) if a and b else None,
            "fds_min": min(p["fds"] for p in seen), "fds_max": max(p["fds"] for p in seen),
            # Descriptors that are not sockets (files, pipes, the journal, DuckDB): the
            # sockets rise and fall with the clients' connections, these must not move.
            "files_min": min(p["files"] for p in seen), "files_max": max(p["files"] for p in seen),
        }
    # Per role (every PII worker together, ...): a recycled PII worker is a new pid, so
    # only the role's sum says what its replacements hold against what it held.
    def role_sums(procs: dict[str, dict[str, Any]]) -> dict[str, tuple[int, int]]:
        sums: dict[str, list[int]] = {}
        for key, proc in procs.items():
            acc = sums.setdefault(key.split("[")[0], [0, 0])
            acc[0] += proc["rss_kib"]
            acc[1] += 1
        return {role: (kib, n) for role, (kib, n) in sums.items()}

    heads, tails = [role_sums(p) for p in head], [role_sums(p) for p in tail]
    roles: dict[str, dict[str, Any]] = {}
    for role in sorted({r for sums in heads + tails for r in sums}):
        a = median([sums[role][0] for sums in heads if role in sums])
        b = median([sums[role][0] for sums in tails if role in sums])
        counts_a = {sums[role][1] for sums in heads if role in sums}
        counts_b = {sums[role][1] for sums in tails if role in sums}
        same = len(counts_a | counts_b) == 1
        roles[role] = {"warm_kib": a or 0, "end_kib": b or 0,
                       "warm_count": max(counts_a, default=0), "end_count": max(counts_b, default=0),
                       "growth_pct": round(100.0 * (b - a) / a, 2) if a and b and same else None}
    total_a = sum(r["warm_kib"] for r in roles.values())
    total_b = sum(r["end_kib"] for r in roles.values())
    return {"per_process": rows, "per_role": roles, "total_warm_kib": total_a,
            "total_end_kib": total_b,
            "total_growth_pct": round(100.0 * (total_b - total_a) / total_a, 2) if total_a else None,
            "processes_warm": len(head[0]) if head else 0,
            "processes_end": len(tail[-1]) if tail else 0}


def rss_target(mem: dict[str, Any]) -> dict[str, Any]:
    growth = [r["rss_growth_pct"] for r in mem["per_process"].values()
              if r["rss_growth_pct"] is not None]
    role_growth = [r["growth_pct"] for r in mem["per_role"].values() if r["growth_pct"] is not None]
    return {"worst_process_pct": max(growth, default=None),
            "worst_role_pct": max(role_growth, default=None),
            "total_pct": mem["total_growth_pct"],
            "met": bool(growth) and max(growth + role_growth) < 5.0}


def report(run: Run, mem: dict[str, Any], wins: list[dict[str, Any]], missing: list[str],
           recorded: int, verify: str, args: argparse.Namespace, elapsed_s: float) -> dict[str, Any]:
    status = Counter(run.statuses)
    fives = sum(n for s, n in status.items() if s >= 500)
    warm_windows = [w for i, w in enumerate(wins) if (i + 1) * WINDOW > args.warmup]
    base_p99 = warm_windows[0]["p99_ms"] if warm_windows else None
    drift = max((abs(w["p99_ms"] - base_p99) / base_p99 * 100.0 for w in warm_windows[1:]),
                default=0.0) if base_p99 else None
    fd_spread = [r["files_max"] - r["files_min"] for r in mem["per_process"].values()
                 if r["files_max"] is not None]
    socket_max = max((r["fds_max"] - r["files_min"] for r in mem["per_process"].values()
                      if r["fds_max"] is not None), default=0)
    targets = {
        "rss_growth_lt_5pct": rss_target(mem),
        # Files and pipes flat; sockets bounded by the clients' and upstream connections.
        "fds_flat": {"largest_non_socket_spread": max(fd_spread, default=None),
                     "most_sockets_in_one_process": socket_max,
                     "met": max(fd_spread, default=0) <= 2
                     and socket_max <= 2 * args.concurrency + 16},
        "p99_drift_lt_20pct": {"worst_pct": round(drift, 1) if drift is not None else None,
                               "met": drift is not None and drift < 20.0},
        "no_5xx": {"count": fives, "met": fives == 0},
        "no_acknowledged_request_missing": {"acknowledged": len(run.acknowledged),
                                            "recorded": recorded, "missing": len(missing),
                                            "met": not missing},
    }
    return {
        "command": " ".join([sys.executable, *sys.argv]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "load": {"requests": len(run.latency_ms), "requests_planned": args.requests,
                 "stopped_early": STOPPING.is_set(), "concurrency": args.concurrency,
                 "workers": args.workers, "warmup": args.warmup,
                 "mix": [k.name for k in MIX], "elapsed_s": round(elapsed_s, 1),
                 "req_per_s": round(len(run.latency_ms) / elapsed_s, 1)},
        "status_by_kind": {k: dict(sorted(c.items())) for k, c in sorted(run.by_kind.items())},
        "errors": dict(run.errors),
        "windows": wins,
        "memory": mem,
        "audit": {"verify": verify, "missing_sample": missing[:20]},
        "targets": targets,
        "samples": run.samples,
    }


def markdown(r: dict[str, Any]) -> str:
    lines = [f"command: `{r['command']}`", f"machine: {r['machine']}", f"load: {r['load']}", "",
             "| requests | P50 ms | P99 ms |", "| --- | ---: | ---: |"]
    lines += [f"| {w['requests']} | {w['p50_ms']} | {w['p99_ms']} |" for w in r["windows"]]
    lines += ["", "| process | RSS after warm-up (MiB) | RSS at end (MiB) | growth | peak (MiB) "
              "| fds min-max | non-socket fds min-max |",
              "| --- | ---: | ---: | ---: | ---: | --- | --- |"]
    between = [p for p in r["memory"]["per_process"].values()
               if not p["rss_warm_kib"] and not p["rss_end_kib"]]
    for name, p in r["memory"]["per_process"].items():
        if p in between:
            continue
        warm = f"{p['rss_warm_kib'] / 1024:.1f}" if p["rss_warm_kib"] else "-"
        end = f"{p['rss_end_kib'] / 1024:.1f}" if p["rss_end_kib"] else "-"
        peak = f"{p['rss_peak_kib'] / 1024:.1f}" if p.get("rss_peak_kib") else "-"
        growth = f"{p['rss_growth_pct']}%" if p["rss_growth_pct"] is not None else "-"
        lines.append(f"| {name} | {warm} | {end} | {growth} | {peak} | {p['fds_min']}-{p['fds_max']} "
                     f"| {p['files_min']}-{p['files_max']} |")
    if between:
        peak = max(p.get("rss_peak_kib") or 0 for p in between) / 1024
        lines.append(f"| {len(between)} more, started and ended between (recycled PII workers) "
                     f"| - | - | - | {peak:.1f} | | |")
    m = r["memory"]
    lines += [f"| all | {m['total_warm_kib'] / 1024:.1f} | {m['total_end_kib'] / 1024:.1f} | "
              f"{m['total_growth_pct']}% | | | |", ""]
    if m.get("per_role"):
        lines += ["| role | processes after warm-up / at end | RSS after warm-up (MiB) "
                  "| RSS at end (MiB) | growth |", "| --- | --- | ---: | ---: | ---: |"]
        for name, role in m["per_role"].items():
            growth = f"{role['growth_pct']}%" if role["growth_pct"] is not None else "-"
            lines.append(f"| {name} | {role['warm_count']} / {role['end_count']} "
                         f"| {role['warm_kib'] / 1024:.1f} | {role['end_kib'] / 1024:.1f} | {growth} |")
        lines.append("")
    lines += ["| kind | statuses |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in r["status_by_kind"].items()]
    lines += ["", f"errors: {r['errors'] or 'none'}", f"audit verify: {r['audit']['verify']}", "",
              "| target | figures | met |", "| --- | --- | --- |"]
    for name, t in r["targets"].items():
        figures = {k: v for k, v in t.items() if k != "met"}
        lines.append(f"| {name} | {figures} | {'yes' if t['met'] else 'NO'} |")
    return "\n".join(lines)


def timeline(r: dict[str, Any], rows: int = 12) -> str:
    """RSS (MiB) and descriptors of each process over the run, ``rows`` samples evenly
    spread, as a Markdown table (the whole series is in the JSON)."""
    samples = r["samples"]
    if not samples:
        return ""
    step = max(1, (len(samples) - 1) // (rows - 1))
    picked = samples[::step]
    if picked[-1] is not samples[-1]:
        picked.append(samples[-1])
    # PII workers are recycled (new pids): one column for all of them, the rest by pid.
    names = sorted({n for s in picked for n in by_role(s["procs"])
                    if not n.startswith("pii-worker[")})
    head = "| t (s) | requests | " + " | ".join(names) + " | pii-workers | all RSS |"
    lines = [head, "| " + " | ".join(["---:"] * (len(names) + 4)) + " |"]
    for smp in picked:
        procs = by_role(smp["procs"])
        cells = [f"{procs[n]['rss_kib'] / 1024:.0f} MiB / {procs[n]['fds']} fd" if n in procs
                 else "-" for n in names]
        pii = [p["rss_kib"] for n, p in procs.items() if n.startswith("pii-worker[")]
        cells.append(f"{len(pii)}: {sum(pii) / 1024:.0f} MiB" if pii else "-")
        total = sum(p["rss_kib"] for p in procs.values()) / 1024
        lines.append(f"| {smp['t_s']:.0f} | {smp['requests']} | " + " | ".join(cells)
                     + f" | {total:.0f} MiB |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2, help="appliance server processes")
    ap.add_argument("--warmup", type=int, default=10_000, help="requests before the baseline")
    ap.add_argument("--sample-s", type=float, default=10.0)
    ap.add_argument("--out", type=Path, default=Path("/tmp/soak.json"))
    ap.add_argument("--render", type=Path, help="print the report of a saved run's JSON")
    args = ap.parse_args()
    if args.render:
        saved = json.loads(args.render.read_text())
        # Memory as this version measures it, from the saved samples (older runs too).
        sampled = Run(saved["load"]["requests"])
        sampled.samples = saved["samples"]
        saved["memory"] = memory(sampled, saved["load"]["warmup"])
        saved["targets"]["rss_growth_lt_5pct"] = rss_target(saved["memory"])
        print(markdown(saved) + "\n\n" + timeline(saved))
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: STOPPING.set())

    with tempfile.TemporaryDirectory(prefix="soak-") as tmp, fake_upstreams() as (oai, ant):
        work = Path(tmp)
        cfg = work / "soak.toml"
        cfg.write_text(to_toml(config(oai, ant, args.workers)))
        data = work / "data"
        key = create_key(data, tenant="soak", user="load")
        env = {UPSTREAM_KEY_ENV: UPSTREAM_KEY}
        run = Run(args.requests)
        with serve_subprocess(cfg, data, env=env, port=free_port(),
                              extra_args=("--log-level", "WARNING")) as srv:
            stop = threading.Event()
            watcher = threading.Thread(target=sampler, args=(srv.process.pid, run, args.sample_s, stop),
                                       daemon=True)
            watcher.start()
            t0 = time.monotonic()
            asyncio.run(load(srv.url, key, args.requests, args.concurrency, run))
            elapsed = time.monotonic() - t0
            stop.set()
            watcher.join()
        # The server stopped (SIGTERM): its writers sealed their segments.
        ids, verify = audit_ids(data, cfg)
        missing = [rid for rid in run.acknowledged if rid not in ids]
        result = report(run, memory(run, args.warmup), windows(run), missing, len(ids), verify,
                        args, elapsed)
    args.out.write_text(json.dumps(result, indent=1))
    print(markdown(result))
    print(f"\nfull figures: {args.out}")


if __name__ == "__main__":
    main()
