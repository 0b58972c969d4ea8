"""spaCy's entity recognizer, decoded in NumPy: the same trained model and transitions.

spaCy's wheels for Python before 3.12 are compiled with Cython's profiling hooks, and
inside the parser's ``nogil`` decoding loop each hook takes and releases the GIL: every
read of the parser state does, and choosing one token's action reads it about two
hundred times (each of the 74 actions checks whether it is valid). Under ``perf`` that
locking was most of the recognizer's time: 23 of 32 ms on a 2 KB e-mail thread (486
tokens), so spaCy's NER cost 65 µs a token where its network costs 20.

:class:`GreedyNer` keeps what is expensive and correct in spaCy (its tokenizer, the
trained ``tok2vec`` and the precomputed lower layer, through spaCy's own model objects)
and replaces the decoding loop for documents no earlier component annotated. Then the
BILUO transition system's state is the current token and the open entity, if any.
While none is open the three state features are the token and two paddings, so the
scores of every token's closed state come from one matrix product, and the action each
takes (Out, Unit or Begin of a label, whichever valid one scores highest, the first on a
tie, as spaCy's ``arg_max_if_valid``) is chosen for all tokens at once. Only a token
inside an entity needs a step of its own, with two candidates: In or Last of the open
label. The sums run in spaCy's order (feature 0, 1, 2, then the bias); the final matrix
product is NumPy's, whose rounding may differ from BLIS's in the last bit, so a decision
could flip only on an exact tie between two actions (none in the project's corpora: see
tests/pii/test_greedy_ner.py).

A document with preset entities, or a model of another shape (features, maxout pieces,
no upper layer, beam search), goes to spaCy's own recognizer unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

import numpy as np
from spacy.attrs import ENT_IOB, IS_SPACE, SENT_START
from spacy.language import Language
from spacy.tokens import Doc, Span

_FACTORY = "appliance_greedy_ner"
_BATCH = 64


class GreedyNer:
    """A pipeline component that annotates ``doc.ents`` as the wrapped ``ner`` pipe would."""

    def __init__(self, ner: Any) -> None:
        self._ner = ner
        model = ner.model
        self._tok2vec = model.get_ref("tok2vec")
        self._lower = model.get_ref("lower")
        upper = model.get_ref("upper")
        self._bias = np.asarray(self._lower.get_param("b"), dtype=np.float32)  # (hidden, pieces)
        names = _action_names(ner)
        weights = np.asarray(upper.get_param("W"), dtype=np.float32)
        self._weights = np.ascontiguousarray(weights.T)
        self._upper_bias = np.asarray(upper.get_param("b"), dtype=np.float32)
        self._pieces = int(self._lower.get_dim("nP"))
        self._out = names.index("O")
        begin: dict[str, int] = {}
        unit: dict[str, int] = {}
        inside: dict[str, int] = {}
        last: dict[str, int] = {}
        self._labels: dict[int, str] = {}
        never: list[int] = []
        for index, name in enumerate(names):
            move, _, label = name.partition("-")
            if name == "O":
                continue
            if not label:  # label 0: valid only on a preset blocked token, never here
                never.append(index)
                continue
            {"B": begin, "U": unit, "I": inside, "L": last}[move][label] = index
            self._labels[index] = label
        self._begin_cols = np.array(sorted(begin.values()), dtype=np.intp)
        self._unit_cols = np.array(sorted(unit.values()), dtype=np.intp)
        self._invalid_closed = np.array(sorted([*inside.values(), *last.values(), *never]),
                                   dtype=np.intp)
        self._begins = frozenset(begin.values())
        # For an entity opened by Begin-<label>: the columns of In-<label> and Last-<label>.
        self._continue = {begin[label]: (inside[label], last[label]) for label in begin}

    @staticmethod
    def supports(ner: Any) -> bool:
        """Whether ``ner`` is a greedy BILUO recognizer of the shape decoded here."""
        try:
            model = ner.model
            lower = model.get_ref("lower")
            names = _action_names(ner)
            labels = {name[2:] for name in names if name != "O" and name[2:]}
            return (
                model.attrs.get("has_upper") is True
                and int(ner.cfg.get("beam_width", 1)) == 1
                # spaCy scores an unseen class by the lowest score of the whole batch
                and not model.attrs.get("unseen_classes")
                and int(lower.get_dim("nF")) == 3
                and int(lower.get_dim("nP")) >= 2
                and int(model.get_ref("upper").get_dim("nO")) == len(names)
                and names.count("O") == 1
                and all(name == "O" or name[:2] in ("B-", "I-", "L-", "U-") for name in names)
                and all(f"{m}-{label}" in names for label in labels for m in "BILU")
            )
        except (KeyError, ValueError, AttributeError):
            return False

    def __call__(self, doc: Doc) -> Doc:
        return next(self.pipe([doc]))

    def pipe(self, stream: Iterable[Doc], batch_size: int = _BATCH) -> Iterator[Doc]:
        docs = iter(stream)
        while batch := list(islice(docs, max(1, batch_size))):
            yield from self._annotate(batch)

    def _annotate(self, docs: list[Doc]) -> list[Doc]:
        fresh: list[Doc] = []
        preset: list[Doc] = []
        for doc in docs:
            if len(doc):
                (preset if doc.to_array(ENT_IOB).any() else fresh).append(doc)
        if preset:  # annotated before: spaCy's own decoder honours what is there
            self._ner.set_annotations(preset, self._ner.predict(preset))
        if fresh:
            cached = np.asarray(self._lower.predict(self._tok2vec.predict(fresh)), dtype=np.float32)
            offset = 0
            for doc in fresh:
                spans = self._decode(doc, cached, offset)
                doc.set_ents([Span(doc, s, e, label=label) for s, e, label in spans],
                             default="outside")
                offset += len(doc)
        return docs

    def _scores(self, hidden: np.ndarray) -> np.ndarray:
        """Class scores of maxout inputs ``hidden`` (rows, 64 * pieces), as spaCy's step."""
        rows = hidden.reshape(len(hidden), -1, self._pieces).max(axis=2)
        scores: np.ndarray = rows @ self._weights + self._upper_bias
        return scores

    def _decode(self, doc: Doc, cached: np.ndarray, offset: int) -> list[tuple[int, int, str]]:
        """The entities of ``doc`` whose precomputed rows start at ``offset + 1`` (row 0 of
        ``cached`` is the padding spaCy uses for an absent feature)."""
        n = len(doc)
        flags = doc.to_array([SENT_START, IS_SPACE])
        next_starts = np.zeros(n, dtype=bool)
        next_starts[:-1] = flags[1:, 0] == 1
        space = flags[:, 1] == 1
        rows = cached[offset + 1: offset + 1 + n]
        pad = cached[0]
        closed = self._scores(((rows[:, 0] + pad[1]) + pad[2]) + self._bias)
        # What may happen at a token while no entity is open (Begin, Unit, Out; In, Last and
        # the unlabelled Unit never).
        closed[:, self._invalid_closed] = -np.inf
        no_begin = space.copy()
        no_begin[-1] = True  # the last token cannot begin an entity
        no_begin |= next_starts
        closed[np.ix_(no_begin, self._begin_cols)] = -np.inf
        closed[np.ix_(space, self._unit_cols)] = -np.inf
        choice = closed.argmax(axis=1)
        acting = np.flatnonzero(choice != self._out)
        spans: list[tuple[int, int, str]] = []
        t = 0
        for start in acting.tolist():
            if start < t:  # inside an entity decoded below
                continue
            action = int(choice[start])
            label = self._labels[action]
            if action not in self._begins:  # Unit
                spans.append((start, start + 1, label))
                t = start + 1
                continue
            inside, last = self._continue[action]
            entity_feature = cached[offset + 1 + start, 1]
            t = start + 1
            while True:
                hidden = ((cached[offset + 1 + t, 0] + entity_feature) + cached[offset + t, 2]) \
                    + self._bias
                scores = self._scores(hidden.reshape(1, -1))[0]
                can_go_on = t <= n - 2 and not next_starts[t]
                if can_go_on and (scores[inside] > scores[last]
                                  or (scores[inside] == scores[last] and inside < last)):
                    t += 1
                    continue
                spans.append((start, t + 1, label))
                t += 1
                break
        return spans


def _action_names(ner: Any) -> list[str]:
    """The transition system's actions in the order of the model's classes ("B-PERSON",
    ..., "U-" for the unlabelled Unit that only a preset blocked token allows, "O")."""
    moves = ner.moves
    return [moves.get_class_name(i) for i in range(moves.n_moves)]


@Language.factory(_FACTORY)
def _make_greedy_ner(nlp: Language, name: str) -> GreedyNer:
    return GreedyNer(nlp.get_pipe("ner"))


def use_greedy_ner(nlp: Language) -> bool:
    """Decode ``nlp``'s ``ner`` pipe with :class:`GreedyNer` where it can (True if so)."""
    if "ner" not in nlp.pipe_names or not GreedyNer.supports(nlp.get_pipe("ner")):
        return False
    nlp.add_pipe(_FACTORY, name="ner_greedy", after="ner")
    nlp.disable_pipe("ner")
    return True
