"""Checks of what runs in the server process: local models, ONNX Runtime, the PII engine."""

from __future__ import annotations

import tempfile
from pathlib import Path

from appliance.config import Config, LocalProviderConfig
from appliance.doctor.outcome import Outcome, Setup, fail, ok, warn


def _local_models(config: Config) -> dict[str, tuple[LocalProviderConfig, Path]]:
    """Every configured model served by a local provider: name -> (provider, model dir)."""
    out = {}
    for name, spec in config.models.items():
        provider = config.providers.get(spec.provider)
        if isinstance(provider, LocalProviderConfig):
            out[name] = (provider, config.resolve(provider.models_dir) / config.upstream_name(name))
    return out


def check_models(setup: Setup) -> Outcome:
    from appliance.models.builtin import BUILTIN_BUILDERS
    from appliance.models.manifest import is_complete

    models = _local_models(setup.config)
    if not models:
        return ok("no local models configured")
    present, to_build, missing = [], [], []
    for name, (provider, model_dir) in sorted(models.items()):
        if is_complete(model_dir):
            present.append(name)
        elif model_dir.name in BUILTIN_BUILDERS and provider.build_missing:
            to_build.append(name)
        else:
            missing.append(f"{name} ({model_dir})")
    summary = f"present: {', '.join(present) or 'none'}"
    if missing:
        return fail(f"missing and not buildable: {'; '.join(missing)}; {summary}",
                    "appliance models export HF_ID --task TASK --out DIR, or drop the model from the config")
    if to_build:
        return warn(f"{summary}; built offline at first start: {', '.join(to_build)}",
                    "start the server once before going live (the build takes about a minute)")
    return ok(summary)


def _probe_graph(directory: Path) -> Path:
    """A one-node ONNX graph (Identity): enough to see which execution provider takes it."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "probe", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = directory / "probe.onnx"
    onnx.save(model, str(path))
    return path


def check_onnxruntime(setup: Setup) -> Outcome:
    """Which execution provider really runs: only a created session tells (GPU builds
    list CUDA as available on hosts without a GPU and fall back silently)."""
    from appliance.models.manifest import is_complete, load_manifest
    from appliance.providers.local.runtime_check import installed_builds, onnxruntime_install_problem

    problem = onnxruntime_install_problem()
    if problem is not None:
        return fail(problem)
    import onnxruntime as ort

    from appliance.providers.local.sessions import create_session

    local = [p for p in setup.config.providers.values() if isinstance(p, LocalProviderConfig)]
    wanted = local[0].execution_providers if local else ("CPUExecutionProvider",)
    build = next(iter(installed_builds()))
    with tempfile.TemporaryDirectory(prefix="appliance-doctor-") as tmp:
        real = [d for _, d in _local_models(setup.config).values() if is_complete(d)]
        onnx_path = load_manifest(real[0]).onnx_path(real[0]) if real else _probe_graph(Path(tmp))
        running = create_session(onnx_path, wanted, label="doctor").get_providers()
    what = (f"{build} {ort.__version__}: a session on {'model ' + real[0].name if real else 'a probe graph'} "
            f"runs on {running[0]} (available: {', '.join(ort.get_available_providers())})")
    if running[0] == wanted[0]:
        return ok(what)
    if build == "onnxruntime-gpu" and wanted[0] == "CUDAExecutionProvider":
        return warn(what + "; CUDA is not usable",
                    "check the NVIDIA driver and the CUDA/cuDNN libraries onnxruntime-gpu needs (nvidia-smi)")
    return ok(what + f"; {wanted[0]} needs another build (appliance[gpu] on CUDA hosts)")


#: Synthetic texts (example.com addresses, no real person) each language must find PII in.
_PII_SAMPLES = {
    "en": "Please send the invoice to jane.doe@example.com by Friday.",
    "de": "Bitte schicken Sie die Rechnung bis Freitag an max.mustermann@example.com.",
}


def check_pii(setup: Setup) -> Outcome:
    from appliance.pii.engine import analyze_texts, build_analyzer

    config = setup.config
    if not config.pipeline.redact:
        return warn("[pipeline] redact = false: prompts go upstream without PII detection",
                    "set [pipeline] redact = true")
    languages = list(config.pii.languages)
    try:
        analyzer = build_analyzer(config.pii)
    except (OSError, ImportError, ValueError) as e:
        return fail(f"the PII engine does not load ({type(e).__name__}: {str(e)[:200]})",
                    f"pip install the spaCy pipeline {config.pii.spacy_model_en} (see DEPENDENCIES)")
    blind = []
    for lang in languages:
        sample = _PII_SAMPLES.get(lang)
        if sample is None:
            continue
        (found,) = analyze_texts(analyzer, [sample], [lang])
        if not any(f.entity_type == "EMAIL_ADDRESS" for f in found):
            blind.append(lang)
    if blind:
        return fail(f"the PII engine loads but finds no e-mail address in a {', '.join(blind)} sample",
                    "check [pii] recognizers and score_threshold")
    recognizers = len(list(analyzer.registry.recognizers))
    return ok(f"Presidio loads for {', '.join(languages)} ({recognizers} recognizers, "
              f"English NER {config.pii.spacy_model_en}); a sample per language is detected")
