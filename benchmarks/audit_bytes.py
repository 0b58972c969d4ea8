"""Audit bytes per request, as shipped to the archive: sealed segment + its checkpoints.

Writes N request records through the real RecordStage (the record of a request with
every stage on: PII counts and recognizers, risk class and area, policy revision and
rules, usage and cost), closes it (which seals the segment, as at rotation or
shutdown), and sums the files a shipper copies. Two sizes give the marginal bytes per
record apart from a segment's fixed cost; ``--payload-every`` adds encrypted prompts.

    python benchmarks/audit_bytes.py [--sizes 20000,100000] [--payload-every 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from appliance.config import load_config  # noqa: E402
from appliance.core.context import Context, Principal, Usage  # noqa: E402
from appliance.core.findings import (  # noqa: E402
    AreaFinding,
    PiiFindings,
    PolicyFindings,
    RiskFindings,
    Verdict,
)
from appliance.pipeline.record import RecordStage  # noqa: E402


def make_ctx(i: int, payload: bool) -> Context:
    """A request as every stage leaves it (distinct ids, users, tenants: no free compression)."""
    ctx = Context(request_id=f"req_{i:08x}", route="chat.completions", body={}, api_key=None)
    ctx.principal = Principal(key_id=f"k{i % 40}", tenant=f"tenant{i % 4}", user=f"user{i % 50}",
                              roles=("dev",), application="helpdesk")
    ctx.requested_model = ctx.model = "gpt-4o"
    ctx.provider, ctx.provider_region = "openai", "eu"
    ctx.verdicts += [
        Verdict("pii_detect", findings=PiiFindings(
            True, counts={"PERSON": 1, "EMAIL_ADDRESS": 1},
            recognizers={"PERSON": ("SpacyRecognizer",), "EMAIL_ADDRESS": ("EmailRecognizer",)},
            languages=("en",))),
        Verdict("classify", findings=RiskFindings(
            "limited", "limited", areas=(AreaFinding("transparency", "50", 0.71),))),
        Verdict("decide", findings=PolicyFindings(allow=True, revision="rev-1")),
    ]
    ctx.usage = Usage(120 + i % 300, 80 + i % 200)
    ctx.cost_usd = 0.0012
    ctx.finished_at = ctx.started_at + 0.2
    if payload:
        ctx.obligations["store_payloads"] = True
        ctx.state["payload"] = {"request": {"messages": [{"role": "user", "content": "x" * 1500}]},
                                "response": "y" * 500}
    return ctx


async def write(data: Path, n: int, payload_every: int) -> int:
    stage = RecordStage(load_config(None, data_dir=data))
    await stage.start()
    contexts = iter(make_ctx(i, payload_every > 0 and i % payload_every == 0) for i in range(n))

    async def producer() -> None:
        for ctx in contexts:
            await stage.record(ctx)

    await asyncio.gather(*(producer() for _ in range(64)))
    await stage.aclose()
    audit = data / "audit"
    shipped = list((audit / "segments").glob("*.duckdb")) + list((audit / "checkpoints").glob("*"))
    return sum(p.stat().st_size for p in shipped if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="20000,100000")
    ap.add_argument("--payload-every", type=int, default=0)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    out: dict[str, object] = {"payload_every": args.payload_every}
    totals = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            totals[n] = asyncio.run(write(Path(tmp) / f"d{n}", n, args.payload_every))
            out[f"bytes_{n}"] = totals[n]
            out[f"bytes_per_record_{n}"] = round(totals[n] / n, 1)
    lo, hi = sizes[0], sizes[-1]
    out["marginal_bytes_per_record"] = round((totals[hi] - totals[lo]) / (hi - lo), 1)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
