"""One forward step of an Optimum-exported causal LM, with its KV cache, on ONNX Runtime.

The graph (``text-generation-with-past``) takes ``input_ids``, ``attention_mask``,
``position_ids`` and ``past_key_values.{i}.key|value`` and returns ``logits`` and
``present.{i}.key|value``. A batch of sequences of different lengths shares one cache
tensor per layer, left-padded; the attention mask hides the padding and the position
ids carry each row's true position, so a padded row computes what it would alone.

On CUDA the cache stays on the GPU between steps (IO binding); only the last position's
logits come back to the host for sampling. The cache is brought to the host only when
rows join or leave the batch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from appliance.models.manifest import Manifest
from appliance.providers.local.sessions import create_session, uses_cuda

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]

_ORT_TO_NUMPY = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


@dataclass
class KVBatch:
    """The cache of a batch of rows: host arrays, or device OrtValues on CUDA."""

    #: One array per graph past input, each [batch, kv_heads, length, head_dim].
    tensors: list[Any]
    #: [batch, length] int64; 0 marks left padding.
    mask: IntArray
    on_device: bool = False

    @property
    def size(self) -> int:
        return int(self.mask.shape[0])

    @property
    def length(self) -> int:
        return int(self.mask.shape[1])


class CausalLM:
    """An exported causal LM; thread-compatible (one caller at a time per batch)."""

    def __init__(
        self,
        model_dir: Path,
        manifest: Manifest,
        providers: Sequence[str],
        *,
        intra_op_threads: int | None = None,
    ) -> None:
        self.manifest = manifest
        self.session = create_session(
            manifest.onnx_path(model_dir), providers,
            intra_op_threads=intra_op_threads, label=manifest.name,
        )
        self.cuda = uses_cuda(self.session)
        inputs = self.session.get_inputs()
        self.past_names = [i.name for i in inputs if i.name.startswith("past_key_values.")]
        self.present_names = [n.replace("past_key_values.", "present.") for n in self.past_names]
        self.has_position_ids = any(i.name == "position_ids" for i in inputs)
        if not self.past_names:
            raise ValueError(
                f"model {manifest.name}: the ONNX graph has no KV-cache inputs; export it "
                "with task text-generation-with-past"
            )
        first = next(i for i in inputs if i.name == self.past_names[0])
        self.kv_heads = int(first.shape[1])
        self.head_dim = int(first.shape[3])
        self.kv_dtype = _ORT_TO_NUMPY.get(first.type, np.float32)
        config_path = model_dir / "config.json"
        config = json.loads(config_path.read_text("utf-8")) if config_path.is_file() else {}
        eos = config.get("eos_token_id")
        self.eos_ids: set[int] = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])

    # -- cache manipulation (host side) -------------------------------------------------

    def to_host(self, batch: KVBatch) -> KVBatch:
        if not batch.on_device:
            return batch
        return KVBatch([t.numpy() for t in batch.tensors], batch.mask, on_device=False)

    def merge(self, a: KVBatch | None, b: KVBatch) -> KVBatch:
        """Concatenate two batches along the batch axis, left-padding the shorter one."""
        b = self.to_host(b)
        if a is None or a.size == 0:
            return b
        a = self.to_host(a)
        length = max(a.length, b.length)
        a, b = self._left_pad(a, length), self._left_pad(b, length)
        return KVBatch(
            [np.concatenate([x, y], axis=0) for x, y in zip(a.tensors, b.tensors, strict=True)],
            np.concatenate([a.mask, b.mask], axis=0),
        )

    def select(self, batch: KVBatch, rows: list[int]) -> KVBatch:
        """Keep ``rows``; drop left-padding columns no remaining row needs."""
        batch = self.to_host(batch)
        mask = batch.mask[rows]
        used = np.flatnonzero(mask.any(axis=0))
        start = int(used[0]) if used.size else mask.shape[1]
        return KVBatch(
            [np.ascontiguousarray(t[rows][:, :, start:, :]) for t in batch.tensors],
            np.ascontiguousarray(mask[:, start:]),
        )

    def _left_pad(self, batch: KVBatch, length: int) -> KVBatch:
        pad = length - batch.length
        if pad == 0:
            return batch
        tensors = [np.pad(t, ((0, 0), (0, 0), (pad, 0), (0, 0))) for t in batch.tensors]
        mask = np.pad(batch.mask, ((0, 0), (pad, 0)))
        return KVBatch(tensors, mask)

    def empty_cache(self, rows: int) -> KVBatch:
        shape = (rows, self.kv_heads, 0, self.head_dim)
        return KVBatch(
            [np.zeros(shape, dtype=self.kv_dtype) for _ in self.past_names],
            np.zeros((rows, 0), dtype=np.int64),
        )

    # -- forward ----------------------------------------------------------------------

    def prefill(self, prompt: list[int]) -> tuple[FloatArray, KVBatch]:
        """Run a whole prompt (one row); return its last logits and its cache."""
        ids = np.asarray([prompt], dtype=np.int64)
        return self.step(ids, self.empty_cache(1))

    def decode(self, last_tokens: list[int], batch: KVBatch) -> tuple[FloatArray, KVBatch]:
        """One token per row: returns [rows, vocab] logits and the grown cache."""
        ids = np.asarray(last_tokens, dtype=np.int64)[:, None]
        return self.step(ids, batch)

    def step(self, ids: IntArray, batch: KVBatch) -> tuple[FloatArray, KVBatch]:
        rows, new = ids.shape
        mask = np.concatenate([batch.mask, np.ones((rows, new), dtype=np.int64)], axis=1)
        # True positions: count of real (unpadded) tokens before each new token.
        start = batch.mask.sum(axis=1, keepdims=True)
        positions = (start + np.arange(new, dtype=np.int64)[None, :]).astype(np.int64)
        if self.cuda:
            return self._step_cuda(ids, mask, positions, batch)
        feeds: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
        if self.has_position_ids:
            feeds["position_ids"] = positions
        feeds.update(zip(self.past_names, batch.tensors, strict=True))
        outputs = self.session.run(["logits", *self.present_names], feeds)
        logits = np.asarray(outputs[0][:, -1, :], dtype=np.float32)
        return logits, KVBatch(list(outputs[1:]), mask)

    def _step_cuda(
        self, ids: IntArray, mask: IntArray, positions: IntArray, batch: KVBatch
    ) -> tuple[FloatArray, KVBatch]:
        """IO binding: the cache never leaves the GPU between steps."""
        binding = self.session.io_binding()
        binding.bind_cpu_input("input_ids", ids)
        binding.bind_cpu_input("attention_mask", mask)
        if self.has_position_ids:
            binding.bind_cpu_input("position_ids", positions)
        for name, tensor in zip(self.past_names, batch.tensors, strict=True):
            if isinstance(tensor, np.ndarray):
                tensor = ort.OrtValue.ortvalue_from_numpy(tensor, "cuda", 0)
            binding.bind_ortvalue_input(name, tensor)
        binding.bind_output("logits", "cpu")
        for name in self.present_names:
            binding.bind_output(name, "cuda", 0)
        self.session.run_with_iobinding(binding)
        outputs = binding.get_outputs()
        logits = np.asarray(outputs[0].numpy()[:, -1, :], dtype=np.float32)
        return logits, KVBatch(list(outputs[1:]), mask, on_device=True)
