"""Local models on ONNX Runtime (see :mod:`appliance.providers.local.provider`)."""

from __future__ import annotations

from typing import Any

from appliance.config import LocalProviderConfig
from appliance.providers.local.provider import LocalProvider


def create(name: str, config: LocalProviderConfig, http: Any = None) -> LocalProvider:
    """Provider factory (registry entry ``local``); ``http`` is unused: nothing goes out.

    ``config.models_dir`` should already be resolved against the data directory
    (``Config.resolve``); a relative path is taken from the working directory.
    """
    return LocalProvider(name, config)


__all__ = ["LocalProvider", "create"]
