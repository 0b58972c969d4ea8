"""German -> English glossing, so the English-centric embedding model and the English
rules can read German requests (see ``data/glossary_de.yaml``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from appliance.errors import ConfigError
from appliance.risk.taxonomy import read_yaml

_WORD = re.compile(r"[\wäöüÄÖÜß]+", re.UNICODE)
#: Stems shorter than this are not matched inside a word ("gas" in "Vorgaben").
_MIN_INNER = 4


@dataclass(frozen=True, slots=True)
class Glossary:
    stems: tuple[tuple[str, str], ...]  # longest stem first
    stopwords: frozenset[str]

    def gloss(self, text: str) -> str:
        """The text with glossed words in English and German function words dropped."""
        return self.gloss_with_coverage(text)[0]

    def gloss_with_coverage(self, text: str) -> tuple[str, float]:
        """The gloss, and the share of content words the glossary knew: a gloss of mostly
        unknown German words means little to the embedding model."""
        out: list[str] = []
        known = total = 0
        for m in _WORD.finditer(text):
            word = m.group(0)
            low = word.lower()
            if low in self.stopwords:
                continue
            total += 1
            found = self._lookup(low)
            known += bool(found)
            out.extend(found or [word])
        return " ".join(out), (known / total if total else 0.0)

    def _lookup(self, low: str) -> list[str]:
        """Glosses of the word's start and of its longest inner stem: German compounds put
        the meaning in the last part ("Gemeinderatswahl": municipality *election*)."""
        found: list[str] = []
        head = next((e for s, e in self.stems if low.startswith(s)), None)
        if head is not None:
            found.append(head)
        inner = next(
            (
                e
                for s, e in self.stems
                if len(s) >= _MIN_INNER and s in low[1:] and not low.startswith(s)
            ),
            None,
        )
        if inner is not None and inner not in found:
            found.append(inner)
        return found


def load_glossary(path: Path | None = None) -> Glossary:
    raw, source = read_yaml(path, "glossary_de.yaml")
    stems = raw.get("stems") if isinstance(raw, dict) else None
    if not isinstance(stems, dict):
        raise ConfigError(f"{source}: a 'stems' mapping is required")
    pairs = sorted(((str(k).lower(), str(v)) for k, v in stems.items()), key=lambda p: -len(p[0]))
    stop = frozenset(str(w).lower() for w in raw.get("stopwords") or ())
    return Glossary(tuple(pairs), stop)
