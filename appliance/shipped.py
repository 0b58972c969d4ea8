"""Folders shipped with the appliance that live at the top of the repository, where
auditors read them: ``policies/`` and ``audit/``.

Running from a clone they are the clone's folders (the working directory's, then the
source tree's of an editable install), so an edit there takes effect; otherwise the copies
a wheel installs under ``<prefix>/share/appliance/`` (``[tool.setuptools.data-files]``).
"""

from __future__ import annotations

import sys
from pathlib import Path


def shipped(name: str) -> Path:
    """The shipped folder ``name`` ("policies" or "audit")."""
    for candidate in (Path.cwd() / name, Path(__file__).resolve().parents[1] / name):
        if (candidate / ".appliance").is_file():
            return candidate
    return Path(sys.prefix) / "share" / "appliance" / name
