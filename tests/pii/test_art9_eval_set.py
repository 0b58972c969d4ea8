"""The Art. 9 evaluation set: its shape, and the held-out part frozen by its hash.

The evaluation set proper (dev.yaml + heldout.yaml) was written and split before the
special-category detector existed; changing a single byte of the held-out part would
make its figures meaningless, so its SHA-256 is pinned here. dev_extra.yaml holds texts
written after the first detector run: development data, not part of the split.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent / "art9"
HELDOUT_SHA256 = "e277edcd608bc8b4ca632bda3e88d655e2f37732394af1de48e69f88c529e646"
CATEGORIES = {
    "HEALTH", "ETHNIC_ORIGIN", "POLITICAL_OPINION", "RELIGION",
    "TRADE_UNION", "GENETIC", "BIOMETRIC", "SEX_LIFE",
}


def _items(name: str) -> list[dict[str, Any]]:
    return list(yaml.safe_load((HERE / f"{name}.yaml").read_text("utf-8"))["items"])


def test_heldout_part_is_frozen() -> None:
    digest = hashlib.sha256((HERE / "heldout.yaml").read_bytes()).hexdigest()
    assert digest == HELDOUT_SHA256


def test_items_are_well_formed() -> None:
    ids: Counter[str] = Counter()
    for part in ("dev", "dev_extra", "heldout"):
        for item in _items(part):
            ids[item["id"]] += 1
            assert item["lang"] in ("en", "de")
            assert set(item["cats"]) <= CATEGORIES, item["id"]
            assert item["text"].strip()
            if item["cats"]:
                assert "neg" not in item, item["id"]
            else:
                assert item["neg"] in CATEGORIES | {"none"}, item["id"]
            if "person" in item:
                assert item["person"] in item["text"], item["id"]
    assert not [i for i, n in ids.items() if n > 1]


def test_size_split_and_coverage() -> None:
    dev, held = _items("dev"), _items("heldout")
    total = len(dev) + len(held)
    assert total >= 400
    assert len(held) >= 0.4 * total
    for part in (dev, held):
        langs = Counter(i["lang"] for i in part)
        assert min(langs.values()) >= 0.4 * len(part)  # about half each
        for lang in ("en", "de"):
            found = {c for i in part if i["lang"] == lang for c in i["cats"]}
            assert found == CATEGORIES, (lang, CATEGORIES - found)
            hard = {i["neg"] for i in part if i["lang"] == lang and not i["cats"]}
            assert hard >= CATEGORIES, (lang, CATEGORIES - hard)


def test_the_named_hard_negatives_are_in_it() -> None:
    texts = [i["text"] for part in ("dev", "heldout") for i in _items(part) if not i["cats"]]
    for needle in (
        "booked meeting room", "European Union", "church building renovation",
        "union of two countable sets", "Gewerkschaftsstraße", "/health check endpoint",
        "political risk in emerging markets", "biometric login",
        "Besprechungsraum B", "Europäischen Union", "Kirchenrenovierung",
        "Healthcheck-Endpunkt", "politischen Risiken in Schwellenländern",
        "biometrischen Login",
    ):
        assert any(needle in t for t in texts), needle
