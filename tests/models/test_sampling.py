"""Greedy, temperature and nucleus sampling."""

from __future__ import annotations

import numpy as np

from appliance.providers.local.sampling import Sampler, SamplingParams

LOGITS = np.log(np.array([0.5, 0.3, 0.15, 0.05], dtype=np.float32))


def draws(params: SamplingParams, n: int = 2000) -> np.ndarray:
    s = Sampler(params)
    return np.array([s(LOGITS) for _ in range(n)])


def test_greedy_is_argmax() -> None:
    assert set(draws(SamplingParams(temperature=0.0), 50)) == {0}


def test_top_p_keeps_the_nucleus_only() -> None:
    assert set(draws(SamplingParams(temperature=1.0, top_p=0.7, seed=1))) == {0, 1}


def test_temperature_one_follows_the_distribution() -> None:
    counts = np.bincount(draws(SamplingParams(seed=2)), minlength=4) / 2000
    np.testing.assert_allclose(counts, [0.5, 0.3, 0.15, 0.05], atol=0.04)


def test_low_temperature_sharpens() -> None:
    counts = np.bincount(draws(SamplingParams(temperature=0.2, seed=3)), minlength=4)
    assert counts[0] > 1800


def test_seed_reproduces() -> None:
    a = draws(SamplingParams(seed=5), 100)
    assert (a == draws(SamplingParams(seed=5), 100)).all()
    assert (a != draws(SamplingParams(seed=6), 100)).any()
