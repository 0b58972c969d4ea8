"""The risk classifier: EN+DE rules plus sentence embeddings on ONNX Runtime.

Each area (an Art. 5 practice, an Annex III area, Art. 6(3) profiling, an Art. 50 case)
and each safety category gets a score in [0, 1]: the largest of its rule score, its
similarity score and its trained-head score. The similarity score is the best cosine
between the text and the area's exemplars, rescaled linearly from ``[floor, ceiling]`` to
``[0, 1]``. Rules carry German (all-MiniLM is English-centric) and make precise
conjunctions ("emotion" *and* "employees") that similarity alone blurs. The trained head
(``AreaModel``, fitted by ``training.py`` on a paraphrase corpus) reads all-MiniLM's vector
of the (glossed) text next to the multilingual encoder's vector of the text as written:
one nearest exemplar generalises poorly to new wording, a fitted boundary over two
views of the sentence much better.

Everything here is synchronous and CPU-bound; callers run it off the event loop.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Generic, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from appliance.risk.glossary import Glossary
from appliance.risk.lexicon import SafetyCategory
from appliance.risk.taxonomy import (
    CLASS_RANK, Area, HeadedText, RuleText, ScanText, Taxonomy, strongest,
)

Vectors = npt.NDArray[np.float32]
V = TypeVar("V")


class Embedder(Protocol):
    def embed(self, texts: list[str]) -> Vectors: ...


@dataclass(frozen=True, slots=True)
class Calibration:
    """How raw similarities and rule hits become scores and tags."""

    #: Cosine at or below which an area's embedding score is 0 ...
    area_floor: float = 0.4
    #: ... and at or above which it is 1.
    area_ceiling: float = 0.6
    #: The same for German text the glossary could not translate: all-MiniLM is
    #: English-centric and rates unrelated German sentences as similar.
    area_floor_de: float = 0.5
    area_ceiling_de: float = 0.8
    #: A German gloss covering less than this share of words is embedded as German text.
    gloss_min_coverage: float = 0.5
    #: Only areas whose similarity is within this of the best area's get embedding credit:
    #: similarity says which area is nearest, not that several distant ones apply.
    embed_margin: float = 0.05
    #: Same rescaling for safety categories (kept stricter: false blocks hurt users).
    safety_floor: float = 0.45
    safety_ceiling: float = 0.85
    #: The same for the multilingual encoder, which screens safety whenever it is loaded:
    #: one ~1 ms embedding per answer instead of all-MiniLM's ~3 ms, and German read as
    #: written. Its floor is where all-MiniLM's sits on the training corpus (the 97.5th
    #: percentile of every sentence's best cosine to a category exemplar: 0.45 there, 0.30
    #: here); it rates paraphrases of one exemplar higher than all-MiniLM does, so the
    #: ceiling stays where it was.
    safety_floor_multilingual: float = 0.30
    safety_ceiling_multilingual: float = 0.85
    #: An area with a score at or above this is tagged on the request.
    tag_threshold: float = 0.5
    #: Probability mass of a class in the trained head that maps to ``tag_threshold``
    #: (piecewise linear, so scores stay in [0, 1]): below 0.5 the head may tag a class
    #: that is likelier than not to be wrong, because a missed prohibited or high-risk use
    #: costs more than a false flag a policy can still allow.
    head_threshold: float = 0.5
    #: The same for German text: the head, trained on fewer German than English sentences,
    #: gives German risky requests less mass (on the development splits unseen2+unseen3,
    #: 0.4 raised German prohibited recall from 23/25 to 25/25 and high from 29/32 to
    #: 30/32 with no new false flag; for English, 0.4 cost 2 high and added 2 false flags).
    head_threshold_de: float = 0.4
    #: Longest text embedded, in characters: a longer one is embedded as its first
    #: ``embed_max_chars - embed_tail_chars`` characters (where a request states its task)
    #: and its last ``embed_tail_chars`` (where an appended instruction or injection
    #: sits). Both encoders cost roughly linear time per token, and a 2000-character text
    #: cost ~68 ms CPU against ~45 ms at 800 on the shared machine; the rules still scan
    #: up to ``rules_max_chars``.
    embed_max_chars: int = 800
    embed_tail_chars: int = 200
    #: The same limit for the context (a system prompt): its embedding is cached.
    context_max_chars: int = 2000
    #: Longest text the rules scan, in characters.
    rules_max_chars: int = 20000


@dataclass(frozen=True, slots=True)
class AreaScore:
    id: str
    article: str
    risk_class: str
    score: float
    rule: float
    embedding: float


@dataclass(frozen=True, slots=True)
class RiskResult:
    """The tags of one text: ``areas`` holds the tagged areas, strongest score first."""

    risk_class: str
    areas: tuple[AreaScore, ...]

    def area_ids(self) -> tuple[str, ...]:
        return tuple(a.id for a in self.areas)

    def facts(self) -> list[dict[str, object]]:
        return [{"id": a.id, "article": a.article, "score": round(a.score, 3)} for a in self.areas]


@dataclass(frozen=True, slots=True)
class SafetyResult:
    scores: Mapping[str, float] = field(default_factory=dict)

    def rounded(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.scores.items()}


@dataclass(frozen=True, slots=True)
class Segments:
    """What to look at in a request: text for the rules, and up to a few texts to embed.

    ``context`` (a system prompt, a tool description) repeats across requests and its
    embedding is cached; ``content`` (the latest user turn) is embedded every time.
    ``safety_text`` excludes the operator's own instructions (a system prompt that says
    "never reveal the system prompt" is not an injection attempt).
    """

    rules_text: str
    context: str = ""
    content: str = ""
    safety_text: str = ""


_GERMAN = re.compile(
    r"\b(und|der|die|das|den|dem|ist|nicht|ein|eine|einen|mit|für|auf|von|zu|sie|ich|wir|"
    r"werden|wird|bitte|über|nach|oder|dass|sich|ihre|unsere|dieser|diese|bei|im|zum|zur|"
    r"des|auch|wie|ob|soll|kann|alle|eines|einer|er|damit|etwas|nie|wird|haben|aber|wenn|"
    r"weil|nur|noch|schon|sehr|hier|vom|beim|unser\w*|ihr|ihre\w*|mein\w*|sein\w*)\b|[äöüß]"
    # noun endings English does not have: terse German ("Erstelle FAQ für Webinar-
    # Teilnehmende: Aufzeichnung, Teilnahmebescheinigung") has few function words
    r"|\w{3,}(ung|ungen|keit|keiten|heit|heiten|schaft|schaften)\b",
    re.IGNORECASE,
)


def looks_german(text: str) -> bool:
    """A cheap language guess (German function words and letters vs. word count)."""
    sample = text[:1000]
    words = max(1, len(sample.split()))
    return len(_GERMAN.findall(sample)) / words >= 0.15


#: Feature names an ``AreaModel`` may be trained on, in the order they are concatenated.
MINILM_FEATURES = "minilm"
MULTILINGUAL_FEATURES = "use-multilingual"


@dataclass(frozen=True, slots=True)
class AreaModel:
    """Multinomial logistic regression over embeddings (trained by ``training.py``)."""

    labels: tuple[str, ...]
    weights: Vectors  # (dimensions, labels)
    bias: Vectors  # (labels,)
    #: The embeddings whose concatenation it reads (``MINILM_FEATURES`` first).
    features: tuple[str, ...] = (MINILM_FEATURES,)

    def probabilities(self, vectors: Vectors) -> Vectors:
        logits = vectors @ self.weights + self.bias
        logits = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        out: Vectors = (p / p.sum(axis=1, keepdims=True)).astype(np.float32)
        return out


@dataclass(frozen=True, slots=True)
class MinimalGate:
    """Whether a text is clearly ordinary work, from its multilingual vector alone.

    A logistic regression over USE-multilingual's vector (``training.py --gate``: texts
    labelled risky against minimal ones and ordinary prompts). The multilingual vector is
    computed for every request anyway (the head, the safety screen and the prompt-attack
    screen read it); all-MiniLM costs twice as much again (8 of 14 ms on a 40-word
    prompt). When no rule fires and every segment's probability is below ``threshold``,
    all-MiniLM is not run and nothing is tagged. The threshold is half the lowest
    probability of any risky training text that the full classifier tags with no rule
    firing: the tags the gate could take away.
    """

    weights: Vectors  # (dimensions,)
    bias: float
    threshold: float

    def probabilities(self, vectors: Vectors) -> Vectors:
        out: Vectors = (1.0 / (1.0 + np.exp(-(vectors @ self.weights + self.bias)))).astype(
            np.float32
        )
        return out

    def clears(self, vectors: Vectors) -> bool:
        return bool((self.probabilities(vectors) < self.threshold).all())


class _Lru(Generic[V]):
    """A bounded cache keyed by the SHA-256 of a text (never the text): embeddings of a
    repeated context, or which rule patterns match in it."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._data: OrderedDict[bytes, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes) -> V | None:
        with self._lock:
            v = self._data.get(key)
            if v is not None:
                self._data.move_to_end(key)
            return v

    def put(self, key: bytes, value: V) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._size:
                self._data.popitem(last=False)


class RiskClassifier:
    """Scores texts against the taxonomy and the safety lexicon; thread-safe."""

    def __init__(
        self,
        taxonomy: Taxonomy,
        categories: Sequence[SafetyCategory],
        embedder: Embedder | None,
        calibration: Calibration = Calibration(),
        *,
        glossary: Glossary | None = None,
        area_model: AreaModel | None = None,
        multilingual: Embedder | None = None,
        gate: MinimalGate | None = None,
        context_cache_size: int = 1024,
    ) -> None:
        self.taxonomy = taxonomy
        self.categories = tuple(categories)
        self.embedder = embedder
        self.calibration = calibration
        self.glossary = glossary
        self.multilingual = multilingual if embedder is not None else None
        self.area_model = area_model if self._can_feed(area_model) else None
        self.gate = gate if self.multilingual is not None else None
        self._cache: _Lru[Vectors] = _Lru(context_cache_size)
        self._multi_cache: _Lru[Vectors] = _Lru(context_cache_size)
        self._context_rules: _Lru[dict[re.Pattern[str], bool]] = _Lru(context_cache_size)
        self._area_class = {a.id: a.risk_class for a in taxonomy.areas}
        self._area_rows: list[tuple[int, int]] = []
        self._cat_rows: list[tuple[int, int]] = []
        self._matrix: Vectors | None = None
        texts: list[str] = []
        for a in taxonomy.areas:
            start = len(texts)
            texts.extend(a.exemplars)
            self._area_rows.append((start, len(texts)))
        for c in self.categories:
            start = len(texts)
            texts.extend(c.exemplars)
            self._cat_rows.append((start, len(texts)))
        start = len(texts)
        texts.extend(taxonomy.minimal_exemplars)
        self._negative_rows = (start, len(texts))
        if embedder is not None and texts:
            self._matrix = embedder.embed(texts)
        # Safety: the multilingual encoder's own exemplar rows when it is loaded.
        self._safety_matrix, self._safety_rows = self._matrix, self._cat_rows
        self._safety_scale = (calibration.safety_floor, calibration.safety_ceiling)
        if self.multilingual is not None and self.categories:
            exemplars = [e for c in self.categories for e in c.exemplars]
            first = self._cat_rows[0][0]
            self._safety_matrix = self.multilingual.embed(exemplars)
            self._safety_rows = [(a - first, b - first) for a, b in self._cat_rows]
            self._safety_scale = (
                calibration.safety_floor_multilingual, calibration.safety_ceiling_multilingual
            )

    def _can_feed(self, model: AreaModel | None) -> bool:
        """Whether the embedders at hand produce the features ``model`` was trained on."""
        if model is None or self.embedder is None:
            return False
        if model.features == (MINILM_FEATURES,):
            return True
        return model.features == (MINILM_FEATURES, MULTILINGUAL_FEATURES) and (
            self.multilingual is not None
        )

    # -- embedding ------------------------------------------------------------------------

    @staticmethod
    def _is_german(seg: Segments) -> bool:
        """Whether the request is written in German (the text ``_gloss`` judges)."""
        return looks_german(seg.content or seg.rules_text or seg.safety_text)

    def _gloss(self, seg: Segments) -> tuple[Segments, bool]:
        """German requests are also read through the glossary (see ``glossary.py``).

        Returns the segments to score and whether their embedding needs the stricter
        German calibration: German text without a glossary, or a gloss that left most
        words untranslated.
        """
        german = looks_german(seg.content or seg.rules_text or seg.safety_text)
        if not german or self.glossary is None:
            return seg, german
        g = self.glossary.gloss
        content, coverage = self.glossary.gloss_with_coverage(seg.content)
        glossed = Segments(
            rules_text=f"{seg.rules_text}\n{g(seg.rules_text)}" if seg.rules_text else "",
            context=g(seg.context) if seg.context else "",
            content=content,
            safety_text=f"{seg.safety_text}\n{g(seg.safety_text)}" if seg.safety_text else "",
        )
        return glossed, coverage < self.calibration.gloss_min_coverage

    def _embed_segments(self, seg: Segments) -> Vectors | None:
        """Rows for the non-empty segments (context cached), or None without a model."""
        if self.embedder is None or self._matrix is None:
            return None
        return self._rows(self.embedder, self._cache, seg)

    def _rows(self, embedder: Embedder, cache: _Lru[Vectors], seg: Segments) -> Vectors | None:
        rows: list[Vectors] = []
        if seg.context:
            text = seg.context[: self.calibration.context_max_chars]
            key = hashlib.sha256(text.encode("utf-8", "replace")).digest()
            cached = cache.get(key)
            if cached is None:
                cached = embedder.embed([text])[0]
                cache.put(key, cached)
            rows.append(cached)
        if seg.content:
            rows.append(embedder.embed([self._clip(seg.content)])[0])
        return np.stack(rows) if rows else None

    def _clip(self, text: str) -> str:
        """``text`` cut to ``embed_max_chars``: its head and its tail."""
        limit, tail = self.calibration.embed_max_chars, self.calibration.embed_tail_chars
        if len(text) <= limit:
            return text
        tail = min(tail, limit)
        return text[: limit - tail] + (" … " + text[-tail:] if tail else "")

    def _embed_all(
        self, original: Segments, seg: Segments, rules_silent: bool = False
    ) -> tuple[Vectors | None, Vectors | None, Vectors | None]:
        """all-MiniLM's rows of the glossed segments, the multilingual encoder's rows of
        the segments as written, and the trained head's features.

        The multilingual rows come first: with ``rules_silent`` (no rule fires) and the
        gate reading them as ordinary work, all-MiniLM is not run and there are no
        features (nothing can be tagged). Sequential on purpose: running the encoders in
        two threads was slower on the shared 2-core machine (thread start-up and
        contention outweigh the 1-2 ms it overlaps).
        """
        if self.embedder is None or self._matrix is None:
            return None, None, None
        multi = None
        if self.multilingual is not None:
            multi = self._rows(self.multilingual, self._multi_cache, original)
        if rules_silent and self.gate is not None and multi is not None and self.gate.clears(multi):
            return None, multi, None
        vectors = self._embed_segments(seg)
        if vectors is None:
            multi = None
        return vectors, multi, self._head_features(vectors, multi)

    def _head_features(self, vectors: Vectors | None, multi: Vectors | None) -> Vectors | None:
        """What the trained head reads, one row per segment: all-MiniLM's rows (of the
        glossed text), then the multilingual encoder's rows of the text as written."""
        model = self.area_model
        if model is None or vectors is None:
            return None
        if MULTILINGUAL_FEATURES not in model.features:
            return vectors
        if multi is None:
            return None
        if len(multi) != len(vectors):  # a context that glossed to nothing: content only
            return np.hstack([vectors[-1:], multi[-1:]])
        return np.hstack([vectors, multi])

    def content_vector(self, text: str) -> Vectors:
        """The all-MiniLM embedding a single text gets at run time (glossed when German)."""
        seg, _ = self._gloss(Segments(rules_text="", content=text))
        vectors = self._embed_segments(seg)
        if vectors is None:
            raise RuntimeError("no embedding model")
        row: Vectors = vectors[-1]
        return row

    def feature_vector(self, text: str) -> Vectors:
        """What the trained head reads for a single text (the training input)."""
        original = Segments(rules_text="", content=text)
        seg, _ = self._gloss(original)
        vectors = self._embed_segments(seg)
        if vectors is None:
            raise RuntimeError("no embedding model")
        if self.multilingual is None:
            last: Vectors = vectors[-1]
            return last
        multi = self._rows(self.multilingual, self._multi_cache, original)
        assert multi is not None
        row: Vectors = np.concatenate([vectors[-1], multi[-1]])
        return row

    def _best_cosines(
        self, vectors: Vectors | None, spans: list[tuple[int, int]], matrix: Vectors | None = None
    ) -> list[float]:
        matrix = self._matrix if matrix is None else matrix
        if vectors is None or matrix is None:
            return [0.0] * len(spans)
        best = (vectors @ matrix.T).max(axis=0)  # best over segments, per exemplar
        return [float(best[s:e].max()) if e > s else 0.0 for s, e in spans]

    @staticmethod
    def _rescale(cos: float, floor: float, ceiling: float) -> float:
        return float(min(1.0, max(0.0, (cos - floor) / (ceiling - floor))))

    # -- scoring --------------------------------------------------------------------------

    def analyse(self, seg: Segments) -> tuple[RiskResult, SafetyResult]:
        """Risk tags and safety scores of one request, from one embedding pass."""
        risk, safety, _ = self.analyse_with_vector(seg)
        return risk, safety

    def analyse_with_vector(
        self, seg: Segments
    ) -> tuple[RiskResult, SafetyResult, Vectors | None]:
        """``analyse``, and the multilingual encoder's vector of the latest user turn as
        written (None without that encoder or turn): the prompt-attack head reads it, so
        it costs no second embedding."""
        original = seg
        seg, german = self._gloss(seg)
        rules = self._rule_scores(seg.rules_text, original.context)
        vectors, multi, features = self._embed_all(original, seg, _silent(rules[1]))
        # The safety screen looks at what the caller supplied, never at the operator's
        # system prompt: its vector (the last row, after any context) is the one used.
        safety_rows = multi if self.multilingual is not None else vectors
        supplied = safety_rows[-1:] if safety_rows is not None and seg.content else None
        content_vector = multi[-1] if multi is not None and seg.content else None
        return (
            self._risk(seg.rules_text, vectors, german, features, original.rules_text,
                       written_german=self._is_german(original), context=original.context,
                       rules=rules),
            self._safety(seg.safety_text, supplied),
            content_vector,
        )

    def classify(self, text: str) -> RiskResult:
        """Tags of a single text (a declared purpose, a CLI input, an eval item)."""
        original = Segments(rules_text=text, content=text)
        seg, german = self._gloss(original)
        rules = self._rule_scores(seg.rules_text)
        vectors, _, features = self._embed_all(original, seg, _silent(rules[1]))
        return self._risk(seg.rules_text, vectors, german, features, text,
                          written_german=self._is_german(original), rules=rules)

    def screen(self, text: str) -> SafetyResult:
        """Safety scores of a single text (an answer, a moderation input): the rules read
        it with its gloss, the multilingual encoder (when loaded) as written."""
        original = Segments(rules_text="", content=text, safety_text=text)
        seg, _ = self._gloss(original)
        if self.multilingual is not None:
            vectors = self._rows(self.multilingual, self._multi_cache, original)
        else:
            vectors = self._embed_segments(seg)
        return self._safety(seg.safety_text, vectors)

    def _risk(
        self,
        text: str,
        vectors: Vectors | None,
        german: bool,
        features: Vectors | None,
        as_written: str | None = None,
        *,
        written_german: bool = False,
        context: str = "",
        rules: tuple[RuleText, list[float]] | None = None,
    ) -> RiskResult:
        """``as_written`` (the text before glossing) decides whether the request talks
        about a practice: a gloss turns German nouns into English verbs ("Erkennung" into
        "detect") that would read as doing it. ``context``: the request's repeated head
        (system prompt, tool descriptions), whose rule matches are remembered. ``rules``:
        what ``_rule_scores`` gave for ``text`` and ``context``, when already known."""
        cal = self.calibration
        rule_text, scores = self._rule_scores(text, context) if rules is None else rules
        written_text = (
            rule_text if as_written is None
            else self._headed(as_written[: cal.rules_max_chars], context)
        )
        cosines = self._best_cosines(vectors, self._area_rows)
        (negative,) = self._best_cosines(vectors, [self._negative_rows])
        floor, ceiling = (
            (cal.area_floor_de, cal.area_ceiling_de)
            if german
            else (cal.area_floor, cal.area_ceiling)
        )
        best = max(cosines, default=0.0)
        # Rules are conjunctions written for precision: when any fires, similarity only
        # adds to areas a rule supports. Otherwise similarity decides, like a nearest-
        # neighbour vote: only the nearest areas count, and only when an everyday task
        # (the taxonomy's minimal exemplars) is not nearer still.
        any_rule = max(scores, default=0.0) >= cal.tag_threshold
        embedding_counts = best > negative
        damping = self.taxonomy.damping(written_text)
        learned = self._learned(features)
        head_threshold = cal.head_threshold_de if written_german else cal.head_threshold
        candidates: list[AreaScore] = []
        for area, cos, rule in zip(self.taxonomy.areas, cosines, scores, strict=True):
            near = cos >= best - cal.embed_margin and (rule > 0.0 or not any_rule)
            emb = self._rescale(cos, floor, ceiling) if near and embedding_counts else 0.0
            emb = max(emb, self._head_score(learned.get(area.id, 0.0), head_threshold))
            score = max(rule, emb) * damping
            if score >= cal.tag_threshold:
                candidates.append(
                    AreaScore(area.id, area.article, area.risk_class, score, rule, emb)
                )
        # Ordinary work damps some classes (taxonomy.ordinary_work); its rules run only
        # when an area of such a class would be tagged (most requests tag nothing).
        tagged = candidates
        if candidates:
            ordinary = self.taxonomy.ordinary_factors(written_text)
            tagged = [
                replace(a, score=a.score * ordinary[a.risk_class])
                for a in candidates
                if a.score * ordinary[a.risk_class] >= cal.tag_threshold
            ]
        tagged.sort(key=lambda a: (-CLASS_RANK[a.risk_class], -a.score))
        return RiskResult(strongest([a.risk_class for a in tagged]), tuple(tagged))

    def _rule_scores(self, text: str, context: str = "") -> tuple[RuleText, list[float]]:
        """The text the rules read (cut to ``rules_max_chars``, its repeated head's
        matches remembered) and each area's rule score on it."""
        text = text[: self.calibration.rules_max_chars]
        rule_text = self._headed(text, context)
        return rule_text, [a.rule_score(rule_text) if text else 0.0 for a in self.taxonomy.areas]

    def _headed(self, text: str, head: str) -> RuleText:
        """``text`` with its head's rule matches remembered, when it starts with ``head``
        (the context, then a line break) and goes on after it."""
        if not head or len(head) + 1 >= len(text) or not text.startswith(head + "\n"):
            return ScanText(text)
        key = hashlib.sha256(head.encode("utf-8", "replace")).digest()
        memo = self._context_rules.get(key)
        if memo is None:
            memo = {}
            self._context_rules.put(key, memo)
        return HeadedText(text, len(head), memo)

    def _head_score(self, mass: float, h: float) -> float:
        """The head's class mass on the tag scale: ``h`` (the head threshold) becomes
        ``tag_threshold``, 0 and 1 stay put."""
        t = self.calibration.tag_threshold
        if mass >= h:
            return t + (mass - h) * (1.0 - t) / (1.0 - h) if h < 1.0 else 1.0
        return mass * t / h if h > 0.0 else t

    def _learned(self, features: Vectors | None) -> dict[str, float]:
        """Scores from the trained area model: for each class, the probability mass of its
        areas (so near-synonymous areas do not split the vote), given to its likeliest area."""
        if self.area_model is None or features is None:
            return {}
        probs = self.area_model.probabilities(features).max(axis=0)
        out: dict[str, float] = {}
        for risk_class in ("prohibited", "high", "limited"):
            idx = [
                i
                for i, lab in enumerate(self.area_model.labels)
                if lab in self._area_class and self._area_class[lab] == risk_class
            ]
            if not idx:
                continue
            mass = float(probs[idx].sum())
            top = max(idx, key=lambda i: probs[i])
            out[self.area_model.labels[top]] = mass
        return out

    def _safety(self, text: str, vectors: Vectors | None) -> SafetyResult:
        text = text[: self.calibration.rules_max_chars]
        cosines = self._best_cosines(vectors, self._safety_rows, self._safety_matrix)
        floor, ceiling = self._safety_scale
        scores: dict[str, float] = {}
        scan = ScanText(text)
        for cat, cos in zip(self.categories, cosines, strict=True):
            rule = cat.rule_score(scan) if text else 0.0
            scores[cat.id] = max(rule, self._rescale(cos, floor, ceiling))
        return SafetyResult(scores)

    def in_force(self, area_id: str, today: dt.date | None = None) -> bool:
        area: Area = self.taxonomy.area(area_id)
        return area.in_force(today or dt.date.today())


def _silent(rule_scores: list[float]) -> bool:
    """Whether no rule fired at all (not even below the tag threshold)."""
    return max(rule_scores, default=0.0) == 0.0
