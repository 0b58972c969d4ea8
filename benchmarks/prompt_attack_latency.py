"""Added cost of the prompt-attack screen per request, against the screen off, same run.

    .venv/bin/python benchmarks/prompt_attack_latency.py [--rounds N]

What the classify stage does extra per request: read the body for its places
(``attack_sources``) and score every text (``PromptAttackScreen.scan``, the learned head's dot product on the turn's vector, which
the classify stage has already computed for the risk classifier). Measured on
realistic requests, interleaved with the baseline (the same loop with the screen
switched off) so machine noise hits both alike: the ordinary enterprise prompts of
``benchmarks/data/ordinary_prompts/dev.yaml`` (EN + DE, mails to long pasted
documents) as single user turns, the same prompts as the question of a tool-call
conversation with a 1 kB tool result, and the public attack set. Prints median, p95
and p99 of the added time per request. Leaves out the rest of the stage (embeddings,
rules of the risk classifier), which it does not change.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from appliance.risk.attack_head import load_attack_head  # noqa: E402
from appliance.risk.attacks import (  # noqa: E402
    PromptAttackScreen,
    attack_sources,
    latest_turn_place,
    load_attack_rules,
)

TOOL_RESULT = json.dumps({"results": [
    {"title": f"Quarterly report {i}", "snippet": "Revenue grew 4 % in the northern region; "
     "costs stayed flat. Die Umsätze im Norden stiegen um 4 %, die Kosten blieben stabil."}
    for i in range(8)]})


def requests() -> list[dict[str, Any]]:
    ordinary = yaml.safe_load(
        (ROOT / "benchmarks/data/ordinary_prompts/dev.yaml").read_text("utf-8"))["items"]
    out: list[dict[str, Any]] = []
    for item in ordinary:
        out.append({"messages": [{"role": "user", "content": item["text"]}]})
        out.append({"messages": [
            {"role": "system", "content": "You are the assistant of our sales team."},
            {"role": "user", "content": item["text"]},
            {"role": "assistant", "content": None, "tool_calls": []},
            {"role": "tool", "tool_call_id": "c1", "content": TOOL_RESULT}]})
    public = (ROOT / "benchmarks/data/prompt_attacks/public_bastioncorpus.jsonl").read_text("utf-8")
    for line in public.splitlines():
        out.append({"messages": [{"role": "user", "content": json.loads(line)["text"]}]})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    # With the learned head (off by default): an upper bound; it reads the vector the
    # classify stage computed anyway, so it adds one dot product.
    screen = PromptAttackScreen(load_attack_rules(), head=load_attack_head())
    vector = np.random.default_rng(0).standard_normal(512).astype(np.float32)
    vector /= np.linalg.norm(vector)
    bodies = requests()
    chars = sorted(sum(len(s.text) for s in attack_sources(b)) for b in bodies)
    added: list[float] = []
    cpu: list[float] = []
    for _ in range(args.rounds):
        for body in bodies:
            c0, t0 = time.thread_time(), time.perf_counter()
            sources = attack_sources(body)  # the screen on
            screen.scan(sources, vector, latest_turn_place(body))
            c1, t1 = time.thread_time(), time.perf_counter()
            _ = body.get("messages")  # the screen off: the stage does nothing here
            c2, t2 = time.thread_time(), time.perf_counter()
            added.append((t1 - t0) - (t2 - t1))
            cpu.append((c1 - c0) - (c2 - c1))
    added.sort()
    cpu.sort()
    n = len(added)
    print(f"{len(bodies)} requests x {args.rounds} rounds; text screened per request: median "
          f"{chars[len(chars) // 2]} chars, max {chars[-1]}")
    print(f"added per request: median {statistics.median(added) * 1e3:.3f} ms, "
          f"p95 {added[int(n * 0.95)] * 1e3:.3f} ms, p99 {added[int(n * 0.99)] * 1e3:.3f} ms, "
          f"max {added[-1] * 1e3:.3f} ms (bar: 5 ms)")
    print(f"CPU time of this thread per request (what a loaded machine's waiting leaves out): "
          f"median {statistics.median(cpu) * 1e3:.3f} ms, p95 {cpu[int(n * 0.95)] * 1e3:.3f} ms, "
          f"p99 {cpu[int(n * 0.99)] * 1e3:.3f} ms, max {cpu[-1] * 1e3:.3f} ms")
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
