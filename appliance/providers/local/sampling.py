"""Choosing the next token: greedy, or temperature + nucleus (top_p) sampling.

Each request owns its random generator, seeded from the request's ``seed`` when given,
so a seeded request gives the same tokens whatever else is decoded in its batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class SamplingParams:
    #: 0 means greedy (argmax); OpenAI's default is 1.
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


class Sampler:
    def __init__(self, params: SamplingParams) -> None:
        self.params = params
        self.rng = np.random.default_rng(params.seed)

    def __call__(self, logits: npt.NDArray[np.floating]) -> int:
        """Pick a token id from one row of logits."""
        if self.params.greedy:
            return int(np.argmax(logits))
        scaled = logits.astype(np.float64) / self.params.temperature
        scaled -= scaled.max()
        probs = np.exp(scaled)
        probs /= probs.sum()
        if self.params.top_p < 1.0:
            order = np.argsort(-probs, kind="stable")
            cumulative = np.cumsum(probs[order])
            # Keep the smallest prefix whose mass reaches top_p (at least one token).
            keep = int(np.searchsorted(cumulative, self.params.top_p)) + 1
            kept = order[:keep]
            p = probs[kept] / probs[kept].sum()
            return int(kept[min(int(np.searchsorted(np.cumsum(p), self.rng.random())), keep - 1)])
        cumulative = np.cumsum(probs)
        return int(min(np.searchsorted(cumulative, self.rng.random() * cumulative[-1]),
                       len(probs) - 1))
