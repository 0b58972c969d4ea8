"""The evaluation data of the "no false blocks on ordinary work" check stays as written.

The held-out parts were committed before the classifier was tuned and are run once at the
end: their SHA-256 is pinned here, so an edit (even a "fix" of one item) fails the suite
instead of silently moving the held-out figure. Their shape is checked too: enough items,
both languages, every category.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
ORDINARY = ROOT / "benchmarks" / "data" / "ordinary_prompts"
UNSEEN5 = ROOT / "tests" / "risk" / "eval_unseen5.yaml"
UNSEEN6 = ROOT / "tests" / "risk" / "eval_unseen6.yaml"
UNSEEN7 = ROOT / "tests" / "risk" / "eval_unseen7.yaml"

FROZEN = {
    ORDINARY / "heldout.yaml": "60234cbd40a83f0e8736d0fa8236c5cf625620195dc534c732eec7ca8348a20e",
    UNSEEN5: "20f600e3180d4d99986dd5d014d9d10e6c3facfa0ae6831c968c0945f26c93f3",
    UNSEEN6: "8e3d18a34bbd0408f12e9fcde3ce710630001d529bfe2de7aeb5b4cd5c11b7c1",
    UNSEEN7: "dcc0eedaf674d1349b155ffae36320a0daaaf3767401213101a4880ce804a30d",
}

CATEGORIES = {
    "mail", "notes", "summary", "translation", "code", "faq", "marketing", "hr_admin",
    "finance", "infrastructure", "education", "legal_insurance", "customer_service",
    "facilities_safety",
}


def _items(path: Path, key: str = "items") -> list[dict[str, str]]:
    items: list[dict[str, str]] = yaml.safe_load(path.read_text("utf-8"))[key]
    return items


def test_the_held_out_files_are_frozen() -> None:
    for path, digest in FROZEN.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, (
            f"{path.relative_to(ROOT)} is frozen (held out): write a new split instead"
        )


def test_the_ordinary_prompts_cover_both_languages_and_every_category() -> None:
    dev, held_out = _items(ORDINARY / "dev.yaml"), _items(ORDINARY / "heldout.yaml")
    assert len(dev) + len(held_out) >= 1000 and len(held_out) >= 300
    for part in (dev, held_out):
        langs = Counter(it["lang"] for it in part)
        assert set(langs) == {"en", "de"} and abs(langs["en"] - langs["de"]) <= len(part) // 20
        assert {it["cat"] for it in part} == CATEGORIES
        assert all(it["text"].strip() for it in part)
    assert not {it["text"] for it in dev} & {it["text"] for it in held_out}


def test_unseen5_holds_risky_cases_in_both_languages() -> None:
    items = _items(UNSEEN5, "unseen5")
    assert len(items) >= 150
    classes = Counter(it["class"] for it in items)
    assert set(classes) == {"prohibited", "high", "limited"}
    assert Counter(it["lang"] for it in items) == {"en": len(items) // 2, "de": len(items) // 2}


def test_unseen6_holds_prohibited_and_high_risk_cases_in_both_languages() -> None:
    items = _items(UNSEEN6, "unseen6")
    assert len(items) >= 120
    assert {it["class"] for it in items} == {"prohibited", "high"}
    assert Counter(it["lang"] for it in items) == {"en": len(items) // 2, "de": len(items) // 2}
