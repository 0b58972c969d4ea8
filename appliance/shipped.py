"""Folders shipped with the appliance that live at the top of the repository, where
auditors read them: ``policies/`` and ``audit/``.

Running from a clone (or an editable install) they are the source tree's folders; a
wheel installs copies under ``<prefix>/share/appliance/`` (``[tool.setuptools.data-files]``).
"""

from __future__ import annotations

import sys
from pathlib import Path


def shipped(name: str) -> Path:
    """The shipped folder ``name`` ("policies" or "audit")."""
    in_tree = Path(__file__).resolve().parents[1] / name
    if in_tree.is_dir():
        return in_tree
    return Path(sys.prefix) / "share" / "appliance" / name
