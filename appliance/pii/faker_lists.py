"""Word lists of Faker's locale providers, read without importing Presidio.

The German tagger's build reads these lists in a child process that must start fast;
importing them through :mod:`appliance.pii.gazetteer` would pull in Presidio (and its
optional transformers engine), seconds of imports the build never uses.
"""

from __future__ import annotations

import importlib
from typing import Any


def faker_names(module: str, attr: str) -> tuple[str, ...]:
    """A word list of a Faker provider module (``()`` if the locale is missing)."""
    try:
        provider = importlib.import_module(module).Provider
    except ImportError:
        return ()
    value: Any = getattr(provider, attr, ())
    return tuple(value.keys()) if isinstance(value, dict) else tuple(value or ())
