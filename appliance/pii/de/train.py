"""Train the German tagger with torch and export it to ONNX (build time only).

Character CNN + word, shape and word-list features, three convolutions over tokens
(each token sees eight neighbours on each side: enough for titles, prepositions and
citation context), a softmax per token over BIO tags; greedy decoding at run time (no
CRF: the ONNX graph stays one plain forward pass). Convolutions rather than an LSTM
because they train several times faster on two shared CPU cores and need no packing.
Everything is seeded, so one recipe gives one model. The exported graph averages the
probabilities of ``Recipe.members`` taggers, each trained from its own seed on its own
generated text: one tagger's quirks (a noun after "in" taken for a town) rarely repeat in
the other, so the average is surer where both agree and doubts where they do not.
"""

from __future__ import annotations

import random
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from appliance.pii.de.features import (
    CHARSET,
    FLAGS,
    MAX_CHARS,
    SHAPES,
    TAGS,
    Encoded,
    encode,
    tokenize,
)
from appliance.pii.de.lexicon import Lexicon
from appliance.pii.de.synth import Sample


@dataclass(frozen=True)
class Recipe:
    """Everything that decides the model; its fields are part of the cache key."""

    seed: int = 7
    samples: int = 24000
    epochs: int = 4
    batch: int = 64
    lr: float = 3e-3
    word_dim: int = 48
    char_dim: int = 16
    char_filters: int = 48
    shape_dim: int = 8
    hidden: int = 128
    threads: int = 1
    vocab_min_count: int = 3
    vocab_size: int = 8000
    word_dropout: float = 0.15
    dropout: float = 0.25
    #: Loss weight of entity tags against "O": recall counts more than precision (F2).
    entity_weight: float = 2.0
    #: Taggers averaged in the exported graph (seeds ``seed``, ``seed + 1``, ...).
    members: int = 2
    #: Copies of each real LER DEV-half sentence in every member's data, next to the
    #: ``samples`` generated ones (3,333 real sentences are few; see :mod:`.ler`).
    real_repeat: int = 2
    #: Extra copies of the real sentences that name a person or place (only 188 of the
    #: 3,333 do; they hold the 253 entities the tagger can learn court usage from).
    real_entity_repeat: int = 0


class Tagger(nn.Module):
    def __init__(self, recipe: Recipe, vocab_size: int) -> None:
        super().__init__()
        r = recipe
        self.words = nn.Embedding(vocab_size, r.word_dim, padding_idx=0)
        self.chars = nn.Embedding(len(CHARSET) + 2, r.char_dim, padding_idx=0)
        self.char_cnn = nn.Conv1d(r.char_dim, r.char_filters, kernel_size=3, padding=1)
        self.shapes = nn.Embedding(len(SHAPES), r.shape_dim)
        width = r.word_dim + r.char_filters + r.shape_dim + len(FLAGS)
        self.drop = nn.Dropout(r.dropout)
        self.conv1 = nn.Conv1d(width, r.hidden, kernel_size=5, padding=2)
        self.conv2 = nn.Conv1d(r.hidden, r.hidden, kernel_size=5, padding=2)
        self.conv3 = nn.Conv1d(r.hidden, r.hidden, kernel_size=5, padding=4, dilation=2)
        self.out = nn.Linear(r.hidden, len(TAGS))

    def logits(self, words: torch.Tensor, chars: torch.Tensor, shapes: torch.Tensor,
               flags: torch.Tensor) -> torch.Tensor:
        b, t, c = chars.shape
        ch = self.chars(chars.reshape(b * t, c)).transpose(1, 2)  # [bt, dim, c]
        ch = torch.relu(self.char_cnn(ch)).max(dim=2).values.reshape(b, t, -1)
        x = torch.cat([self.words(words), ch, self.shapes(shapes), flags], dim=-1)
        # Padding must look like the zero padding at a sequence's ends (what serving sees).
        mask = (shapes > 0).unsqueeze(1).to(x.dtype)  # [b, 1, t]
        h = self.drop(x).transpose(1, 2) * mask
        h = self.drop(torch.relu(self.conv1(h))) * mask
        h = self.drop(torch.relu(self.conv2(h))) * mask + h
        h = self.drop(torch.relu(self.conv3(h))) * mask + h
        return self.out(h.transpose(1, 2))

    def forward(self, words: torch.Tensor, chars: torch.Tensor, shapes: torch.Tensor,
                flags: torch.Tensor) -> torch.Tensor:
        """Tag probabilities [1, T, tags] for one sequence (the exported graph)."""
        return torch.softmax(self.logits(words, chars, shapes, flags), dim=-1)


class Ensemble(nn.Module):
    """The mean of its members' tag probabilities: the graph that is exported."""

    def __init__(self, members: Sequence[Tagger]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, words: torch.Tensor, chars: torch.Tensor, shapes: torch.Tensor,
                flags: torch.Tensor) -> torch.Tensor:
        probs = [m(words, chars, shapes, flags) for m in self.members]
        return torch.stack(probs).mean(dim=0)


def build_vocab(samples: Sequence[Sample], recipe: Recipe) -> list[str]:
    """Lower-cased words seen often outside entities: context words, never names."""
    counts: Counter[str] = Counter()
    for s in samples:
        for tok in tokenize(s.text):
            if not any(tok.start < e and tok.end > b for b, e, _ in s.spans):
                counts[tok.text.lower()] += 1
    common = [w for w, c in counts.most_common(recipe.vocab_size) if c >= recipe.vocab_min_count]
    return ["<pad>", "<unk>", *common]


def _batch(encoded: Sequence[tuple[Encoded, list[int]]]) -> tuple[torch.Tensor, ...]:
    n, t = len(encoded), max(len(tags) for _, tags in encoded)
    words = np.zeros((n, t), dtype=np.int64)
    chars = np.zeros((n, t, MAX_CHARS), dtype=np.int64)
    shapes = np.zeros((n, t), dtype=np.int64)
    flags = np.zeros((n, t, len(FLAGS)), dtype=np.float32)
    tags = np.full((n, t), -100, dtype=np.int64)
    for i, (e, y) in enumerate(encoded):
        k = len(y)
        words[i, :k], chars[i, :k], shapes[i, :k], flags[i, :k], tags[i, :k] = (
            e.words, e.chars, e.shapes, e.flags, y)
    lengths = torch.tensor([len(y) for _, y in encoded])
    return (torch.from_numpy(words), torch.from_numpy(chars), torch.from_numpy(shapes),
            torch.from_numpy(flags), torch.from_numpy(tags), lengths)


def _length_batches(data: list[tuple[Encoded, list[int]]], size: int,
                    rng: random.Random) -> list[list[tuple[Encoded, list[int]]]]:
    """Batches of similar length (little padding), in random order."""
    rng.shuffle(data)
    batches = []
    pool = size * 50
    for k in range(0, len(data), pool):
        group = sorted(data[k:k + pool], key=lambda d: len(d[1]))
        batches += [group[j:j + size] for j in range(0, len(group), size)]
    rng.shuffle(batches)
    return batches


def train(
    samples: Sequence[Sample],
    lex: Lexicon,
    recipe: Recipe,
    progress: Callable[[str], None] = lambda _m: None,
    vocab: list[str] | None = None,
    seed: int | None = None,
    tick: Callable[[int, int], None] | None = None,
) -> tuple[Tagger, list[str]]:
    """One tagger; ``vocab`` is shared by ensemble members (they read the same inputs).
    ``tick(steps_done, steps_total)`` follows every batch (the build's progress bar)."""
    seed = recipe.seed if seed is None else seed
    torch.manual_seed(seed)
    torch.set_num_threads(recipe.threads)  # more threads are slower on shared cores
    rng = random.Random(seed)
    vocab = vocab or build_vocab(samples, recipe)
    index = {w: i for i, w in enumerate(vocab)}
    data = [(encode(tokenize(s.text), lex, index), s.tags()) for s in samples]
    data = [d for d in data if d[1]]
    model = Tagger(recipe, len(vocab))
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=recipe.lr, total_steps=recipe.epochs * (len(data) // recipe.batch + 1))
    total_steps = recipe.epochs * (len(data) // recipe.batch + 1)
    done_steps = 0
    weight = torch.tensor([1.0] + [recipe.entity_weight] * (len(TAGS) - 1))
    loss_fn = nn.CrossEntropyLoss(weight=weight, ignore_index=-100)
    for epoch in range(recipe.epochs):
        model.train()
        total = 0.0
        for batch in _length_batches(data, recipe.batch, rng):
            words, chars, shapes, flags, tags, lengths = _batch(batch)
            drop = torch.rand(words.shape) < recipe.word_dropout
            words = words.masked_fill(drop & (words > 0), 1)
            logits = model.logits(words, chars, shapes, flags)
            loss = loss_fn(logits.reshape(-1, len(TAGS)), tags.reshape(-1))
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            total += loss.item() * len(lengths)
            done_steps += 1
            if tick is not None:
                tick(done_steps, total_steps)
        progress(f"epoch {epoch + 1}/{recipe.epochs}: loss {total / len(data):.4f}")
    model.eval()
    return model, vocab


def train_member(job: tuple[Sequence[Sample], Recipe, list[str], int],
                 tick: Callable[[int, int], None] | None = None) -> dict[str, torch.Tensor]:
    """One ensemble member in a worker process (its weights travel back, not the model)."""
    from appliance.pii.de.lexicon import load_lexicon

    samples, recipe, vocab, seed = job
    model, _ = train(samples, load_lexicon(), recipe, vocab=vocab, seed=seed, tick=tick)
    return model.state_dict()


def from_weights(weights: dict[str, torch.Tensor], recipe: Recipe, vocab: Sequence[str]) -> Tagger:
    model = Tagger(recipe, len(vocab))
    model.load_state_dict(weights)
    model.eval()
    return model


def export(model: nn.Module, path: Path) -> None:
    """One-sequence graph: words [1,T], chars [1,T,C], shapes [1,T], flags [1,T,F]."""
    t = 5
    args = (torch.ones(1, t, dtype=torch.long), torch.ones(1, t, MAX_CHARS, dtype=torch.long),
            torch.ones(1, t, dtype=torch.long), torch.zeros(1, t, len(FLAGS)))
    axes = {"words": {1: "t"}, "chars": {1: "t"}, "shapes": {1: "t"}, "flags": {1: "t"},
            "probs": {1: "t"}}
    with warnings.catch_warnings():
        # The TorchScript exporter warns about LSTMs and its own deprecation; both are
        # expected for a batch-1 graph and would abort under "warnings as errors".
        warnings.simplefilter("ignore")
        torch.onnx.export(model, args, str(path), input_names=["words", "chars", "shapes", "flags"],
                          output_names=["probs"], dynamic_axes=axes, opset_version=17,
                          dynamo=False)
