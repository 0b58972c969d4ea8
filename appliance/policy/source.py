"""Reading a policy directory: Rego modules, their tests, and the data files.

A :class:`PolicySource` is an immutable snapshot of the directory's text. Its
``revision`` (a content hash) names the exact policy set that decided a request, so an
auditor can find the files behind any past decision.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from appliance.errors import ApplianceError


class PolicyLoadError(ApplianceError):
    """The policy directory cannot be turned into a working policy set."""

    status = 503
    code = "policy_unavailable"


@dataclass(frozen=True)
class PolicySource:
    root: Path
    #: Rego modules that decide (relative path -> text); ``*_test.rego`` excluded.
    modules: dict[str, str]
    #: ``*_test.rego`` modules (relative path -> text).
    tests: dict[str, str]
    #: ``data/*.yaml|json`` merged into one document (the Rego ``data`` root).
    data: dict[str, Any]
    revision: str


def signature(root: Path) -> tuple[tuple[str, int, int], ...]:
    """Cheap fingerprint (name, mtime, size) of every file that makes up the policy set."""
    out: list[tuple[str, int, int]] = []
    for p in _policy_files(root):
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        out.append((str(p), st.st_mtime_ns, st.st_size))
    return tuple(out)


def _policy_files(root: Path) -> list[Path]:
    files = sorted(root.rglob("*.rego"))
    data_dir = root / "data"
    if data_dir.is_dir():
        files += sorted(
            p for p in data_dir.iterdir() if p.suffix in (".yaml", ".yml", ".json") and p.is_file()
        )
    return files


def deep_merge(base: dict[str, Any], over: dict[str, Any], where: str) -> dict[str, Any]:
    """Merge ``over`` into ``base``; two files setting the same leaf is an error."""
    out = dict(base)
    for key, value in over.items():
        if key in out:
            if isinstance(out[key], dict) and isinstance(value, dict):
                out[key] = deep_merge(out[key], value, f"{where}.{key}")
                continue
            raise PolicyLoadError(f"data key {where}.{key} is set by two data files")
        out[key] = value
    return out


def load_data_file(path: Path) -> dict[str, Any]:
    text = path.read_text("utf-8")
    try:
        loaded = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise PolicyLoadError(f"{path.name}: not valid {path.suffix[1:].upper()}: {e}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise PolicyLoadError(f"{path.name}: the top level must be a mapping")
    return loaded


def load_source(root: Path) -> PolicySource:
    """Read the directory once; raises :class:`PolicyLoadError` on unreadable files."""
    if not root.is_dir():
        raise PolicyLoadError(f"policy directory not found: {root}")
    modules: dict[str, str] = {}
    tests: dict[str, str] = {}
    data: dict[str, Any] = {}
    digest = hashlib.sha256()
    for path in _policy_files(root):
        rel = path.relative_to(root).as_posix()
        raw = path.read_bytes()
        digest.update(rel.encode() + b"\0" + raw + b"\0")
        if path.suffix == ".rego":
            (tests if path.name.endswith("_test.rego") else modules)[rel] = raw.decode("utf-8")
        else:
            data = deep_merge(data, load_data_file(path), "data")
    if not modules:
        raise PolicyLoadError(f"no Rego modules in {root}")
    return PolicySource(root, modules, tests, data, digest.hexdigest()[:12])
