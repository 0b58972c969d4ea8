"""Added latency and throughput of the appliance, against calling the upstream directly.

One run: a fake OpenAI upstream in its own process; the appliance in front of it (bare
pass-through, and with every compliance stage on when ``--full``); optionally LiteLLM's
proxy in front of the same upstream (``--peer litellm``). Load comes from ``wrk`` (C, one
thread per core-ish) so the load generator costs little of the 2 cores. Prints P50/P99
latency and requests/s at 1, 32 and 256 concurrent clients, and the ratios. "loop ms" is
the closed loop's mean latency by Little's law (clients / req/s): wrk's P50 and mean only
count requests that finished inside the window, which flatters a server that leaves some
requests waiting past its end.

``--routes responses,mcp`` also measures OpenAI's Responses API (``POST /v1/responses``,
forwarded natively to the fake's Responses endpoint) and one MCP ``tools/call`` through
the gateway (``/mcp/crm``, to an upstream built with the ``mcp`` SDK, the call's argument
an e-mail address), each against calling its upstream directly, printed next to chat
completions: with ``--full`` every stage runs on them as on chat.

``--rounds N`` measures every target N times, round-robin (all targets once, then again),
and prints each figure's median over the rounds, and every round's ratio against LiteLLM:
on a shared host the machine's speed drifts over minutes, so one back-to-back pair can
decide a comparison by chance while interleaved rounds show it.

    python benchmarks/proxy_overhead.py [--full] [--peer litellm] [--workers 2] [--duration 10]
                                        [--rounds 3] [--routes responses,mcp]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from appliance.testing.engines import free_port  # noqa: E402
from appliance.testing.harness import (  # noqa: E402
    PASS_THROUGH,
    UPSTREAM_KEY_ENV,
    benchmark_key,
    create_key,
    merge,
    openai_upstream,
    serve_subprocess,
    to_toml,
)

UPSTREAM_KEY = "sk-bench-upstream"
BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Summarise the quarterly report in one line."}]}


@dataclass(frozen=True)
class Route:
    """What one measured request is: its path under a target and its body."""

    name: str
    path: str
    body: dict[str, object]
    headers: tuple[tuple[str, str], ...] = ()


CHAT = Route("chat", "/chat/completions", BODY)
#: The extra routes of ``--routes``: the same prompt as a Responses request, and a tool call.
ROUTES = {
    "responses": Route("responses", "/responses",
                       {"model": "gpt-4o", "input": "Summarise the quarterly report in one line."}),
    "mcp": Route("mcp", "/mcp/crm",
                 {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                  "params": {"name": "lookup_customer", "arguments": {"email": "jane.roe@example.com"}}},
                 (("Accept", "application/json, text/event-stream"),)),
}


def wait_port(port: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {port}")


@contextmanager
def process(cmd: list[str], env: dict[str, str] | None = None, log: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    out = open(log, "wb") if log else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


@contextmanager
def fake_upstream() -> Iterator[str]:
    port = free_port()
    code = (
        "import asyncio, uvloop\n"
        "from appliance.testing.fakes import FakeOpenAI\n"
        "async def main():\n"
        f"    f = FakeOpenAI(api_key={UPSTREAM_KEY!r}, record=False)\n"
        f"    await f.start(port={port})\n"
        "    await asyncio.Event().wait()\n"
        "uvloop.run(main())\n"
    )
    with process([sys.executable, "-c", code]):
        wait_port(port)
        yield f"http://127.0.0.1:{port}/v1"


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    #: wrk's mean latency: only of requests that finished inside the window, so a server
    #: that leaves some requests waiting past its end shows a low mean (and P50).
    mean_ms: float


def loop_mean_ms(clients: int, load: Load) -> float:
    """A closed loop's mean latency by Little's law (every client always waits on one
    request): clients / throughput, with nothing censored."""
    return 1000.0 * clients / load.rps if load.rps else float("inf")


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    assert m, text
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(url: str, key: str, connections: int, duration: int, route: Route = CHAT,
        full_url: str | None = None, bodies: Path | None = None, timeout_s: int = 30) -> Load:
    """One closed-loop measurement. ``bodies``: a file of request bodies, one JSON per line,
    sent in turn (each wrk thread takes every other line), instead of ``route.body``."""
    threads = 1 if connections == 1 else 2
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    script.write(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(json.dumps(route.body))}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {key}"\n'
        + "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in route.headers)
        + "function response(status, headers, body)\n"
        "  if status ~= 200 then bad = (bad or 0) + 1 end\n"
        "end\n"
        + ("" if bodies is None else (
            "local started = 0\n"
            "function setup(thread) thread:set('tid', started); started = started + 1 end\n"
            "function init(args)\n"
            f"  bodies = {{}}; for line in io.lines({json.dumps(str(bodies))}) do "
            "bodies[#bodies + 1] = line end\n"
            "  n = tid\n"
            "end\n"
            "function request()\n"
            "  local b = bodies[(n % #bodies) + 1]\n"
            f"  n = n + {threads}\n"
            "  return wrk.format(nil, nil, nil, b)\n"
            "end\n"))
    )
    script.close()
    out = subprocess.run(
        # wrk drops requests slower than its 2 s default timeout from the latency figures
        # (they become socket errors): at 256 clients that hid the slowest requests.
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", "--latency",
         "--timeout", f"{timeout_s}s",
         "-s", script.name, full_url or url + route.path],
        capture_output=True, text=True, check=True,
    ).stdout
    os.unlink(script.name)
    finished = re.search(r"(\d+) requests in", out)
    if not finished or int(finished.group(1)) == 0:
        return Load(0.0, float("nan"), float("nan"), connections, float("nan"))  # none finished
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errs = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failed = (int(errs.group(1)) if errs else 0) + (sum(map(int, sock.groups())) if sock else 0)
    mean = _ms(re.search(r"Latency\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    return Load(rps, p50, p99, failed, mean)


def median_load(runs: list[Load]) -> Load:
    """Each figure's median over the rounds (taken figure by figure)."""
    med = statistics.median
    return Load(med(r.rps for r in runs), med(r.p50_ms for r in runs), med(r.p99_ms for r in runs),
                sum(r.errors for r in runs), med(r.mean_ms for r in runs))


@contextmanager
def fake_mcp() -> Iterator[str]:
    """The MCP upstream (FastMCP, streamable HTTP) in its own process; its URL."""
    code = (
        "import sys, threading\n"
        "from appliance.testing.fakes.mcp_server import FakeMcpServer\n"
        "with FakeMcpServer('crm', record=False).running() as s:\n"
        "    print(s.url, flush=True)\n"
        "    threading.Event().wait()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            start_new_session=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().decode().strip()
        if not url:
            raise SystemExit("the fake MCP server did not start")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


@contextmanager
def appliance(upstream: str, workdir: Path, workers: int, full: bool,
              mcp_url: str | None = None) -> Iterator[tuple[str, str, Path]]:
    # The provider stands for one hosted in the EU: the generated documents carry
    # special-category data now and then, which the shipped GDPR policy lets go (with the
    # application's Art. 9 basis, see benchmark_key) only to providers in allowed regions.
    parts = [openai_upstream("up", upstream, max_retries=0, region="eu"),
             {"server": {"workers": workers}}]
    if mcp_url:
        parts.append({"mcp": {"servers": {"crm": {"url": mcp_url, "region": "eu"}}}})
    if not full:
        parts.append(PASS_THROUGH)
    cfg = workdir / ("full.toml" if full else "bare.toml")
    cfg.write_text(to_toml(merge(*parts)))
    data = workdir / ("data-full" if full else "data-bare")
    key = create_key(data, tenant="bench", user="load")
    env = {UPSTREAM_KEY_ENV: UPSTREAM_KEY}
    with serve_subprocess(cfg, data, env=env, port=free_port(), extra_args=("--log-level", "WARNING")) as srv:
        yield srv.url + "/v1", key, data


@contextmanager
def litellm(upstream: str, workdir: Path) -> Iterator[tuple[str, str]]:
    exe = shutil.which("litellm") or os.environ.get("LITELLM_BIN")
    if not exe:
        raise SystemExit("--peer litellm needs the litellm CLI on PATH or LITELLM_BIN (see ../shared/DEPENDENCIES.md)")
    cfg = workdir / "litellm.yaml"
    cfg.write_text(
        "model_list:\n"
        "  - model_name: gpt-4o\n"
        f"    litellm_params: {{model: openai/gpt-4o, api_base: \"{upstream}\", api_key: {UPSTREAM_KEY}}}\n"
        "litellm_settings: {telemetry: false}\n"
        "general_settings: {master_key: sk-proxy-master-1234}\n"
    )
    port = free_port()
    with process([exe, "--config", str(cfg), "--port", str(port), "--host", "127.0.0.1"],
                 env={"LITELLM_LOCAL_MODEL_COST_MAP": "True"}, log=workdir / "litellm.log"):
        wait_port(port, timeout=300)
        time.sleep(2)
        yield f"http://127.0.0.1:{port}/v1", "sk-proxy-master-1234"


#: Requests written per shape: more than one measurement sends, so no body repeats within
#: it; and the appliance gets a tenant of its own per measurement, so its findings cache
#: starts cold every time (only R's repeated part is answered from it).
_BODIES = {"S": 6000, "M": 1500, "L": 300, "XL": 60, "R": 6000}
#: Clients per shape by default: a 100 KB document takes about a second of CPU with every
#: stage on, so 256 of them in a closed loop would wait minutes for one round on 2 cores.
_LEVELS = {"S": (1, 32, 256), "M": (1, 32, 256), "L": (1, 32), "XL": (1, 8), "R": (1, 32, 256)}
#: Window per measurement, in multiples of --duration (long prompts finish fewer requests).
_WINDOW = {"S": 1, "M": 1, "L": 2, "XL": 4, "R": 1}


def write_bodies(shape: str, stream: bool, first: int, count: int, path: Path) -> Path:
    from appliance.testing.prompt_shapes import body

    with path.open("w") as f:
        for i in range(first, first + count):
            f.write(json.dumps(body(shape, i, stream=stream), ensure_ascii=False) + "\n")
    return path


async def _ttft(url: str, key: str, bodies: Path, n: int) -> tuple[float, float]:
    """P50 of the time to the first streamed text and to the end, one client, ``n`` requests."""
    import aiohttp

    lines = bodies.read_text().splitlines()
    first: list[float] = []
    whole: list[float] = []
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
        for line in lines[:n]:
            began = time.perf_counter()
            seen = None
            try:
                async with http.post(url + "/chat/completions", data=line.encode(),
                                     headers=headers) as r:
                    async for raw in r.content:
                        if seen is None and raw.startswith(b"data: {") \
                                and b'"content":"' in raw and b'"content":""' not in raw:
                            seen = time.perf_counter() - began
                    if r.status != 200 or seen is None:
                        continue
            except (TimeoutError, aiohttp.ClientError):
                print(f"  a streamed request to {url} failed or took over 120 s", file=sys.stderr)
                continue
            first.append(seen)
            whole.append(time.perf_counter() - began)
    if not first:
        return float("nan"), float("nan")
    return statistics.median(first) * 1e3, statistics.median(whole) * 1e3


def prompt_matrix(args: argparse.Namespace) -> int:
    """``--prompts``: every shape, streamed and not, at its client counts, for every target
    (the direct call, the appliance bare and with every stage, LiteLLM with ``--peer``)."""
    import asyncio

    shapes = [x for x in args.prompts.split(",") if x]
    unknown = [x for x in shapes if x not in _BODIES]
    if unknown:
        raise SystemExit(f"unknown shape(s) {unknown}; one of {','.join(_BODIES)}")
    rows: list[tuple[str, str, str, int, Load]] = []
    ttfts: dict[tuple[str, str], tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        work = Path(tmp)
        upstream = stack.enter_context(fake_upstream())
        served: dict[str, tuple[str, str | Path]] = {"direct": (upstream, UPSTREAM_KEY)}
        bare = stack.enter_context(appliance(upstream, work, args.workers, full=False))
        served["appliance"] = (bare[0], bare[2])
        full = stack.enter_context(appliance(upstream, work, args.workers, full=True))
        served["appliance-full"] = (full[0], full[2])
        if args.peer == "litellm":
            served["litellm"] = stack.enter_context(litellm(upstream, work))
        runs = 0

        def key_for(name: str) -> str:
            nonlocal runs
            url, secret = served[name]
            if isinstance(secret, Path):  # an appliance: a tenant of its own, a cold cache
                runs += 1
                return benchmark_key(secret, f"bench-{runs}")
            return secret

        for url, secret in served.values():  # warm-up: every target, every code path once
            for stream in (False, True):
                warm = write_bodies("S", stream, 900_000, 50, work / "warm.jsonl")
                key = benchmark_key(secret, "warm") if isinstance(secret, Path) else secret
                wrk(url, key, 4, 2, bodies=warm)
        for shape in shapes:
            levels = ([int(c) for c in args.concurrency.split(",")] if args.concurrency_given
                      else list(_LEVELS[shape]))
            window = args.duration * _WINDOW[shape]
            per_run = _BODIES[shape]
            print(f"[{time.strftime('%H:%M:%S')}] {shape}: writing bodies", file=sys.stderr, flush=True)
            files = {stream: write_bodies(shape, stream, 0, per_run, work / f"{shape}-{stream}.jsonl")
                     for stream in (False, True)}
            for stream in (False, True):
                mode = "stream" if stream else "whole"
                for c in levels:
                    for name in served:
                        load = wrk(served[name][0], key_for(name), c, window, bodies=files[stream],
                                   timeout_s=max(30, window * 4))
                        rows.append((shape, mode, name, c, load))
                        print(f"  {shape} {mode} {name} {c}: {load}", file=sys.stderr, flush=True)
                if stream:
                    n = {"S": 30, "M": 20, "R": 30, "L": 10, "XL": 4}[shape]
                    for name in served:
                        ttfts[(shape, name)] = asyncio.run(
                            _ttft(served[name][0], key_for(name), files[True], n))
                print(f"[{time.strftime('%H:%M:%S')}] {shape} {mode} done", file=sys.stderr, flush=True)
    print(f"--prompts: workers={args.workers} cores={os.cpu_count()} load average "
          f"{os.getloadavg()[0]:.1f} (at the end); window {args.duration}s x "
          f"{'/'.join(f'{k}:{v}' for k, v in _WINDOW.items())}")
    print(f"{'shape':<6}{'mode':<7}{'target':<16}{'clients':>8}{'req/s':>9}{'P50 ms':>10}"
          f"{'P99 ms':>10}{'+P50 ms':>10}{'loop ms':>10}{'+loop ms':>10}{'errors':>8}")
    direct = {(sh, m, c): ld for sh, m, n, c, ld in rows if n == "direct"}
    for shape, mode, name, c, load in rows:
        d = direct[(shape, mode, c)]
        print(f"{shape:<6}{mode:<7}{name:<16}{c:>8}{load.rps:>9.1f}{load.p50_ms:>10.2f}"
              f"{load.p99_ms:>10.2f}{load.p50_ms - d.p50_ms:>10.2f}{loop_mean_ms(c, load):>10.1f}"
              f"{loop_mean_ms(c, load) - loop_mean_ms(c, d):>10.1f}{load.errors:>8}")
    print("\ntime to first streamed text, 1 client (P50 ms; added = minus the direct call's):")
    for shape in shapes:
        d = ttfts[(shape, "direct")]
        print(f"  {shape:<4}" + "  ".join(
            f"{name} {t[0]:.2f} (+{t[0] - d[0]:.2f}), whole {t[1]:.1f}"
            for (sh, name), t in ttfts.items() if sh == shape))
    if args.peer == "litellm":
        print("\nevery stage on against LiteLLM's pass-through, same run:")
        got = {(sh, m, n, c): ld for sh, m, n, c, ld in rows}
        for shape in shapes:
            for mode in ("whole", "stream"):
                line = []
                for c in sorted({c for sh, m, n, c, _ in rows if sh == shape and m == mode}):
                    a, p = got[(shape, mode, "appliance-full", c)], got[(shape, mode, "litellm", c)]
                    d = got[(shape, mode, "direct", c)]
                    line.append(f"{c} clients: +P50 {a.p50_ms - d.p50_ms:.1f} vs {p.p50_ms - d.p50_ms:.1f} ms,"
                                f" req/s x{a.rps / p.rps if p.rps else float('nan'):.2f}")
                print(f"  {shape:<3}{mode:<7}" + "; ".join(line))
            a, p, d = ttfts[(shape, "appliance-full")], ttfts[(shape, "litellm")], ttfts[(shape, "direct")]
            print(f"  {shape:<3}TTFT   +{a[0] - d[0]:.2f} vs +{p[0] - d[0]:.2f} ms")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=int, default=8, help="seconds per measurement")
    ap.add_argument("--workers", type=int, default=1, help="appliance server processes")
    ap.add_argument("--full", action="store_true", help="also measure with every compliance stage on")
    ap.add_argument("--peer", choices=["litellm"], help="also measure LiteLLM's proxy")
    ap.add_argument("--concurrency", default="1,32,256")
    ap.add_argument("--rounds", type=int, default=1, help="interleaved repetitions (medians)")
    ap.add_argument("--routes", default="", help="also measure these routes: responses,mcp")
    ap.add_argument("--prompts", nargs="?", const="S,M,L,XL,R", default="",
                    help="measure realistic prompt shapes instead (S,M,L,XL,R)")
    args = ap.parse_args()
    args.concurrency_given = "--concurrency" in " ".join(sys.argv)
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed (apt-get install wrk)")
    if args.prompts:
        return prompt_matrix(args)
    extra = [ROUTES[r] for r in args.routes.split(",") if r]
    levels = [int(c) for c in args.concurrency.split(",")]
    rounds: dict[str, dict[int, list[Load]]] = {}
    by_route: dict[tuple[str, str], dict[int, list[Load]]] = {}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        work = Path(tmp)
        upstream = stack.enter_context(fake_upstream())
        mcp_url = stack.enter_context(fake_mcp()) if any(r.name == "mcp" for r in extra) else None
        targets = {"direct": (upstream, UPSTREAM_KEY),
                   "appliance": stack.enter_context(
                       appliance(upstream, work, args.workers, full=False, mcp_url=mcp_url))[:2]}
        if args.full:
            targets["appliance-full"] = stack.enter_context(
                appliance(upstream, work, args.workers, full=True, mcp_url=mcp_url))[:2]
        if args.peer == "litellm":
            targets["litellm"] = stack.enter_context(litellm(upstream, work))
        for url, key in targets.values():
            wrk(url, key, 8, 2)  # warm-up
        def route_url(name: str, base: str, route: Route) -> str:
            if name == "direct" and route.name == "mcp":
                assert mcp_url is not None
                return mcp_url
            return base.removesuffix("/v1") + route.path if route.name == "mcp" else base + route.path

        for route in extra:
            for name, (url, key) in targets.items():
                if name != "litellm":
                    wrk(url, key, 8, 2, route, route_url(name, url, route))  # warm-up
        for _ in range(args.rounds):
            for name, (url, key) in targets.items():
                for c in levels:
                    rounds.setdefault(name, {}).setdefault(c, []).append(wrk(url, key, c, args.duration))
                for route in extra:
                    if name == "litellm":
                        continue
                    for c in levels:
                        by_route.setdefault((name, route.name), {}).setdefault(c, []).append(
                            wrk(url, key, c, args.duration, route, route_url(name, url, route)))
    results = {name: {c: median_load(runs) for c, runs in by_level.items()}
               for name, by_level in rounds.items()}
    print(f"workers={args.workers} duration={args.duration}s cores={os.cpu_count()} "
          f"rounds={args.rounds} (medians)")
    print(f"{'target':<16}{'clients':>8}{'req/s':>10}{'P50 ms':>9}{'P99 ms':>9}{'mean ms':>9}"
          f"{'+P50 ms':>9}{'loop ms':>9}{'errors':>8}")
    for name, by_level in results.items():
        for c, r in by_level.items():
            added = r.p50_ms - results["direct"][c].p50_ms
            print(f"{name:<16}{c:>8}{r.rps:>10.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.mean_ms:>9.2f}"
                  f"{added:>9.2f}{loop_mean_ms(c, r):>9.2f}{r.errors:>8}")
    if extra:
        print(f"\n{'route':<11}{'target':<16}{'clients':>8}{'req/s':>10}{'P50 ms':>9}{'P99 ms':>9}"
              f"{'+P50 ms':>9}{'errors':>8}")
        for route in [CHAT, *extra]:
            for name in [n for n in results if n != "litellm"]:
                for c in levels:
                    if route is CHAT:
                        r, d = results[name][c], results["direct"][c]
                    else:
                        r = median_load(by_route[(name, route.name)][c])
                        d = median_load(by_route[("direct", route.name)][c])
                    print(f"{route.name:<11}{name:<16}{c:>8}{r.rps:>10.0f}{r.p50_ms:>9.2f}"
                          f"{r.p99_ms:>9.2f}{r.p50_ms - d.p50_ms:>9.2f}{r.errors:>8}")
    if "litellm" in results:
        print("\nratios against LiteLLM (higher is better for the appliance):")
        for name in [n for n in results if n.startswith("appliance")]:
            for c in levels:
                a, peer = results[name][c], results["litellm"][c]
                d = results["direct"][c]
                print(f"  {name:<16} clients={c:<4} req/s x{a.rps / peer.rps:.2f}  "
                      f"added P50 {a.p50_ms - d.p50_ms:.2f} ms vs {peer.p50_ms - d.p50_ms:.2f} ms, "
                      f"mean {a.mean_ms - d.mean_ms:.2f} ms vs {peer.mean_ms - d.mean_ms:.2f} ms, "
                      f"added loop mean {loop_mean_ms(c, a) - loop_mean_ms(c, d):.2f} ms vs "
                      f"{loop_mean_ms(c, peer) - loop_mean_ms(c, d):.2f} ms")
                if args.rounds > 1:
                    per_round = zip(rounds[name][c], rounds["litellm"][c], rounds["direct"][c],
                                    strict=True)
                    print("    each round: " + "; ".join(
                        f"x{x.rps / y.rps:.2f} P50 {x.p50_ms - z.p50_ms:.2f} vs "
                        f"{y.p50_ms - z.p50_ms:.2f} ms, loop {loop_mean_ms(c, x) - loop_mean_ms(c, z):.2f}"
                        f" vs {loop_mean_ms(c, y) - loop_mean_ms(c, z):.2f} ms"
                        for x, y, z in per_round))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
