"""Precision and recall of the prompt-attack screen, per evaluation set.

    .venv/bin/python benchmarks/prompt_attack_accuracy.py [--heldout] [--show-errors]

Each item becomes the request a client would send: a chat body whose user turn is the
text (``request``), or a user question followed by a tool call and the text as the
tool's result (``tool_result``), or the question with the document pasted after it
(``retrieved``). The screen reads the body as it does at run time (``attack_sources``:
the split into question and pasted material included) and the score is compared with
the thresholds of the shipped policy data (``policies/data/prompt_attacks.yaml``):
"detected" means at or above the flag threshold (what the policy flags or blocks);
"blocked" means at or above the block threshold of the place where the strongest text
was found.

Sets (``benchmarks/data/prompt_attacks/README.md``):

* ``public``: bastioncorpus 0.6.0 (MIT), 181 labelled texts, EN/DE/FR/IT/ES; its
  ``user_input`` channel is the request, ``tool_output`` a tool result, ``memory``
  retrieved material. Read during development.
* ``dev``: 40 EN + DE texts written after the held-out part was frozen, to tune on.
* ``ordinary-dev``: the 600 ordinary enterprise prompts of ``ordinary_prompts/dev.yaml``
  (EN + DE), all negatives. Read during development.
* ``heldout`` (``--heldout``, run once at the end): the frozen EN + DE held-out set, and
  ``ordinary_prompts/heldout.yaml`` as further negatives. Prints no texts unless
  ``--show-errors`` is given.

With ``--data-dir`` (a data directory holding the built models) the classifier is built
and each request's latest user turn is embedded as the classify stage does, so the
learned head (``appliance/risk/attack_head.py``) joins the rules; without it, the rules
alone are measured.

LLM Guard's published figures for its PromptInjection scanner are printed beside ours
(quoted from the model card of the model it uses by default; see docs/prompt-attacks.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from appliance.risk.attack_head import load_attack_head  # noqa: E402
from appliance.risk.attacks import (  # noqa: E402
    PromptAttackScreen,
    attack_sources,
    latest_turn_place,
    load_attack_rules,
)
from appliance.risk.text import request_segments  # noqa: E402

DATA = ROOT / "benchmarks" / "data" / "prompt_attacks"
ORDINARY = ROOT / "benchmarks" / "data" / "ordinary_prompts"
POLICY_DATA = ROOT / "policies" / "data" / "prompt_attacks.yaml"
CHANNELS = {"user_input": "request", "tool_output": "tool_result", "memory": "retrieved"}
QUESTION = {"en": "Please use the following to answer my question.",
            "de": "Bitte nutze Folgendes, um meine Frage zu beantworten."}
#: protectai/deberta-v3-base-prompt-injection-v2 (LLM Guard's default PromptInjection
#: model), model card, "post-training evaluation" on 20,000 prompts of datasets it was
#: not trained on; English only.
LLM_GUARD = {"precision": 0.9159, "recall": 0.9974, "f1": 0.9549, "accuracy": 0.9525}


@dataclass(frozen=True)
class Item:
    set: str
    lang: str
    attack: bool
    where: str
    text: str
    question: str = ""


def body_of(item: Item) -> dict[str, Any]:
    """The chat request that carries ``item`` where it says it arrives."""
    question = item.question or QUESTION.get(item.lang, QUESTION["en"])
    if item.where == "tool_result":
        call = {"id": "call_1", "type": "function",
                "function": {"name": "lookup", "arguments": "{}"}}
        return {"model": "m", "messages": [
            {"role": "user", "content": question},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": item.text},
        ]}
    if item.where == "retrieved":
        return {"model": "m", "messages": [
            {"role": "user", "content": f"{question}\n\n{item.text}"}]}
    return {"model": "m", "messages": [{"role": "user", "content": item.text}]}


def public_items() -> list[Item]:
    rows = [json.loads(line) for line in
            (DATA / "public_bastioncorpus.jsonl").read_text("utf-8").splitlines() if line.strip()]
    return [Item("public", r["lang"], r["label"] == "malicious", CHANNELS[r["channel"]], r["text"])
            for r in rows]


def ordinary_items(part: str) -> list[Item]:
    raw = yaml.safe_load((ORDINARY / f"{part}.yaml").read_text("utf-8"))["items"]
    return [Item(f"ordinary-{part}", i["lang"], False, "request", i["text"]) for i in raw]


def own_items(part: str) -> list[Item]:
    raw = yaml.safe_load((DATA / f"{part}.yaml").read_text("utf-8"))["items"]
    return [Item(part, i["lang"], i["label"] == "attack", i["where"], i["text"],
                 i.get("question", "")) for i in raw]


@dataclass
class Tally:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    blocked_attacks: int = 0
    blocked_benign: int = 0

    def add(self, attack: bool, detected: bool, blocked: bool) -> None:
        if attack:
            self.tp += detected
            self.fn += not detected
            self.blocked_attacks += blocked
        else:
            self.fp += detected
            self.tn += not detected
            self.blocked_benign += blocked

    def line(self, name: str) -> str:
        p = self.tp / (self.tp + self.fp) if self.tp + self.fp else float("nan")
        r = self.tp / (self.tp + self.fn) if self.tp + self.fn else float("nan")
        f1 = 2 * p * r / (p + r) if p + r else float("nan")
        n_att, n_ben = self.tp + self.fn, self.fp + self.tn
        return (f"{name:<28} attacks {n_att:>4}  benign {n_ben:>4}  precision {p:6.3f}  "
                f"recall {r:6.3f}  F1 {f1:6.3f}  flagged benign {self.fp}  blocked: attacks {self.blocked_attacks}/{n_att}, "
                f"benign {self.blocked_benign}/{n_ben}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--heldout", action="store_true", help="run the frozen held-out part (once)")
    ap.add_argument("--show-errors", action="store_true", help="print the misjudged texts")
    ap.add_argument("--data-dir", type=Path, default=None,
                    help="data directory with the built models (for the learned head); "
                    "without it the rules alone are measured")
    args = ap.parse_args()

    policy = yaml.safe_load(POLICY_DATA.read_text("utf-8"))["prompt_attacks"]
    flag, block = float(policy["flag"]), {k: float(v) for k, v in policy["block"].items()}
    rules = load_attack_rules()
    screen = PromptAttackScreen(rules)
    classifier = None
    if args.data_dir is not None:
        from appliance.config import load_config
        from appliance.risk.engine import build_classifier

        classifier = build_classifier(load_config(None, data_dir=args.data_dir))
        screen = PromptAttackScreen(rules, head=load_attack_head())
    print("screen:", "rules + learned head (classify stage's vector of the latest user turn)"
          if classifier is not None and screen.head is not None else "rules only")
    if args.heldout:
        items = own_items("heldout") + ordinary_items("heldout")
    else:
        items = public_items() + own_items("dev") + ordinary_items("dev")

    tallies: dict[str, Tally] = defaultdict(Tally)
    rules_only: dict[str, Tally] = defaultdict(Tally)
    errors: list[str] = []
    where_right = where_total = 0
    times: list[float] = []
    bare = PromptAttackScreen(rules)
    for item in items:
        body = body_of(item)
        vector = None
        if classifier is not None:  # what the classify stage computes anyway
            _, _, vector = classifier.analyse_with_vector(request_segments(body))
        t0 = time.perf_counter()
        sources = attack_sources(body)
        result = screen.scan(sources, vector, latest_turn_place(body))
        times.append(time.perf_counter() - t0)
        top = result.top
        detected = top.score >= flag
        blocked = top.where is not None and top.score >= block[top.where]
        keys = (item.set, f"{item.set} / {item.lang}", f"{item.set} / {item.where}")
        for key in keys:
            tallies[key].add(item.attack, detected, blocked)
        if classifier is not None:
            plain = bare.scan(sources).top
            plain_blocked = plain.where is not None and plain.score >= block[plain.where]
            rules_only[item.set].add(item.attack, plain.score >= flag, plain_blocked)
        if item.set != "heldout" or item.attack:
            tallies["all"].add(item.attack, detected, blocked)
        if item.attack and detected:
            where_total += 1
            where_right += top.where == item.where
        if detected != item.attack:
            kind = "missed" if item.attack else "false alarm"
            errors.append(f"  {kind:<11} {item.set}/{item.lang}/{item.where} score {top.score:.2f} "
                          f"{top.technique} {list(top.rules)}: {item.text[:160]!r}")
    print(f"thresholds: flag {flag}, block {block}")
    for name in sorted(tallies, key=lambda k: (k != "all", k)):
        if name == "all" and args.heldout:
            continue
        print(tallies[name].line(name))
    for name in sorted(rules_only):
        print(rules_only[name].line(f"{name} (rules only)"))
    print(f"place of the strongest text right for {where_right}/{where_total} detected attacks")
    times.sort()
    print(f"screen time per request: median {times[len(times) // 2] * 1e3:.3f} ms, "
          f"p99 {times[int(len(times) * 0.99)] * 1e3:.3f} ms (scan only, {len(times)} requests)")
    print("LLM Guard PromptInjection (deberta-v3-base-prompt-injection-v2, model card, 20k "
          f"unseen prompts, English): precision {LLM_GUARD['precision']:.3f}  recall "
          f"{LLM_GUARD['recall']:.3f}  F1 {LLM_GUARD['f1']:.3f}")
    if errors and (args.show_errors or not args.heldout):
        print(f"\n{len(errors)} misjudged:")
        print("\n".join(errors))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
