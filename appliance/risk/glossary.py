"""German -> English glossing, so the English-centric embedding model and the English
rules can read German requests (see ``data/glossary_de.yaml``)."""

from __future__ import annotations

import re
from pathlib import Path

from appliance.errors import ConfigError
from appliance.risk.taxonomy import read_yaml

_WORD = re.compile(r"[\wäöüÄÖÜß]+", re.UNICODE)
#: Stems shorter than this are not matched inside a word ("gas" in "Vorgaben").
_MIN_INNER = 4


class Glossary:
    """Stems and stop words; word lookups are memoised (a bounded, append-only cache)."""

    def __init__(self, stems: dict[str, str], stopwords: frozenset[str]) -> None:
        self._table = dict(stems)
        self._longest = max((len(k) for k in stems), default=0)
        self.stopwords = stopwords
        self._memo: dict[str, list[str]] = {}

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
        hit = self._memo.get(low)
        if hit is not None:
            return hit
        table = self._table
        found: list[str] = []
        # the longest stem the word starts with
        for end in range(min(len(low), self._longest), 1, -1):
            head = table.get(low[:end])
            if head is not None:
                found.append(head)
                break
        # the longest stem inside the word (not at its start)
        best: tuple[int, str] | None = None
        for i in range(1, len(low) - _MIN_INNER + 1):
            for end in range(min(len(low), i + self._longest), i + _MIN_INNER - 1, -1):
                inner = table.get(low[i:end])
                if inner is not None:
                    if best is None or end - i > best[0]:
                        best = (end - i, inner)
                    break
        if best is not None and best[1] not in found:
            found.append(best[1])
        if len(self._memo) < 100_000:
            self._memo[low] = found
        return found


def load_glossary(path: Path | None = None) -> Glossary:
    raw, source = read_yaml(path, "glossary_de.yaml")
    stems = raw.get("stems") if isinstance(raw, dict) else None
    if not isinstance(stems, dict):
        raise ConfigError(f"{source}: a 'stems' mapping is required")
    table = {str(k).lower(): str(v) for k, v in stems.items()}
    stop = frozenset(str(w).lower() for w in raw.get("stopwords") or ())
    return Glossary(table, stop)
