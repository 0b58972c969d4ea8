"""How the appliance starts its own Python child processes: on the parent's own package.

``python -m appliance.x`` puts the working directory first on ``sys.path``, so a child
started from a directory that holds another ``appliance`` package (a checkout that has
moved on since ``pip install .``) would run other code than its parent: a server of one
version with PII workers of another. Children start with ``-P`` (Python 3.11+: no such
entry) and the directory the parent's package was imported from first on PYTHONPATH.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

import appliance


def module_command(module: str, *args: str) -> list[str]:
    """The command that runs ``module`` of this package in a child interpreter."""
    return [sys.executable, "-P", "-m", module, *args]


def child_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with this package's parent first
    on PYTHONPATH."""
    env = dict(os.environ if base is None else base)
    root = str(Path(appliance.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    return env
