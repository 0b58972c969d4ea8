"""The analyzer's context enhancer scores every finding as Presidio's own does.

It differs only in how it finds a result's token and what it copies (engine.py); the
scores, including those raised by a context word ("phone", "Telefon", "IBAN", "licence"),
must be Presidio's, and the recognizers' raw results must stay untouched.
"""

from __future__ import annotations

from typing import Any

from presidio_analyzer import AnalyzerEngine
from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer

from appliance.testing.prompt_shapes import body

TEXTS = [
    "Call me on my phone 212-555-0187 or at the office, extension 4410.",
    "My driver's licence number is D1234567 and my SSN is 078-05-1120.",
    "Bitte überweisen Sie an IBAN DE89 3704 0044 0532 0130 00, Telefon 030 1234567.",
    *[body(shape, i)["messages"][-1]["content"] for shape in ("S", "M", "L") for i in range(2)],
]


class _Unenhanced(LemmaContextAwareEnhancer):
    def enhance_using_context(self, text: str, raw_results: Any, *args: Any, **kwargs: Any) -> Any:
        return raw_results


def _scored(analyzer: AnalyzerEngine, text: str) -> list[tuple[str, int, int, float]]:
    artifacts = analyzer.nlp_engine.process_text(text, "en")
    results = analyzer.analyze(text, language="en", nlp_artifacts=artifacts)
    return sorted((r.entity_type, r.start, r.end, round(r.score, 6)) for r in results)


def test_same_scores_as_presidio(analyzer: AnalyzerEngine) -> None:
    ours = [_scored(analyzer, t) for t in TEXTS]
    mine = analyzer.context_aware_enhancer
    try:
        analyzer.context_aware_enhancer = LemmaContextAwareEnhancer()
        theirs = [_scored(analyzer, t) for t in TEXTS]
        analyzer.context_aware_enhancer = _Unenhanced()
        unenhanced = [_scored(analyzer, t) for t in TEXTS]
    finally:
        analyzer.context_aware_enhancer = mine
    assert ours == theirs
    # Context words did change scores: the comparison is not vacuous.
    assert sum(a != b for a, b in zip(ours, unenhanced, strict=True)) >= 3


def test_raw_results_are_left_as_they_were(analyzer: AnalyzerEngine) -> None:
    text = TEXTS[0]
    artifacts = analyzer.nlp_engine.process_text(text, "en")
    raw = [r for rec in analyzer.registry.get_recognizers("en", all_fields=True)
           for r in rec.analyze(text, rec.supported_entities, artifacts)]
    before = [(r.score, r.analysis_explanation.score if r.analysis_explanation else None,
               dict(r.recognition_metadata or {})) for r in raw]
    enhanced = analyzer.context_aware_enhancer.enhance_using_context(
        text, raw, artifacts, analyzer.registry.get_recognizers("en", all_fields=True))
    assert any(e.score != r.score for e, r in zip(enhanced, raw, strict=True))
    assert [(r.score, r.analysis_explanation.score if r.analysis_explanation else None,
             dict(r.recognition_metadata or {})) for r in raw] == before
