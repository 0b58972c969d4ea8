"""Make the configured local models exist before the server starts.

For every model of a ``local`` provider whose directory is missing or incomplete, a
built-in recipe (``local-chat``, ``local-embed``) builds it offline, in a child process
(the server never imports torch). Models without a recipe are reported, not invented:
the operator exports them with ``appliance models export``. ``serve`` builds these
together with the other first-start models (:mod:`appliance.first_start`); this
module's :func:`ensure_default_models` builds only these, one after the other.
"""

from __future__ import annotations

import logging
from pathlib import Path

from appliance.config import Config, LocalProviderConfig
from appliance.progress import log_report

log = logging.getLogger(__name__)


def local_models_dir(config: Config, provider: str) -> Path:
    """The provider's models_dir, resolved like every data path (under storage.data_dir)."""
    cfg = config.providers[provider]
    if not isinstance(cfg, LocalProviderConfig):
        raise TypeError(f"provider {provider!r} is not a local provider")
    return config.resolve(cfg.models_dir)


def ensure_default_models(config: Config) -> None:
    """Build the missing built-in local models (blocking; seconds each), logging progress."""
    from appliance.models.prepare import local_model_steps

    for step in local_model_steps(config):
        if not step.ready:
            log.info("building local model %s under %s (offline, first start only) ...",
                     step.name, step.target.parent)
            step.build(log_report(log), 0)
            log.info("local model %s ready", step.name)
