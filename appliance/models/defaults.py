"""Make the configured local models exist before the server starts.

For every model of a ``local`` provider whose directory is missing or incomplete, a
built-in recipe (``local-chat``, ``local-embed``) builds it offline, with log lines that
say what is happening and how long it took. Models without a recipe are reported, not
invented: the operator exports them with ``appliance models export``.
"""

from __future__ import annotations

import logging
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
        ensure_builtin(upstream, models_dir, progress=log.info)
        log.info("local model %s ready in %.1f s", upstream, time.perf_counter() - started)
