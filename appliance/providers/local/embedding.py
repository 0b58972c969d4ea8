"""Sentence embeddings on ONNX Runtime: tokenize, encode, mean-pool, L2-normalise.

This is what sentence-transformers does for all-MiniLM-L6-v2, without PyTorch at run
time. ``embed`` is synchronous and CPU-bound: call it from a worker thread. The session
and tokenizer are safe to share between threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from appliance.models.manifest import MANIFEST_NAME, Manifest, load_manifest
from appliance.providers.local.sessions import create_session


class OnnxEmbedder:
    """An exported sentence-embedding model; vectors are float32 and unit length."""

    def __init__(
        self,
        model_dir: Path,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        *,
        batch_size: int = 32,
        intra_op_threads: int | None = None,
        onnx_file: str | None = None,
    ) -> None:
        """``onnx_file``: another ONNX file of the same directory (same tokenizer and
        pooling) to run instead of the manifest's, e.g. its screening copy."""
        self.model_dir = Path(model_dir)
        if (self.model_dir / MANIFEST_NAME).is_file():
            self.manifest = load_manifest(self.model_dir)
        else:
            self.manifest = Manifest(name=self.model_dir.name, task="embedding", context_length=256)
        self.max_length = self.manifest.context_length
        self.batch_size = batch_size
        self.tokenizer = Tokenizer.from_file(str(self.manifest.tokenizer_path(self.model_dir)))
        self.tokenizer.enable_truncation(self.max_length)
        pad_id = self.tokenizer.token_to_id("[PAD]") or 0
        self.tokenizer.enable_padding(pad_id=pad_id, pad_token="[PAD]")
        onnx_path = self.model_dir / onnx_file if onnx_file else self.manifest.onnx_path(self.model_dir)
        self.session = create_session(
            onnx_path,
            providers,
            intra_op_threads=intra_op_threads,
            label=self.manifest.name,
        )
        self._inputs = {i.name for i in self.session.get_inputs()}
        self.dimensions = int(self.session.get_outputs()[0].shape[-1] or 0) or None

    def count_tokens(self, texts: list[str]) -> int:
        """Tokens the model actually sees (after truncation), for usage reporting."""
        return sum(sum(e.attention_mask) for e in self.tokenizer.encode_batch(texts))

    def embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """One unit-length float32 row per text, in the order given."""
        if not texts:
            return np.zeros((0, self.dimensions or 0), dtype=np.float32)
        # Sort by length so each batch pads little; restore the order at the end.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        rows: list[npt.NDArray[np.float32]] = []
        for start in range(0, len(order), self.batch_size):
            batch = [texts[i] for i in order[start : start + self.batch_size]]
            rows.append(self._embed_batch(batch))
        out = np.empty((len(texts), rows[0].shape[1]), dtype=np.float32)
        out[np.asarray(order)] = np.concatenate(rows)
        return out

    def _embed_batch(self, texts: list[str]) -> npt.NDArray[np.float32]:
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = np.asarray(self.session.run(None, feeds)[0], dtype=np.float32)
        if self.manifest.pooling == "cls":
            pooled = hidden[:, 0, :]
        else:
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit: npt.NDArray[np.float32] = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return unit
