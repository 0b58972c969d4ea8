"""Models for tests, built once per test run and shared between pytest-xdist workers.

Each build runs under a file lock and lands by atomic rename (see
``appliance.models.build_cache``), so N workers asking at once cause one build.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from appliance.models.build_cache import build_once
from appliance.models.builtin import CHAT_MODEL, EMBED_MODEL, ensure_builtin
from appliance.models.manifest import is_complete
from appliance.models.test_model import CHECKPOINT_DIR, SizeName, build_test_model


@dataclass(frozen=True)
class TestModels:
    """Directories of ready-to-load models (each with its model.yaml)."""

    __test__ = False  # not a pytest test class, despite the name

    #: The tiny random-weight Llama chat model (ONNX), named ``local-chat``.
    chat: Path
    #: int8 all-MiniLM-L6-v2 (ONNX), named ``local-embed``.
    embed: Path

    @property
    def models_dir(self) -> Path:
        """Usable as a local provider's ``models_dir``: holds both models."""
        return self.chat.parent

    @property
    def chat_checkpoint(self) -> Path:
        """The PyTorch checkpoint the chat model was exported from."""
        return self.chat / CHECKPOINT_DIR


def ensure_test_models(cache_dir: Path) -> TestModels:
    """Build (once) and return the test models under ``cache_dir/models``."""
    models_dir = Path(cache_dir) / "models"
    return TestModels(
        chat=ensure_builtin(CHAT_MODEL, models_dir),
        embed=ensure_builtin(EMBED_MODEL, models_dir),
    )


def ensure_test_chat_model(cache_dir: Path, size: SizeName = "tiny", seed: int = 0) -> Path:
    """A random-weight Llama of the given size, built once under ``cache_dir``."""
    target = Path(cache_dir) / f"test-llama-{size}-{seed}"
    return build_once(
        target,
        lambda tmp: build_test_model(tmp, size=size, name=target.name, seed=seed),
        is_done=is_complete,
    )
