"""Model manifests: ``<models_dir>/<name>/model.yaml`` says what a local model is.

The manifest is the only thing the local provider trusts about a model directory: which
task it serves, where the ONNX graph and tokenizer are, how prompts are templated, how
long a context it takes and which execution providers to try. It is validated when
read, so a broken directory fails at start-up with its path, never mid-request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from appliance.errors import ConfigError

MANIFEST_NAME = "model.yaml"

Task = Literal["chat", "completion", "embedding", "classification"]
SourceKind = Literal["test-model", "package", "hub", "path"]


class ModelSource(BaseModel):
    """Where the weights came from, so that a missing export can be rebuilt offline."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: "test-model" (built locally), "package" (a checkpoint shipped by a pip package),
    #: or "hub" (a Hugging Face id; needs network at export time only).
    kind: SourceKind
    #: Hub id, package name, local path, or test-model size ("tiny", "small").
    id: str
    #: Optimum export task the ONNX graph was produced with.
    export_task: str = "text-generation-with-past"


class Manifest(BaseModel):
    """One local model; paths are relative to the manifest's directory."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    task: Task
    #: The ONNX graph (relative to the model directory).
    onnx: str = "model.onnx"
    #: A Hugging Face ``tokenizer.json`` (relative to the model directory).
    tokenizer: str = "tokenizer.json"
    #: Jinja2 chat template (chat models); None means the plain fallback template.
    chat_template: str | None = None
    #: Largest prompt + completion length, in tokens.
    context_length: int = Field(2048, gt=0)
    #: "none", or "int8" for a dynamically quantized graph.
    quantization: Literal["none", "int8"] = "none"
    #: Preferred ONNX Runtime execution providers, in order; the config may override.
    execution_providers: tuple[str, ...] = ("CUDAExecutionProvider", "CPUExecutionProvider")
    #: Internal price per 1k tokens (prompt and completion), for cost reports.
    price_per_1k_tokens: float = Field(0.0, ge=0)
    #: Embedding models: vector dimension and pooling.
    dimensions: int | None = Field(None, gt=0)
    pooling: Literal["mean", "cls"] = "mean"
    #: Token strings that end generation besides the tokenizer's EOS (e.g. "<|im_end|>").
    stop_tokens: tuple[str, ...] = ()
    #: Token prepended to every prompt (e.g. "<s>"); None for none.
    bos_token: str | None = None
    source: ModelSource | None = None
    description: str = ""

    def onnx_path(self, model_dir: Path) -> Path:
        return model_dir / self.onnx

    def tokenizer_path(self, model_dir: Path) -> Path:
        return model_dir / self.tokenizer


def load_manifest(model_dir: Path) -> Manifest:
    """Read and validate ``model_dir/model.yaml``; raise ConfigError naming the file."""
    path = model_dir / MANIFEST_NAME
    try:
        raw = yaml.safe_load(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no model manifest at {path}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"model manifest {path} is not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"model manifest {path} must be a mapping")
    raw.setdefault("name", model_dir.name)
    try:
        return Manifest.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in e.errors()
        )
        raise ConfigError(f"invalid model manifest {path}: {problems}") from None


def write_manifest(model_dir: Path, manifest: Manifest) -> Path:
    path = model_dir / MANIFEST_NAME
    data = manifest.model_dump(mode="json", exclude_defaults=False)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), "utf-8")
    return path


def is_complete(model_dir: Path) -> bool:
    """True when the manifest parses and the files it names exist."""
    try:
        m = load_manifest(model_dir)
    except ConfigError:
        return False
    return m.onnx_path(model_dir).is_file() and m.tokenizer_path(model_dir).is_file()


def discover(models_dir: Path) -> dict[str, Path]:
    """Every sub-directory of ``models_dir`` holding a manifest, by model name."""
    if not models_dir.is_dir():
        return {}
    return {
        p.parent.name: p.parent for p in sorted(models_dir.glob(f"*/{MANIFEST_NAME}"))
    }
