"""Audit bytes per request, as shipped to the archive: sealed segment + its checkpoints.

Writes N request records through the real RecordStage (the record of a request with
every stage on: PII counts and recognizers, risk class, policy revision; as in
``audit_throughput.py``), closes it (which seals the segment, as at rotation or
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
sys.path.insert(0, str(ROOT / "benchmarks"))

from audit_throughput import make_ctx  # noqa: E402

from appliance.config import load_config  # noqa: E402
from appliance.pipeline.record import RecordStage  # noqa: E402


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
