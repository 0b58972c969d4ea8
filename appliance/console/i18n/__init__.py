"""The console's words in English and German, one YAML catalogue per language.

Templates call ``t("key", name=value)``; a key missing in a language falls back to
English (a test keeps both catalogues' keys equal, so that never happens in a release).
Numbers and dates are formatted per language (``1,234.5`` / ``1.234,5``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

LANGUAGES = ("en", "de")


@cache
def catalogue(language: str) -> Mapping[str, str]:
    text = resources.files("appliance.console.i18n").joinpath(f"{language}.yaml").read_text("utf-8")
    raw = yaml.safe_load(text) or {}
    out: dict[str, str] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            out[prefix] = str(node)

    walk("", raw)
    return out


@dataclass(frozen=True)
class Translator:
    language: str

    def __call__(self, msgid: str, /, **values: Any) -> str:
        text = catalogue(self.language).get(msgid) or catalogue("en").get(msgid) or msgid
        return text.format(**values) if values else text

    def number(self, value: float | int | None, digits: int = 0) -> str:
        if value is None:
            return "–"
        text = f"{value:,.{digits}f}"
        if self.language == "de":
            text = text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
        return text

    def money(self, value: float | None) -> str:
        if value is None:
            return "–"
        return ("$" + self.number(value, 4)) if self.language == "en" else (self.number(value, 4) + " $")

    def when(self, value: str | dt.datetime | None) -> str:
        """An ISO time (UTC) as people of the language write it."""
        if value is None:
            return "–"
        t = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        if self.language == "de":
            return t.strftime("%d.%m.%Y %H:%M:%S") + " UTC"
        return t.strftime("%Y-%m-%d %H:%M:%S") + " UTC"


def pick_language(*candidates: str | None) -> str:
    for c in candidates:
        if c in LANGUAGES:
            return c
    return "en"
