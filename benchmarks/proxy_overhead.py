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

from appliance.testing.harness import (  # noqa: E402
    PASS_THROUGH,
    UPSTREAM_KEY_ENV,
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
        full_url: str | None = None) -> Load:
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
    )
    script.close()
    threads = 1 if connections == 1 else 2
    out = subprocess.run(
        # wrk drops requests slower than its 2 s default timeout from the latency figures
        # (they become socket errors): at 256 clients that hid the slowest requests.
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", "--latency",
         "--timeout", "30s",
         "-s", script.name, full_url or url + route.path],
        capture_output=True, text=True, check=True,
    ).stdout
    os.unlink(script.name)
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
              mcp_url: str | None = None) -> Iterator[tuple[str, str]]:
    parts = [openai_upstream("up", upstream, max_retries=0), {"server": {"workers": workers}}]
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
        yield srv.url + "/v1", key


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=int, default=8, help="seconds per measurement")
    ap.add_argument("--workers", type=int, default=1, help="appliance server processes")
    ap.add_argument("--full", action="store_true", help="also measure with every compliance stage on")
    ap.add_argument("--peer", choices=["litellm"], help="also measure LiteLLM's proxy")
    ap.add_argument("--concurrency", default="1,32,256")
    ap.add_argument("--rounds", type=int, default=1, help="interleaved repetitions (medians)")
    ap.add_argument("--routes", default="", help="also measure these routes: responses,mcp")
    args = ap.parse_args()
    extra = [ROUTES[r] for r in args.routes.split(",") if r]
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed (apt-get install wrk)")
    levels = [int(c) for c in args.concurrency.split(",")]
    rounds: dict[str, dict[int, list[Load]]] = {}
    by_route: dict[tuple[str, str], dict[int, list[Load]]] = {}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        work = Path(tmp)
        upstream = stack.enter_context(fake_upstream())
        mcp_url = stack.enter_context(fake_mcp()) if any(r.name == "mcp" for r in extra) else None
        targets = {"direct": (upstream, UPSTREAM_KEY),
                   "appliance": stack.enter_context(
                       appliance(upstream, work, args.workers, full=False, mcp_url=mcp_url))}
        if args.full:
            targets["appliance-full"] = stack.enter_context(
                appliance(upstream, work, args.workers, full=True, mcp_url=mcp_url))
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
