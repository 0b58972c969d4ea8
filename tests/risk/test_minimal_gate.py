"""The minimal gate: all-MiniLM is skipped only where nothing could be tagged."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from appliance.risk.classifier import RiskClassifier, Segments, Vectors
from appliance.risk.engine import build_classifier
from appliance.testing.prompt_shapes import short_prompt

from .conftest import ROOT, make_config


class _Counting:
    """An embedder that counts the texts it embeds."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.texts = 0

    def embed(self, texts: list[str]) -> Vectors:
        self.texts += len(texts)
        return self.inner.embed(texts)  # type: ignore[attr-defined, no-any-return]


@pytest.fixture(scope="module")
def gated(shared_data: Path) -> RiskClassifier:
    clf = build_classifier(make_config(shared_data))
    assert clf.gate is not None, "the shipped gate is loaded by default"
    clf.embedder = _Counting(clf.embedder)  # type: ignore[assignment]
    return clf


@pytest.fixture(scope="module")
def full(shared_data: Path) -> RiskClassifier:
    return build_classifier(make_config(shared_data, minimal_gate=False))


def _minilm_texts(clf: RiskClassifier) -> int:
    return clf.embedder.texts  # type: ignore[union-attr]


def _silent(clf: RiskClassifier, text: str) -> bool:
    seg, _ = clf._gloss(Segments(rules_text=text, content=text))
    return max(clf._rule_scores(seg.rules_text)[1]) == 0.0


def test_ordinary_prompts_are_answered_without_minilm_and_keep_their_tags(
    gated: RiskClassifier, full: RiskClassifier
) -> None:
    ordinary = yaml.safe_load(
        (ROOT / "benchmarks" / "data" / "ordinary_prompts" / "dev.yaml").read_text("utf-8")
    )["items"]
    texts = [short_prompt(i) for i in range(5)] + [str(it["text"]) for it in ordinary[:60]]
    skipped = 0
    for text in texts:
        before = _minilm_texts(gated)
        risk, safety, vector = gated.analyse_with_vector(Segments(rules_text=text, content=text,
                                                                  safety_text=text))
        skipped += _minilm_texts(gated) == before
        want_risk, want_safety, want_vector = full.analyse_with_vector(
            Segments(rules_text=text, content=text, safety_text=text))
        assert risk == want_risk, text
        # The safety screen and the prompt-attack vector read the multilingual encoder.
        assert safety == want_safety and vector is not None and want_vector is not None
        assert np.array_equal(vector, want_vector)
    assert skipped >= len(texts) // 2, f"all-MiniLM ran on {len(texts) - skipped} of {len(texts)}"


def test_the_gate_takes_away_no_tag_of_a_risky_request(
    gated: RiskClassifier, full: RiskClassifier
) -> None:
    """Every item of the evaluation set no rule touches: tagged as without the gate, or
    (a false flag) a minimal item left untagged."""
    raw = yaml.safe_load((ROOT / "tests" / "risk" / "eval_set.yaml").read_text("utf-8"))
    items = [it for split in raw.values() if isinstance(split, list) for it in split]
    silent = [it for it in items if _silent(full, str(it["text"]))]
    assert len(silent) > 100
    skipped = 0
    for it in silent:
        before = _minilm_texts(gated)
        got, want = gated.classify(str(it["text"])), full.classify(str(it["text"]))
        skipped += _minilm_texts(gated) == before
        if got != want:
            assert it["class"] == "minimal" and got.risk_class == "minimal", it
    assert skipped > 0


def test_a_rule_touching_the_text_always_reads_minilm(gated: RiskClassifier) -> None:
    assert gated.gate is not None
    shipped = gated.gate
    try:
        gated.gate = replace(shipped, threshold=1.0)  # would clear anything
        before = _minilm_texts(gated)
        tagged = gated.classify("Detect the emotions of our employees from the office webcams.")
        assert _minilm_texts(gated) > before and tagged.risk_class == "prohibited"
        before = _minilm_texts(gated)
        gated.classify("Draft a thank-you e-mail to the team in Leeds.")
        assert _minilm_texts(gated) == before
        gated.gate = replace(shipped, threshold=0.0)  # clears nothing
        gated.classify("Draft a thank-you e-mail to the team in Leeds.")
        assert _minilm_texts(gated) > before
    finally:
        gated.gate = shipped
