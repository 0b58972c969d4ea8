"""ONNX Runtime sessions with execution-provider fallback that says what really runs.

``onnxruntime-gpu`` lists CUDA among the available providers even on a host without a
GPU and silently falls back to CPU when the session is created; only
``session.get_providers()`` tells the truth. We log one clear line when a preferred
provider was dropped (see :func:`fallback_warning`), so an operator knows the model is not
on the GPU.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import onnxruntime as ort

log = logging.getLogger(__name__)


def create_session(
    onnx_path: Path,
    providers: Sequence[str],
    *,
    intra_op_threads: int | None = None,
    label: str | None = None,
) -> ort.InferenceSession:
    """Open ``onnx_path`` on the first usable providers of ``providers`` (CPU last resort)."""
    available = set(ort.get_available_providers())
    wanted = [p for p in providers if p in available] or ["CPUExecutionProvider"]
    if "CPUExecutionProvider" not in wanted:
        wanted.append("CPUExecutionProvider")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Every model here takes inputs of varying shape (batch size, sequence length, a
    # growing KV cache). With memory patterns on, ONNX Runtime plans and keeps an
    # allocation pattern per input shape it has seen, for the life of the session: the
    # two risk encoders held 60 MiB more after a thousand mixed batches. Off, inference
    # took the same time (docs/reliability.md).
    options.enable_mem_pattern = False
    if intra_op_threads:
        options.intra_op_num_threads = intra_op_threads
    options.log_severity_level = 3  # errors only: ORT warns about every CPU-placed node
    session = ort.InferenceSession(str(onnx_path), sess_options=options, providers=wanted)
    running = session.get_providers()
    preferred = providers[0] if providers else "CPUExecutionProvider"
    if preferred not in running:
        # Per model at INFO; the provider logs the one WARNING an operator needs.
        log.info("model %s: %s unavailable, running on %s",
                 label or onnx_path.parent.name, preferred, running[0])
    return session


def uses_cuda(session: ort.InferenceSession) -> bool:
    return bool(session.get_providers()[0] == "CUDAExecutionProvider")


def fallback_warning(wanted: Sequence[str], sessions: dict[str, ort.InferenceSession]) -> str | None:
    """One line saying which models run on a lesser provider than ``wanted[0]``, or None."""
    if not wanted:
        return None
    demoted = sorted(n for n, s in sessions.items() if s.get_providers()[0] != wanted[0])
    if not demoted:
        return None
    available = ", ".join(ort.get_available_providers())
    return (
        f"{wanted[0]} is not usable on this host (onnxruntime {ort.__version__}, available: "
        f"{available}); local models {', '.join(demoted)} run on CPUExecutionProvider"
    )
