"""False blocks on ordinary work: the AI Act decision on ordinary enterprise prompts.

    .venv/bin/python benchmarks/ordinary_prompts.py [--part dev|heldout] [--data-dir DIR]

Runs the *decision*, not only the class: each prompt goes as the latest user turn of a
chat request through the real classify stage (rules, both encoders, the trained head,
the prompt safety screen) and the real decide stage (the shipped Rego policies on the
embedded engine), for a caller of tenant ``acme`` with no registered application, to a
model in the EU. The PII stage is not run (its policy facts say "scanned, nothing
found"): this check is about the AI Act classification and its policy, and the PII
policies would only add denials for secrets and special-category transfers.

Prints the share of prompts denied, tagged high-risk, tagged prohibited, and those the
policy marks "registration needed" -- overall, per category and per language -- against
the bars (at most 0.5 % denied, at most 2 % high-risk), the median latency of the
classify stage, and for the development part the prompts that were flagged. The
held-out part (``heldout.yaml``, frozen) prints counts only, unless ``--show-held-out``
is given; it is run once, at the end.

Data: ``benchmarks/data/ordinary_prompts/`` (see the headers of its two files).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from appliance.config import load_config
from appliance.core.context import Context, Principal
from appliance.core.findings import PiiFindings, PolicyFindings, RiskFindings, Verdict
from appliance.keys.store import ControlPlane, control_plane_path
from appliance.pipeline.classify import ClassifyStage
from appliance.pipeline.decide import DecideStage
from appliance.risk.apps import AppDirectory
from appliance.risk.engine import build_classifier

DATA = ROOT / "benchmarks" / "data" / "ordinary_prompts"
PARTS = {"dev": DATA / "dev.yaml", "heldout": DATA / "heldout.yaml"}
DENIED_BAR = 0.005
HIGH_BAR = 0.02
LATENCY_BAR_MS = 10.0
#: The fired rule that says "allowed, but the application must be registered".
REGISTRATION_RULE = "ai_act_art26_registration_needed"


@dataclass(frozen=True)
class Outcome:
    """What the appliance decided for one prompt (no prompt text: that stays in the item)."""

    risk_class: str
    areas: tuple[str, ...]
    denied: bool
    rules: tuple[str, ...]
    classify_ms: float

    @property
    def registration_needed(self) -> bool:
        return REGISTRATION_RULE in self.rules


def load_part(name: str) -> list[dict[str, str]]:
    items: list[dict[str, str]] = yaml.safe_load(PARTS[name].read_text("utf-8"))["items"]
    return items


def _context(text: str, lang: str, n: int) -> Context:
    ctx = Context(
        request_id=f"ordinary-{n}",
        route="chat.completions",
        body={"model": "gpt-4o", "messages": [{"role": "user", "content": text}]},
        api_key=None,
    )
    ctx.principal = Principal(key_id="k", tenant="acme", user="u", department="engineering",
                              roles=("developer",))
    ctx.requested_model = ctx.model = "gpt-4o"
    ctx.provider, ctx.provider_region = "openai", "eu"
    ctx.verdicts.append(Verdict("pii_detect", findings=PiiFindings(True, languages=(lang,))))
    return ctx


async def decide_all(items: list[dict[str, str]], data_dir: Path) -> list[Outcome]:
    """Every item through the classify and decide stages, one at a time."""
    config = load_config(None, data_dir=data_dir,
                         overrides={"policy": {"dir": str(ROOT / "policies")}})
    control = ControlPlane.open(control_plane_path(data_dir))
    classify = ClassifyStage(config, build_classifier(config), AppDirectory(control, 60.0))
    decide = DecideStage(config)
    await classify.start()
    await decide.start()
    outcomes: list[Outcome] = []
    try:
        for n, it in enumerate(items):
            ctx = _context(it["text"], it["lang"], n)
            t0 = time.perf_counter()
            verdict = await classify.run(ctx)
            classify_ms = (time.perf_counter() - t0) * 1000
            ctx.verdicts.append(verdict)
            rules: tuple[str, ...] = ()
            denied = verdict.outcome == "deny"
            if not denied:
                decision = await decide.run(ctx)
                denied = decision.outcome == "deny"
                assert isinstance(decision.findings, PolicyFindings)
                rules = decision.findings.rules
            assert isinstance(verdict.findings, RiskFindings)
            outcomes.append(Outcome(
                risk_class=verdict.findings.risk_class,
                areas=verdict.findings.area_ids,
                denied=denied,
                rules=rules,
                classify_ms=classify_ms,
            ))
    finally:
        await decide.aclose()
        await classify.aclose()
        control.close()
    return outcomes


def _share(n: int, total: int) -> str:
    return f"{n:>4} ({100.0 * n / total:5.1f} %)" if total else "   0"


def table(items: list[dict[str, str]], outcomes: list[Outcome], key: str) -> None:
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for it, o in zip(items, outcomes, strict=True):
        groups[it[key]].append(o)
    print(f"\n{key:<18} {'items':>5} {'denied':>13} {'high-risk':>13} {'prohibited':>13}"
          f" {'registration':>13}")
    for name in sorted(groups):
        os_ = groups[name]
        print(
            f"{name:<18} {len(os_):>5} {_share(sum(o.denied for o in os_), len(os_)):>13}"
            f" {_share(sum(o.risk_class == 'high' for o in os_), len(os_)):>13}"
            f" {_share(sum(o.risk_class == 'prohibited' for o in os_), len(os_)):>13}"
            f" {_share(sum(o.registration_needed for o in os_), len(os_)):>13}"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", choices=sorted(PARTS), default="dev",
                    help="dev (default; may be tuned on) or heldout (frozen: run once, at the end)")
    ap.add_argument("--data-dir", type=Path, default=None,
                    help="where the built models are (default: a temporary copy-free data dir "
                    "whose models/ links to ./data/models)")
    ap.add_argument("--show-held-out", action="store_true",
                    help="also print the flagged prompts of the held-out part")
    ap.add_argument("--limit", type=int, default=0, help="only the first N items (a smoke run)")
    args = ap.parse_args()
    items = load_part(args.part)
    if args.limit:
        items = items[: args.limit]
    with tempfile.TemporaryDirectory(prefix="ordinary-") as tmp:
        data_dir = args.data_dir
        if data_dir is None:
            # A private data dir (its own control-plane file) that sees the built models.
            data_dir = Path(tmp)
            models = (ROOT / "data" / "models").resolve()
            models.mkdir(parents=True, exist_ok=True)
            (data_dir / "models").symlink_to(models, target_is_directory=True)
        outcomes = asyncio.run(decide_all(items, data_dir))

    total = len(items)
    denied = sum(o.denied for o in outcomes)
    high = sum(o.risk_class == "high" for o in outcomes)
    prohibited = sum(o.risk_class == "prohibited" for o in outcomes)
    limited = sum(o.risk_class == "limited" for o in outcomes)
    registration = sum(o.registration_needed for o in outcomes)
    label = "HELD OUT (frozen)" if args.part == "heldout" else "development"
    print(f"ordinary prompts, {args.part} part ({label}): {total} items, "
          f"{dict(Counter(it['lang'] for it in items))}")
    print(f"denied              {_share(denied, total)}   bar <= {100 * DENIED_BAR:.1f} %")
    print(f"tagged high-risk    {_share(high, total)}   bar <= {100 * HIGH_BAR:.1f} %")
    print(f"tagged prohibited   {_share(prohibited, total)}")
    print(f"tagged limited      {_share(limited, total)}")
    print(f"registration needed {_share(registration, total)}")
    table(items, outcomes, "lang")
    table(items, outcomes, "cat")
    areas = Counter(a for o in outcomes for a in o.areas)
    print("\nareas tagged: " + (", ".join(f"{a} {n}" for a, n in areas.most_common()) or "none"))

    if args.part == "dev" or args.show_held_out:
        flagged = [(it, o) for it, o in zip(items, outcomes, strict=True)
                   if o.denied or o.risk_class in ("high", "prohibited")]
        print(f"\nflagged prompts ({len(flagged)}):")
        for it, o in flagged:
            verdict = "DENIED" if o.denied else "allowed"
            text = " ".join(it["text"].split())
            print(f"  [{it['lang']} {it['cat']}] {o.risk_class} {','.join(o.areas)} {verdict}"
                  f" {','.join(r for r in o.rules if r.startswith('ai_act'))}: {text[:110]}")

    times = [o.classify_ms for o in outcomes]
    median = statistics.median(times)
    p95 = sorted(times)[int(0.95 * (len(times) - 1))]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nclassify stage latency ({total} requests, load average {load:.1f}): median"
          f" {median:.2f} ms, p95 {p95:.2f} ms; bar: median < {LATENCY_BAR_MS:.0f} ms")
    ok = denied <= DENIED_BAR * total and high <= HIGH_BAR * total and median < LATENCY_BAR_MS
    print(f"bars (denied <= {100 * DENIED_BAR:.1f} %, high-risk <= {100 * HIGH_BAR:.0f} %,"
          f" median < {LATENCY_BAR_MS:.0f} ms): {'hold' if ok else 'DO NOT hold'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
