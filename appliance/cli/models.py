"""CLI: ``appliance models list | prepare | export | quantize | build-test-model``.

Model directories live under the local provider's ``models_dir`` (by default
``<data_dir>/models``). Long steps print progress lines to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from appliance.config import Config, LocalProviderConfig, load_config
from appliance.errors import ConfigError


def _state_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=None, help="TOML config file")
    p.add_argument("--data-dir", type=Path, default=None, help="data directory")
    p.add_argument("--provider", default="local", help="local provider whose models_dir to use")


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _models_dir(args: argparse.Namespace) -> tuple[Config, Path]:
    from appliance.models.defaults import local_models_dir

    config = load_config(args.config, data_dir=args.data_dir)
    if not isinstance(config.providers.get(args.provider), LocalProviderConfig):
        raise ConfigError(f"providers.{args.provider} is not a local provider")
    return config, local_models_dir(config, args.provider)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    models = sub.add_parser("models", help="local ONNX models: list, prepare, export, quantize, build")
    msub = models.add_subparsers(dest="models_command", required=True)

    ls = msub.add_parser("list", help="every local model: task, where it runs, size, loads OK")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.add_argument("--no-load", action="store_true", help="do not try loading each model")
    _state_args(ls)
    ls.set_defaults(func=cmd_list)

    pr = msub.add_parser("prepare", help="build every model the configuration needs now, "
                                         "not on first start (offline)")
    _state_args(pr)
    pr.set_defaults(func=cmd_prepare)

    ex = msub.add_parser("export", help="export a Hugging Face model to ONNX with Optimum")
    ex.add_argument("source", help="hub id (needs network) or a local checkpoint directory")
    ex.add_argument("--task", required=True, choices=["chat", "completion", "embedding",
                                                       "classification"])
    ex.add_argument("--out", type=Path, default=None, help="model directory (default: models_dir/NAME)")
    ex.add_argument("--name", default=None, help="model name (default: last part of source)")
    ex.add_argument("--price-per-1k", type=float, default=0.0, help="internal price per 1k tokens")
    _state_args(ex)
    ex.set_defaults(func=cmd_export)

    q = msub.add_parser("quantize", help="write a dynamically quantized copy of a model")
    q.add_argument("name", help="model name under models_dir, or a model directory")
    q.add_argument("--int8", action="store_true", required=True, help="int8 dynamic quantization")
    q.add_argument("--out", type=Path, default=None, help="default: models_dir/NAME-int8")
    _state_args(q)
    q.set_defaults(func=cmd_quantize)

    b = msub.add_parser("build-test-model",
                        help="build a random-weight Llama chat model offline (seconds)")
    b.add_argument("--out", type=Path, default=None, help="default: models_dir/local-chat")
    b.add_argument("--size", choices=["tiny", "small"], default="tiny")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--force", action="store_true", help="replace an existing directory")
    _state_args(b)
    b.set_defaults(func=cmd_build_test_model)


def _describe(model_dir: Path, load: bool, execution_providers: tuple[str, ...]) -> dict[str, Any]:
    from appliance.models.export import size_mb
    from appliance.models.manifest import load_manifest

    row: dict[str, Any] = {"name": model_dir.name, "path": str(model_dir)}
    try:
        m = load_manifest(model_dir)
    except ConfigError as e:
        return {**row, "loads": False, "error": str(e)}
    row.update(task=m.task, quantization=m.quantization, context_length=m.context_length,
               size_mb=round(size_mb(model_dir), 1), price_per_1k_tokens=m.price_per_1k_tokens)
    if not m.onnx_path(model_dir).is_file():
        return {**row, "loads": False, "error": f"missing {m.onnx}"}
    if not load:
        return {**row, "loads": None, "runs_on": None}
    try:
        from appliance.providers.local.sessions import create_session

        eps = [p for p in m.execution_providers if p in execution_providers] or list(
            execution_providers
        )
        session = create_session(m.onnx_path(model_dir), eps, label=m.name)
        runs_on = session.get_providers()[0].removesuffix("ExecutionProvider")
        return {**row, "loads": True, "runs_on": runs_on}
    except Exception as e:  # noqa: BLE001 -- a broken file must not hide the others
        return {**row, "loads": False, "error": f"{type(e).__name__}: {e}"[:200]}


def cmd_list(args: argparse.Namespace) -> int:
    from appliance.models.manifest import discover

    config, models_dir = _models_dir(args)
    provider = config.providers[args.provider]
    assert isinstance(provider, LocalProviderConfig)
    found = discover(models_dir)
    configured = {config.upstream_name(n): n for n, s in config.models.items()
                  if s.provider == args.provider}
    rows = [_describe(path, not args.no_load, provider.execution_providers)
            for path in found.values()]
    for upstream in configured:
        if upstream not in found:
            rows.append({"name": upstream, "path": str(models_dir / upstream), "loads": False,
                         "error": "not built (starts build on `serve`)"})
    for row in rows:
        row["configured_as"] = configured.get(row["name"])
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"models in {models_dir}")
    header = f"{'NAME':<20}{'TASK':<11}{'QUANT':<6}{'SIZE MB':>9}  {'RUNS ON':<8}{'LOADS':<6}"
    print(header)
    for r in rows:
        loads = {True: "ok", False: "NO", None: "-"}[r.get("loads")]
        print(f"{r['name']:<20}{r.get('task', '?'):<11}{r.get('quantization', '?'):<6}"
              f"{r.get('size_mb', 0):>9.1f}  {r.get('runs_on') or '-':<8}{loads:<6}"
              + (f" {r['error']}" if r.get("error") else ""))
    return 0 if all(r.get("loads") is not False for r in rows) else 1


def cmd_prepare(args: argparse.Namespace) -> int:
    """Build what is missing (concurrently, with progress), then say where each model is."""
    import logging

    from appliance.first_start import prepare, steps
    from appliance.progress import BuildProgress

    # Off a terminal the progress comes as log lines; an operator running this wants them
    # (the command line's logging default is WARNING).
    logging.getLogger("appliance.progress").setLevel(logging.INFO)
    config = load_config(args.config, data_dir=args.data_dir)
    with BuildProgress() as progress:
        built = {s.name for s in prepare(config, progress)}
    for step in steps(config):
        note = "built now" if step.name in built else "built before"
        _progress(f"{step.name} ({step.purpose}): ready at {step.target} ({note})")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from appliance.models.build_cache import build_once
    from appliance.models.export import export_onnx
    from appliance.models.manifest import SourceKind

    _, models_dir = _models_dir(args)
    name = args.name or Path(args.source.rstrip("/")).name
    out: Path = args.out or models_dir / name
    if out.exists():
        print(f"error: {out} exists; remove it or choose --out", file=sys.stderr)
        return 1
    source_kind: SourceKind = "path" if Path(args.source).is_dir() else "hub"
    build_once(out, lambda tmp: export_onnx(
        args.source, tmp, task=args.task, name=name, source_kind=source_kind,
        price_per_1k_tokens=args.price_per_1k, progress=_progress,
    ))
    _progress(f"done: {out}")
    return 0


def cmd_quantize(args: argparse.Namespace) -> int:
    from appliance.models.build_cache import build_once
    from appliance.models.quantize import quantize_int8

    _, models_dir = _models_dir(args)
    src = Path(args.name) if Path(args.name).is_dir() else models_dir / args.name
    if not (src / "model.yaml").is_file():
        print(f"error: no model.yaml in {src}", file=sys.stderr)
        return 1
    out: Path = args.out or src.parent / f"{src.name}-int8"
    if out.exists():
        print(f"error: {out} exists; remove it or choose --out", file=sys.stderr)
        return 1
    build_once(out, lambda tmp: quantize_int8(src, tmp, name=out.name, progress=_progress))
    _progress(f"done: {out}")
    return 0


def cmd_build_test_model(args: argparse.Namespace) -> int:
    import shutil

    from appliance.models.build_cache import build_once
    from appliance.models.builtin import CHAT_MODEL
    from appliance.models.test_model import build_test_model

    _, models_dir = _models_dir(args)
    out: Path = args.out or models_dir / CHAT_MODEL
    if out.exists():
        if not args.force:
            print(f"error: {out} exists; use --force to replace it", file=sys.stderr)
            return 1
        shutil.rmtree(out)
    started = time.perf_counter()
    build_once(out, lambda tmp: build_test_model(
        tmp, size=args.size, name=out.name, seed=args.seed, progress=_progress
    ))
    _progress(f"done in {time.perf_counter() - started:.1f} s: {out}")
    return 0
