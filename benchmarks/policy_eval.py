"""Time of one policy decision: in-process and through the OPA REST path, per evaluator.

    .venv/bin/python benchmarks/policy_eval.py [--n 5000] [--dir policies]

Each path is timed with both embedded evaluators in the same run, interleaved in rounds
so load changes hit both alike: ``regorus`` (the default: the decision rule compiled to a
regorus VM program, regopy behind it) and ``regopy`` (rego-cpp alone, the baseline).
In-process: build_input(ctx) + evaluate + normalise, inline on the caller's thread
(target: median under 200 µs), and the same awaited through the engine's worker thread
(``[policy] offload``). REST: the same decision asked through opa-python-client's
AsyncOpaClient of `appliance policy serve`'s app on loopback (the path an OPA server
would take). Also the input conversion alone, to show where the time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

import orjson

from aiohttp.test_utils import TestServer
from opa_client.opa_async import AsyncOpaClient

from appliance.core.context import Context, Principal
from appliance.core.findings import PiiFindings, RiskFindings, Verdict
from appliance.config.policy import PolicyConfig
from appliance.policy.decision import Decision
from appliance.policy.engine import EmbeddedEngine
from appliance.policy.input import build_input
from appliance.policy.rego import _c, _lib, _push
from appliance.policy.server import create_app


def _ctx() -> Context:
    ctx = Context(
        request_id="r1",
        route="chat.completions",
        body={"model": "gpt-4o-mini", "max_tokens": 256, "messages": [{"role": "user", "content": "x" * 2000}]},
        api_key=None,
        principal=Principal("k1", "acme", "alice", "engineering", ("developer",)),
        requested_model="gpt-4o-mini",
        model="gpt-4o-mini",
        provider="openai",
        provider_region="eu",
    )
    ctx.verdicts.append(Verdict("pii_detect", findings=PiiFindings(
        True, {"PERSON": 2, "EMAIL_ADDRESS": 1}, languages=("en",))))
    ctx.verdicts.append(Verdict("classify", findings=RiskFindings("limited", "limited")))
    return ctx


EVALUATORS = ("regorus", "regopy")


def _stats(name: str, samples: list[float]) -> float:
    samples.sort()
    med = statistics.median(samples)
    p99 = samples[int(len(samples) * 0.99) - 1]
    print(
        f"{name:<52} median {med * 1e6:8.1f} µs   p99 {p99 * 1e6:8.1f} µs   "
        f"min {samples[0] * 1e6:7.1f} µs   (n={len(samples)})"
    )
    return med


def _timed(fns: dict[str, Callable[[], object]], n: int, rounds: int = 10) -> dict[str, list[float]]:
    """n samples of each function, taken in interleaved rounds."""
    out: dict[str, list[float]] = {k: [] for k in fns}
    per = max(n // rounds, 1)
    for _ in range(rounds):
        for name, fn in fns.items():
            for _ in range(per):
                t = time.perf_counter()
                fn()
                out[name].append(time.perf_counter() - t)
    return out


async def _timed_async(
    fns: dict[str, Callable[[], Awaitable[object]]], n: int, rounds: int = 10
) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {k: [] for k in fns}
    per = max(n // rounds, 1)
    for _ in range(rounds):
        for name, fn in fns.items():
            for _ in range(per):
                t = time.perf_counter()
                await fn()
                out[name].append(time.perf_counter() - t)
    return out


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--dir", type=Path, default=Path("policies"))
    args = ap.parse_args()
    engines = {ev: EmbeddedEngine(PolicyConfig(dir=args.dir, evaluator=ev)) for ev in EVALUATORS}
    for engine in engines.values():
        engine.load()
    assert engines["regorus"].evaluator == "regorus", engines["regorus"].evaluator_note
    ctx = _ctx()
    doc = build_input(ctx, provider_kind="openai")
    loaded = engines["regorus"]._loaded
    assert loaded is not None and loaded.fast is not None
    vm = loaded.fast
    for engine in engines.values():
        for _ in range(200):
            engine.decide_sync(build_input(ctx, provider_kind="openai"))

    def push_regopy() -> None:
        p = _c.rego_new_input()
        _push(p, doc)
        _lib.regoFreeInput(p)

    def push_vm() -> None:
        vm._vm().set_input_json(orjson.dumps(doc).decode())

    conv = _timed({"regopy": push_regopy, "regorus": push_vm}, args.n)
    only_eval = _timed({ev: partial(engines[ev].decide_sync, doc) for ev in EVALUATORS}, args.n)
    def decide_fresh(engine: EmbeddedEngine) -> Decision:
        return engine.decide_sync(build_input(ctx, provider_kind="openai"))

    full = _timed({ev: partial(decide_fresh, engines[ev]) for ev in EVALUATORS}, args.n)
    for engine in engines.values():
        assert engine.decide_sync(build_input(ctx, provider_kind="openai")).allow

    # What the decide stage awaits with ``offload = true``: the engine's worker thread.
    workers = {
        ev: EmbeddedEngine(PolicyConfig(dir=args.dir, evaluator=ev, offload=True, reload_interval_s=3600))
        for ev in EVALUATORS
    }
    for worker in workers.values():
        await worker.start()
    try:
        for worker in workers.values():
            for _ in range(200):
                await worker.decide(doc)
        def decide_offloaded(worker: EmbeddedEngine) -> Awaitable[Decision]:
            return worker.decide(build_input(ctx, provider_kind="openai"))

        offloaded = await _timed_async({ev: partial(decide_offloaded, workers[ev]) for ev in EVALUATORS}, args.n)
    finally:
        for worker in workers.values():
            await worker.aclose()

    servers = {
        ev: TestServer(create_app(PolicyConfig(dir=args.dir, evaluator=ev), args.dir), host="127.0.0.1", port=0)
        for ev in EVALUATORS
    }
    for server in servers.values():
        await server.start_server()
    try:
        async with (
            AsyncOpaClient(host="127.0.0.1", port=servers["regorus"].port, retries=0) as fast_client,
            AsyncOpaClient(host="127.0.0.1", port=servers["regopy"].port, retries=0) as ref_client,
        ):
            clients = {"regorus": fast_client, "regopy": ref_client}
            for client in clients.values():
                for _ in range(100):
                    await client.query_rule(doc, "appliance.main", "decision")
            def ask(client: AsyncOpaClient) -> Awaitable[object]:
                return client.query_rule(build_input(ctx, provider_kind="openai"), "appliance.main", "decision")

            rest = await _timed_async(
                {ev: partial(ask, clients[ev]) for ev in EVALUATORS}, max(args.n // 5, 200)
            )
            for client in clients.values():
                out = await client.query_rule(doc, "appliance.main", "decision")
                assert out["result"]["allow"] is True
    finally:
        for server in servers.values():
            await server.close()

    print(f"policy revision {engines['regorus'].revision} from {args.dir}")
    meds: dict[tuple[str, str], float] = {}
    for ev in EVALUATORS:
        label = f"[{ev}]"
        _stats(f"{label} input conversion only", conv[ev])
        _stats(f"{label} evaluate (input built)", only_eval[ev])
        meds[(ev, "in")] = _stats(f"{label} in-process: build_input + evaluate", full[ev])
        _stats(f"{label} in-process, awaited on the worker thread", offloaded[ev])
        meds[(ev, "rest")] = _stats(f"{label} OPA REST path (AsyncOpaClient, loopback)", rest[ev])
    med = meds[("regorus", "in")]
    print(
        f"in-process median (default evaluator) vs 200 µs target: {med * 1e6 / 200:.2f}x of target "
        f"({'meets' if med < 200e-6 else 'misses'}); regopy / regorus in-process: "
        f"{meds[('regopy', 'in')] / med:.1f}x; REST regopy / regorus: "
        f"{meds[('regopy', 'rest')] / meds[('regorus', 'rest')]:.1f}x"
    )


if __name__ == "__main__":
    asyncio.run(main())
