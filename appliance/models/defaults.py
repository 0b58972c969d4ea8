"""Make the configured local models exist before the server starts.

For every model of a ``local`` provider whose directory is missing or incomplete, a
built-in recipe (``local-chat``, ``local-embed``) builds it offline, with log lines that
say what is happening and how long it took. Models without a recipe are reported, not
invented: the operator exports them with ``appliance models export``.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from pathlib import Path

from appliance.config import Config, LocalProviderConfig
from appliance.models.builtin import BUILTIN_BUILDERS, ensure_builtin
from appliance.models.manifest import is_complete

log = logging.getLogger(__name__)


def local_models_dir(config: Config, provider: str) -> Path:
    """The provider's models_dir, resolved like every data path (under storage.data_dir)."""
    cfg = config.providers[provider]
    if not isinstance(cfg, LocalProviderConfig):
        raise TypeError(f"provider {provider!r} is not a local provider")
    return config.resolve(cfg.models_dir)


def ensure_default_models(config: Config) -> None:
    """Build the missing built-in local models (blocking; minutes at most, usually seconds)."""
    for name, spec in config.models.items():
        cfg = config.providers.get(spec.provider)
        if not isinstance(cfg, LocalProviderConfig):
            continue
        upstream = config.upstream_name(name)
        models_dir = local_models_dir(config, spec.provider)
        if is_complete(models_dir / upstream):
            continue
        if upstream not in BUILTIN_BUILDERS or not cfg.build_missing:
            log.warning(
                "local model %s is missing under %s; export it with "
                "`appliance models export HF_ID --task %s --out %s`",
                name, models_dir, spec.task, models_dir / upstream,
            )
            continue
        started = time.perf_counter()
        log.info("building local model %s under %s (offline, first start only) ...",
                 upstream, models_dir)
        _build_in_child(upstream, models_dir)
        log.info("local model %s ready in %.1f s", upstream, time.perf_counter() - started)


def _build_in_child(name: str, models_dir: Path) -> None:
    """Build in a fresh process: the server never imports torch, and forks stay clean."""
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=_child_main, args=(name, str(models_dir)), name=f"build-{name}")
    proc.start()
    proc.join()
    if proc.exitcode != 0 or not is_complete(models_dir / name):
        raise RuntimeError(f"building local model {name} failed (exit code {proc.exitcode})")


def _child_main(name: str, models_dir: str) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ensure_builtin(name, Path(models_dir), progress=logging.getLogger(__name__).info)
