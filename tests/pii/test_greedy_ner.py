"""The NumPy decoding of spaCy's NER finds exactly the entities spaCy's own decoder finds.

Both pipelines load the same installed model; one decodes with spaCy's Cython loop, the
other with :class:`appliance.pii.greedy_ner.GreedyNer`. Every token's entity tag must be
the same, one text at a time and in batches, on the benchmark shapes (English and German
documents with names, addresses, e-mail threads, a 100 KB document) and on edge cases.
"""

from __future__ import annotations

from typing import Any

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Span

from appliance.config.pii import PiiConfig
from appliance.pii.engine import _UNUSED_COMPONENTS, build_analyzer
from appliance.pii.greedy_ner import GreedyNer, use_greedy_ner
from appliance.pii.spacy_ops import use_inference_ops
from appliance.testing.prompt_shapes import body

EDGES = [
    "", " ", "\n\n", "John", "Berlin.", "  Mr  John   Smith  ", "Call Angela Merkel",
    "Angela Merkel\n\nBarack Obama\n\n", "I met John Smith", "Paris London Berlin Madrid Rome",
    "Frau Dr. Anna-Lena Müller-Lüdenscheidt aus Bad Homburg vor der Höhe, Hessen.",
    "On 3 March 2024 Acme Corp. paid $4,000,000 to the United Nations in New York City.",
]


def _load(greedy: bool) -> Language:
    nlp = spacy.load(PiiConfig().spacy_model_en, exclude=_UNUSED_COMPONENTS)
    use_inference_ops(nlp)
    if greedy:
        assert use_greedy_ner(nlp)
    return nlp


@pytest.fixture(scope="module")
def pair() -> tuple[Language, Language]:
    return _load(False), _load(True)


def _texts() -> list[str]:
    texts = list(EDGES)
    for shape in ("S", "M", "L", "R"):
        for i in range(12):
            texts += [m["content"] for m in body(shape, i)["messages"]
                      if isinstance(m.get("content"), str)]
    texts.append(body("XL", 0)["messages"][-1]["content"])
    return texts


def _tags(nlp: Language, texts: list[str], batch_size: int) -> list[list[tuple[str, str]]]:
    with nlp.memory_zone():
        return [[(t.ent_iob_, t.ent_type_) for t in doc]
                for doc in nlp.pipe(texts, batch_size=batch_size)]


@pytest.mark.parametrize("batch_size", [1, 16])
def test_same_entities_as_spacy(pair: tuple[Language, Language], batch_size: int) -> None:
    spacy_nlp, greedy_nlp = pair
    texts = _texts()
    expected = _tags(spacy_nlp, texts, batch_size)
    found = _tags(greedy_nlp, texts, batch_size)
    differing = [texts[i][:80] for i, (a, b) in enumerate(zip(expected, found, strict=True)) if a != b]
    assert not differing
    # Not vacuous: the shapes hold many entities, multi-token ones among them.
    spans = sum(1 for tags in found for iob, _ in tags if iob == "B")
    inner = sum(1 for tags in found for iob, _ in tags if iob == "I")
    assert spans > 500 and inner > 200


def test_a_document_with_preset_entities_is_left_to_spacy(pair: tuple[Language, Language]) -> None:
    """Preset entities constrain the transitions in ways only spaCy's decoder knows."""
    spacy_nlp, greedy_nlp = pair
    text = "Yesterday John Smith flew from Paris to Berlin with Acme Corp."

    def preset(nlp: Language) -> list[tuple[int, int, str]]:
        doc = nlp.make_doc(text)
        doc.set_ents([Span(doc, 2, 4, label="ORG")], default="unmodified")
        component = nlp.get_pipe("ner_greedy" if "ner_greedy" in nlp.pipe_names else "ner")
        doc = component(doc)
        return [(e.start, e.end, e.label_) for e in doc.ents]

    expected = preset(spacy_nlp)
    assert (2, 4, "ORG") in expected
    assert preset(greedy_nlp) == expected


def test_the_pii_analyzer_decodes_with_it() -> None:
    nlp: Any = build_analyzer(PiiConfig()).nlp_engine.nlp["en"]  # type: ignore[attr-defined]
    assert nlp.pipe_names == ["ner_greedy"]
    assert isinstance(nlp.get_pipe("ner_greedy"), GreedyNer)


class _Altered:
    """``target`` with some attributes replaced."""

    def __init__(self, target: Any, **replaced: Any) -> None:
        self._target = target
        self.__dict__.update(replaced)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


def test_a_recognizer_of_another_kind_is_left_to_spacy(pair: tuple[Language, Language]) -> None:
    ner = pair[0].get_pipe("ner")
    assert GreedyNer.supports(ner)
    assert not GreedyNer.supports(_Altered(ner, cfg={**ner.cfg, "beam_width": 4}))
    unseen = _Altered(ner.model, attrs={**ner.model.attrs, "unseen_classes": {3}})
    assert not GreedyNer.supports(_Altered(ner, model=unseen))
    assert not use_greedy_ner(spacy.blank("en"))
