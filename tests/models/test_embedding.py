"""The int8 ONNX MiniLM must give the vectors the PyTorch sentence-transformers model gives."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.models.builtin import minilm_checkpoint
from appliance.providers.local.embedding import OnnxEmbedder
from appliance.testing.models import TestModels

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Our compliance team reviews every high-risk AI system before deployment.",
    "Mein Name ist Hans und ich wohne in Berlin.",
    "def add(a, b): return a + b",
    "Quarterly revenue grew by twelve percent compared with last year.",
    "Please summarise the attached contract in three bullet points.",
]


@pytest.fixture(scope="module")
def embedder(test_models: TestModels) -> OnnxEmbedder:
    return OnnxEmbedder(test_models.embed)


def test_vectors_match_pytorch_reference(embedder: OnnxEmbedder) -> None:
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(minilm_checkpoint()), device="cpu")
    expected = reference.encode(SENTENCES, normalize_embeddings=True)
    got = embedder.embed(SENTENCES)
    assert got.dtype == np.float32
    assert got.shape == (len(SENTENCES), 384)
    cosines = (got * expected).sum(axis=1)
    assert cosines.min() >= 0.99, cosines


def test_unit_length_and_order_independent_of_batching(embedder: OnnxEmbedder) -> None:
    together = embedder.embed(SENTENCES)
    one_by_one = np.concatenate([embedder.embed([s]) for s in SENTENCES])
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    # Dynamic int8 quantization scales activations per batch, so rows move slightly
    # with their batch-mates; they must still point the same way.
    assert (together * one_by_one).sum(axis=1).min() >= 0.99


def test_similar_sentences_are_closer_than_unrelated(embedder: OnnxEmbedder) -> None:
    a, b, c = embedder.embed(
        ["A cat sits on the mat.", "A kitten is sitting on a rug.", "Interest rates rose again."]
    )
    assert float(a @ b) > float(a @ c) + 0.2


def test_empty_input_gives_empty_matrix(embedder: OnnxEmbedder) -> None:
    assert embedder.embed([]).shape[0] == 0


def test_built_model_is_int8(test_models: TestModels) -> None:
    from appliance.models.manifest import load_manifest

    manifest = load_manifest(test_models.embed)
    assert manifest.quantization == "int8"
    assert manifest.task == "embedding"
    assert (test_models.embed / manifest.onnx).stat().st_size < 40_000_000


def test_screening_copy_points_the_same_way(test_models: TestModels, embedder: OnnxEmbedder) -> None:
    """The every-MatMul-int8 copy the risk classifier screens with stays close to the
    served vectors (its use is judged by the risk benchmark, not by fidelity)."""
    from appliance.models.quantize import SCREENING_ONNX

    assert (test_models.embed / SCREENING_ONNX).is_file()
    screening = OnnxEmbedder(test_models.embed, onnx_file=SCREENING_ONNX)
    cosines = (screening.embed(SENTENCES) * embedder.embed(SENTENCES)).sum(axis=1)
    assert cosines.min() >= 0.98, cosines
    assert cosines.max() < 1.0 - 1e-6  # a different model really ran
