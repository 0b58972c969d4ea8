"""The German tagger as a Presidio recognizer: ONNX Runtime in-process, one thread.

Each analyzer worker process owns one session; a text is cut into sequences of at most
:data:`~appliance.pii.de.features.MAX_TOKENS` tokens at line or sentence ends and each
sequence is one forward pass (about a millisecond for a sentence).
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from presidio_analyzer import AnalysisExplanation, EntityRecognizer, RecognizerResult

from appliance.pii.de.features import ENTITY_OF_TAG, TAGS, Token, chunks, encode, tokenize
from appliance.pii.de.lexicon import Lexicon, load_lexicon

_HOUSE_NUMBER = re.compile(r"\s\d{1,4}\s?[a-zA-Z]?$")
MODEL_FILE = "model.onnx"
META_FILE = "meta.json"


@dataclass(frozen=True, slots=True)
class Span:
    entity: str  # PERSON or LOCATION
    start: int
    end: int
    score: float


class GermanTagger:
    """Loads a built model directory and tags text; no Presidio types involved."""

    def __init__(self, model_dir: Path, lexicon: Lexicon | None = None) -> None:
        meta = json.loads((model_dir / META_FILE).read_text("utf-8"))
        if tuple(meta["tags"]) != TAGS:
            raise ValueError(f"{model_dir}: tag set {meta['tags']} does not match the code")
        self._vocab = {w: i for i, w in enumerate(meta["vocab"])}
        self._lex = lexicon or load_lexicon()
        self._model_file = model_dir / MODEL_FILE
        self._session_: Any = None

    @property
    def _session(self) -> Any:
        """The ONNX Runtime session, opened on first use.

        Importing ONNX Runtime starts a thread, and a process with threads must not
        fork: the analyzer template (:mod:`appliance.pii.worker`) loads everything else,
        forks its workers, and each worker opens its own session (5 MB of weights).
        """
        if self._session_ is None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            # Analyzer workers are one process per core: one thread each.
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            self._session_ = ort.InferenceSession(
                str(self._model_file), options, providers=["CPUExecutionProvider"]
            )
        return self._session_

    def probabilities(self, text: str) -> tuple[list[Token], np.ndarray]:
        """Tokens of ``text`` and their tag probabilities [tokens, tags]."""
        tokens = tokenize(text)
        parts = [np.zeros((0, len(TAGS)), dtype=np.float32)]
        for a, b in chunks(tokens):
            e = encode(tokens[a:b], self._lex, self._vocab)
            (probs,) = self._session.run(None, {
                "words": e.words[None], "chars": e.chars[None],
                "shapes": e.shapes[None], "flags": e.flags[None],
            })
            parts.append(probs[0])
        return tokens, np.concatenate(parts)

    def tag(self, text: str) -> list[Span]:
        tokens, probs = self.probabilities(text)
        return _decode(tokens, probs)


def _decode(tokens: Sequence[Token], probs: np.ndarray) -> list[Span]:
    """Greedy BIO decoding; a stray I- tag opens an entity like a B- tag."""
    out: list[Span] = []
    best = probs.argmax(axis=1)
    current: tuple[str, int, int, list[float]] | None = None
    for tok, k, p in zip(tokens, best, probs, strict=True):
        tag = TAGS[int(k)]
        if tag == "O":
            if current:
                out.append(_span(current))
            current = None
            continue
        kind = tag[2:]
        ent_p = float(p[TAGS.index("B-" + kind)] + p[TAGS.index("I-" + kind)])
        if current and tag.startswith("I-") and current[0] == kind:
            current = (kind, current[1], tok.end, [*current[3], ent_p])
        else:
            if current:
                out.append(_span(current))
            current = (kind, tok.start, tok.end, [ent_p])
    if current:
        out.append(_span(current))
    return out


def _span(c: tuple[str, int, int, list[float]]) -> Span:
    return Span(ENTITY_OF_TAG[c[0]], c[1], c[2], round(sum(c[3]) / len(c[3]), 3))


@dataclass(frozen=True)
class Evidence:
    tokens: list[Token]
    probs: np.ndarray  # [tokens, tags]
    #: The gazetteer rules' findings, before arbitration.
    rules: list[RecognizerResult]


@dataclass(frozen=True)
class Arbitration:
    """How the tagger's findings and the rule-based gazetteer's findings are combined.

    Chosen by benchmarks/de_ner_folds.py on two folds inside the DEV half of
    ler_dev.conll (a tagger trained on one quarter plus generated text, scored on the
    other; never on the TEST half), per class for the best F2, ties to fewer leaked
    words. Trained on real court text, the tagger's spans are worth adding at lower
    confidence than before (places from 0.7, persons from 0.8); a gazetteer *person* is
    dropped where the tagger is sure the words are ordinary (literature citations,
    "Abschnitt II. D"); gazetteer places are kept, because F2 weighs a missed place four
    times a wrong one.
    """

    add_person: float = 0.8
    add_location: float = 0.7
    veto_person: float = 0.9
    veto_location: float = 1.01  # above 1: never


class GermanNerRecognizer(EntityRecognizer):
    """Persons and places in German text: the trained tagger plus the gazetteer rules.

    ``rules`` is the rule-based :class:`~appliance.pii.gazetteer.GazetteerRecognizer` for
    German; its findings pass through :class:`Arbitration` with the tagger's token
    probabilities, so one recognizer answers for German names and places.
    """

    NAME = "GermanNerRecognizer"

    def __init__(self, model_dir: Path, rules: EntityRecognizer | None = None,
                 arbitration: Arbitration = Arbitration()) -> None:
        self._model_dir = model_dir
        self._rules = rules
        #: Public so that benchmarks/de_ner_folds.py can sweep it over one loaded model.
        self.arbitration = arbitration
        self._tagger: GermanTagger | None = None
        super().__init__(supported_entities=["PERSON", "LOCATION"], name=self.NAME,
                         supported_language="de")

    def load(self) -> None:
        self._tagger = GermanTagger(self._model_dir)

    def evidence(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> Evidence:
        """What the arbitration weighs: the tagger's probabilities and the rules' findings."""
        if self._tagger is None:
            self.load()
        assert self._tagger is not None
        tokens, probs = self._tagger.probabilities(text)
        rules = self._rules.analyze(text, entities, nlp_artifacts) if self._rules else []
        return Evidence(tokens, probs, rules)

    def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[RecognizerResult]:
        wanted = set(entities or self.supported_entities)
        ev = self.evidence(text, list(wanted), nlp_artifacts)
        arb = self.arbitration
        add = {"PERSON": arb.add_person, "LOCATION": arb.add_location}
        out = [self._result(s, text) for s in _decode(ev.tokens, ev.probs)
               if s.entity in wanted and s.score >= add[s.entity]]
        veto = {"PERSON": arb.veto_person, "LOCATION": arb.veto_location}
        ends = [t.end for t in ev.tokens]
        for r in ev.rules:
            if _ordinary_probability(ev.tokens, ends, ev.probs, r.start, r.end) \
                    < veto.get(r.entity_type, 2.0):
                # Presidio keeps only results stamped with a registered recognizer's id;
                # the name stays the rules' own, so findings say which part found them.
                r.recognition_metadata[RecognizerResult.RECOGNIZER_IDENTIFIER_KEY] = self.id
                out.append(r)
        return out

    def _result(self, s: Span, text: str) -> RecognizerResult:
        # A place that ends in a house number ("Hauptstraße 12") is an address.
        entity = "ADDRESS" if s.entity == "LOCATION" and _HOUSE_NUMBER.search(
            text[s.start:s.end]) else s.entity
        return RecognizerResult(
            entity_type=entity, start=s.start, end=s.end, score=s.score,
            analysis_explanation=AnalysisExplanation(
                recognizer=self.NAME, original_score=s.score,
                textual_explanation="German tagger (char-CNN + token CNN, ONNX)",
            ),
            recognition_metadata={
                RecognizerResult.RECOGNIZER_NAME_KEY: self.NAME,
                RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
            },
        )


def _ordinary_probability(tokens: Sequence[Token], ends: Sequence[int], probs: np.ndarray,
                          start: int, end: int) -> float:
    """Mean probability of "O" over the word tokens in [start, end); ``ends`` holds the
    tokens' ends (sorted), so that the tokens are found by bisection, not a scan each."""
    idx = []
    for k in range(bisect_right(ends, start), len(tokens)):
        t = tokens[k]
        if t.start >= end:
            break
        if t.text not in {".", "…"}:
            idx.append(k)
    return float(probs[idx, 0].mean()) if idx else 0.0


def build_german_recognizer(model_dir: Path | None = None) -> GermanNerRecognizer:
    """The German person/place recognizer, building the tagger first if it is missing."""
    from appliance.pii.de.build import ensure_model
    from appliance.pii.gazetteer import GazetteerRecognizer

    return GermanNerRecognizer(ensure_model(model_dir), rules=GazetteerRecognizer("de"))
