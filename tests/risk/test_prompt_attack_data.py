"""The prompt-attack evaluation sets stay as written.

The held-out part was committed before the prompt-attack screen was written and is run
once at the end; the public set is a file of a published package. Both SHA-256 are
pinned, so an edit (even a "fix" of one item) fails the suite instead of silently
moving a reported figure. Their shape is checked too: both languages, both labels,
every place an attack can arrive.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "benchmarks" / "data" / "prompt_attacks"

FROZEN = {
    DATA / "heldout.yaml": "b633af6205f20712e94011843b5465a2a9f9044a5ecbaa561f5c3f37b163ed1e",
    DATA / "public_bastioncorpus.jsonl": (
        "b1aaa009aad34df7fb2c4f499cdb936875b97da23a7452caaeb4b94aff2bfd12"
    ),
}


def test_the_evaluation_files_are_frozen() -> None:
    for path, digest in FROZEN.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, (
            f"{path.name} changed: evaluation data is frozen"
        )


def test_the_held_out_part_covers_languages_labels_and_places() -> None:
    items = yaml.safe_load((DATA / "heldout.yaml").read_text("utf-8"))["items"]
    seen = Counter((i["lang"], i["label"], i["where"]) for i in items)
    for lang in ("en", "de"):
        for label in ("attack", "benign"):
            for where in ("request", "tool_result", "retrieved"):
                assert seen[(lang, label, where)] >= 4, (lang, label, where)
    assert all(i.get("question") for i in items if i["where"] == "retrieved")


def test_the_public_set_is_labelled() -> None:
    lines = (DATA / "public_bastioncorpus.jsonl").read_text("utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    assert len(rows) == 181
    assert {r["label"] for r in rows} == {"malicious", "benign"}
    assert {"en", "de"} <= {r["lang"] for r in rows}
