"""The analyzer's revision: one digest that changes whenever its findings could.

Cached findings (:mod:`appliance.pii.cache`) are keyed by it, so it covers everything a
finding depends on: the ``[pii]`` configuration, the code and data files of
:mod:`appliance.pii` (recognizers, gazetteer rules, the German tagger's features), the
versions of the libraries and models that analyse (Presidio, spaCy and the English
pipeline, phonenumbers, the word lists) and the bytes of the German tagger's model.
The analyzer template computes it after loading (:mod:`appliance.pii.worker`), from
the files it actually loaded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from appliance.config.pii import PiiConfig

_PACKAGE = Path(__file__).resolve().parent
#: Distributions whose code or data shapes findings.
_DISTRIBUTIONS = (
    "presidio-analyzer", "spacy", "thinc", "numpy", "onnxruntime", "phonenumbers", "faker",
    "wordfreq", "tldextract", "german-nouns", "zufallsworte",
)


def analyzer_revision(config: PiiConfig, model_files: Iterable[Path] = ()) -> str:
    """A hex digest of the configuration, the package's files, library versions and
    ``model_files`` (the German tagger's weights and vocabulary)."""
    h = hashlib.sha256()
    h.update(config.model_dump_json().encode())
    for dist in (*_DISTRIBUTIONS, config.spacy_model_en):
        h.update(f"{dist}={_version(dist)};".encode())
    for path in sorted(p for p in _PACKAGE.rglob("*") if p.is_file() and _counts(p)):
        h.update(path.relative_to(_PACKAGE).as_posix().encode())
        h.update(path.read_bytes())
    for path in model_files:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:24]


def _counts(path: Path) -> bool:
    return "__pycache__" not in path.parts and path.suffix not in {".pyc", ".pyo"}


def _version(dist: str) -> str:
    for name in (dist, dist.replace("_", "-")):
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return "-"
