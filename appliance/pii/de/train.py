"""Train the German tagger: multinomial logistic regression on hashed features, NumPy only.

One weight row per hashed feature (:mod:`.features`) and a softmax per token over BIO
tags; trained with AdaGrad on mini-batches, which touches only the rows a batch uses.
It replaced a torch char-CNN + token-CNN ensemble (about 3.5 minutes to build on two
cores, and no better on text it had not seen; see docs/benchmarks.md): the appliance
builds the tagger on its first start, beside other models, and has 90 seconds for all
of them. Everything is seeded, so one recipe gives one model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from appliance.pii.de.features import BUCKETS, TAGS, Featurizer, tokenize
from appliance.pii.de.synth import Sample

#: The files of a built model directory.
MODEL_FILE = "model.npz"
META_FILE = "meta.json"


@dataclass(frozen=True)
class Recipe:
    """Everything that decides the model; its fields are part of the cache key."""

    seed: int = 7
    #: Generated samples (:mod:`.synth`) next to the real ones.
    samples: int = 12000
    epochs: int = 2
    batch: int = 1024
    #: AdaGrad's step size.
    lr: float = 0.3
    #: L2 pull towards zero on the rows a batch touches, per step.
    l2: float = 1e-6
    #: Share of tokens whose own word (exact and lower-cased) is hidden in a step, so that
    #: the model learns what names look like and where they stand, not only which names
    #: it has seen: the names users send are mostly names it has not.
    word_dropout: float = 0.3
    #: Loss weight of entity tags against "O": recall counts more than precision (F2).
    entity_weight: float = 2.0
    #: Copies of each real LER DEV-half sentence (3,333 court sentences; see :mod:`.ler`).
    real_repeat: int = 2
    #: Extra copies of the LER sentences that name a person or place (only 188 do).
    real_entity_repeat: int = 0
    #: Copies of each GermEval train and tune sentence (general German; :mod:`.germeval`).
    germeval_repeat: int = 1


@dataclass(frozen=True)
class Matrix:
    """Tokens as rows of feature ids: ``ids[starts[k]:starts[k + 1]]`` is token k's."""

    ids: np.ndarray  # int64, all tokens' ids concatenated
    starts: np.ndarray  # int64 [tokens + 1]
    tags: np.ndarray  # int64 [tokens]


def featurize(samples: Sequence[Sample], featurizer: Featurizer,
              progress: Callable[[float], None] = lambda _f: None) -> Matrix:
    """Every token of ``samples`` as a row; ``progress`` gets the share done now and then."""
    ids: list[np.ndarray] = []
    lengths: list[np.ndarray] = []
    tags: list[int] = []
    step = max(len(samples) // 10, 1)
    for k, s in enumerate(samples):
        tokens = tokenize(s.text)
        if not tokens:
            continue
        flat, starts = featurizer.ids(tokens)
        ids.append(flat)
        lengths.append(np.diff(np.append(starts, len(flat))))
        tags += s.tags()
        if k % step == step - 1:
            progress((k + 1) / len(samples))
    counts = np.concatenate(lengths)
    return Matrix(np.concatenate(ids), np.concatenate(([0], np.cumsum(counts))),
                  np.asarray(tags, dtype=np.int64))


def scores(weights: np.ndarray, bias: np.ndarray, ids: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Logits [tokens, tags] of tokens whose ids begin at ``starts`` (first is 0)."""
    logits: np.ndarray = np.add.reduceat(weights[ids], starts, axis=0) + bias
    return logits


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    probabilities: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return probabilities


def fit(data: Matrix, recipe: Recipe, progress: Callable[[int, float], None] = lambda _e, _l: None,
        ) -> tuple[np.ndarray, np.ndarray]:
    """(weights [BUCKETS, tags], bias [tags]); ``progress(epoch, mean loss)`` per epoch."""
    rng = np.random.default_rng(recipe.seed)
    k = len(TAGS)
    w = np.zeros((BUCKETS, k), dtype=np.float32)
    g2 = np.full((BUCKETS, k), 1e-6, dtype=np.float32)
    bias = np.zeros(k, dtype=np.float64)
    bias_g2 = np.full(k, 1e-6)
    class_weight = np.array([1.0] + [recipe.entity_weight] * (k - 1))
    n = len(data.tags)
    lengths = np.diff(data.starts)
    for epoch in range(recipe.epochs):
        order = rng.permutation(n)
        total = 0.0
        for b in range(0, n, recipe.batch):
            rows = order[b:b + recipe.batch]
            take = lengths[rows]
            # The ids of the batch's rows, gathered without a Python loop.
            offsets = np.repeat(data.starts[rows] - np.concatenate(([0], np.cumsum(take)[:-1])), take)
            ids = data.ids[np.arange(take.sum()) + offsets]
            local_starts = np.concatenate(([0], np.cumsum(take)[:-1]))
            if recipe.word_dropout:
                # A token's first two ids are its word, exact and lower-cased (features.py).
                hide = local_starts[rng.random(len(rows)) < recipe.word_dropout]
                ids[hide] = 0
                ids[hide + 1] = 0
            p = softmax(scores(w, bias, ids, local_starts))
            y = data.tags[rows]
            cw = class_weight[y]
            total += float(-(np.log(p[np.arange(len(y)), y] + 1e-12) * cw).sum())
            grad = p
            grad[np.arange(len(y)), y] -= 1.0
            grad *= cw[:, None]
            uniq, inverse = np.unique(ids, return_inverse=True)
            owner = np.repeat(np.arange(len(rows)), take)
            g = np.stack([np.bincount(inverse, weights=grad[owner, c], minlength=len(uniq))
                          for c in range(k)], axis=1).astype(np.float32)
            g += recipe.l2 * w[uniq]
            g2[uniq] += g * g
            w[uniq] -= recipe.lr * g / np.sqrt(g2[uniq])
            gb = grad.sum(axis=0)
            bias_g2 += gb * gb
            bias -= recipe.lr * gb / np.sqrt(bias_g2)
        progress(epoch + 1, total / n)
    return w, bias.astype(np.float32)


def save(path: Path, weights: np.ndarray, bias: np.ndarray) -> None:
    """Half-precision rows, compressed: the untouched rows (zeros) cost almost nothing."""
    with path.open("wb") as f:
        np.savez_compressed(f, weights=weights.astype(np.float16), bias=bias)


def load(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path) as z:
        return z["weights"].astype(np.float32), z["bias"].astype(np.float32)
