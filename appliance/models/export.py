"""Export a Transformers checkpoint to ONNX with Optimum and write its manifest.

One code path for every source: a hub id (on a machine that can reach the hub), a local
checkpoint directory (the MiniLM shipped by a pip package, the locally built test
model). Causal LMs are exported with ``text-generation-with-past`` so that the graph
takes and returns the KV cache; the generation engine depends on that.
"""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.models.manifest import Manifest, ModelSource, SourceKind, Task, write_manifest

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

#: Appliance task -> Optimum export task.
OPTIMUM_TASKS: dict[str, str] = {
    "chat": "text-generation-with-past",
    "completion": "text-generation-with-past",
    "embedding": "feature-extraction",
    "classification": "text-classification",
}

#: Files worth keeping next to the graph (tokenizer, configs); the rest is Optimum's.
_KEEP_FROM_SOURCE = ("sentence_bert_config.json", "modules.json", "1_Pooling/config.json")


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text("utf-8"))
    return data if isinstance(data, dict) else {}


def export_onnx(
    source: str,
    out: Path,
    *,
    task: Task,
    name: str | None = None,
    source_kind: SourceKind = "hub",
    price_per_1k_tokens: float = 0.0,
    progress: Progress = lambda _msg: None,
) -> Manifest:
    """Export ``source`` (hub id or local directory) into ``out`` and write model.yaml."""
    from optimum.exporters.onnx import main_export  # heavy import: only when exporting

    out.mkdir(parents=True, exist_ok=True)
    progress(f"exporting {source} to ONNX (task {OPTIMUM_TASKS[task]}) ...")
    with warnings.catch_warnings():
        # Tracing always warns (TracerWarning, deprecations); they are expected and say
        # nothing about this export. Under "warnings as errors" they would abort it.
        warnings.simplefilter("ignore")
        main_export(
            source,
            output=out,
            task=OPTIMUM_TASKS[task],
            library_name="transformers",
            do_validation=False,
            device="cpu",
        )
    src_dir = Path(source)
    if src_dir.is_dir():
        for rel in _KEEP_FROM_SOURCE:
            if (src_dir / rel).is_file():
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src_dir / rel, out / rel)
    manifest = _manifest_for(out, task=task, name=name or out.name, source=source,
                             source_kind=source_kind, price=price_per_1k_tokens)
    write_manifest(out, manifest)
    progress(f"exported {manifest.name}: {size_mb(out):.1f} MB in {out}")
    return manifest


def _manifest_for(
    out: Path, *, task: Task, name: str, source: str, source_kind: SourceKind, price: float
) -> Manifest:
    config = _read_json(out / "config.json")
    tok_config = _read_json(out / "tokenizer_config.json")
    sbert = _read_json(out / "sentence_bert_config.json")
    pooling_cfg = _read_json(out / "1_Pooling" / "config.json")
    if task == "embedding":
        context = int(sbert.get("max_seq_length") or config.get("max_position_embeddings") or 512)
        return Manifest(
            name=name,
            task=task,
            context_length=context,
            dimensions=int(config.get("hidden_size", 0)) or None,
            pooling="cls" if pooling_cfg.get("pooling_mode_cls_token") else "mean",
            execution_providers=("CPUExecutionProvider",),
            price_per_1k_tokens=price,
            source=ModelSource(kind=source_kind, id=source, export_task=OPTIMUM_TASKS[task]),
        )
    template = tok_config.get("chat_template")
    if isinstance(template, list):  # several named templates: take the default one
        template = next((t["template"] for t in template if t.get("name") == "default"), None)
    chat_template_file = out / "chat_template.jinja"
    if template is None and chat_template_file.is_file():
        template = chat_template_file.read_text("utf-8")
    bos = tok_config.get("bos_token")
    if isinstance(bos, dict):
        bos = bos.get("content")
    return Manifest(
        name=name,
        task=task,
        context_length=int(config.get("max_position_embeddings") or 2048),
        chat_template=template if isinstance(template, str) else None,
        # A chat template usually writes the BOS itself; only add one for plain prompts.
        bos_token=bos if isinstance(bos, str) and not template else None,
        price_per_1k_tokens=price,
        source=ModelSource(kind=source_kind, id=source, export_task=OPTIMUM_TASKS[task]),
    )


def size_mb(model_dir: Path) -> float:
    return sum(p.stat().st_size for p in model_dir.rglob("*") if p.is_file()) / 1e6
