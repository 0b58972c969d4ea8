"""Inference-only matrix products for spaCy: NumPy on one thread, weights pre-transposed.

thinc multiplies through the BLIS build it ships, which on this project's hosts is slow
on the small matrices one message makes, and it passes every weight matrix transposed
(``x @ W.T``), which NumPy's OpenBLAS multiplies at half the speed of a contiguous
``W.T``. Serving never trains, so each weight's transpose is made once and kept.
CPU time per text, tok2vec + NER (BLIS / NumPy / NumPy with kept transposes): a
12-token prompt 2.49 / 2.26 / 1.96 ms, 400 characters 9.43 / 6.84 / 6.34 ms, a batch of
32 short prompts 1.01 / 0.68 / 0.63 ms each; the entities found are the same. NumPy is
held to one BLAS thread (see :mod:`appliance.blas`): its threads stall on busy cores.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from thinc.api import NumpyOps

from appliance.blas import one_blas_thread


class InferenceOps(NumpyOps):  # type: ignore[misc]  # thinc ships no types
    """``NumpyOps`` whose ``gemm`` reads a kept, contiguous transpose of known weights.

    Only arrays registered with :meth:`keep_weights` (the model's parameters, alive as
    long as the model) are ever cached, keyed by their data address and the shape
    they are viewed as; activations always take the ordinary path.
    """

    def __init__(self) -> None:
        super().__init__(use_blis=False)
        self._weights: set[int] = set()
        self._transposed: dict[tuple[int, tuple[int, ...]], np.ndarray] = {}

    def keep_weights(self, model: Any) -> None:
        for node in model.walk():
            for name in node.param_names:
                if node.has_param(name):
                    self._weights.add(_address(node.get_param(name)))

    def gemm(self, x: Any, y: Any, out: Any = None, trans1: bool = False,
             trans2: bool = False) -> Any:
        if trans2 and not trans1 and y.ndim == 2 and _address(y) in self._weights:
            key = (_address(y), y.shape)
            yt = self._transposed.get(key)
            if yt is None:
                yt = self._transposed[key] = np.ascontiguousarray(y.T)
            return super().gemm(x, yt, out=out)
        return super().gemm(x, y, out=out, trans1=trans1, trans2=trans2)


def _address(a: np.ndarray) -> int:
    return int(a.__array_interface__["data"][0])


def use_inference_ops(nlp: Any) -> None:
    """Point every layer of ``nlp``'s trained pipes at one :class:`InferenceOps`."""
    one_blas_thread()
    ops = InferenceOps()
    for _, pipe in nlp.pipeline:
        model = getattr(pipe, "model", None)
        if model is None:
            continue
        ops.keep_weights(model)
        for node in model.walk():
            node.ops = ops
