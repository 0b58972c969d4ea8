"""What PII analysis finds: plain frozen values, importable without Presidio.

The server process reads findings (redaction, output screening, audit facts) but never
analyses text itself: the analyzer runs in the pool's worker processes. Keeping the type
here, away from :mod:`appliance.pii.engine`, keeps Presidio, spaCy and the torch they pull
in (several hundred MB) out of the server process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Finding:
    """One entity found in one text: where, what type, how sure, and by which recognizer."""

    entity_type: str
    start: int
    end: int
    score: float
    recognizer: str
    #: Special categories (GDPR Art. 9, :mod:`appliance.pii.special`): the index, in the
    #: same text's findings, of the PERSON finding the fact concerns; None when the text
    #: names nobody it could concern. An index, never the name.
    person: int | None = None


class SpecialCategories(Protocol):
    """A second layer over the identifier findings: sensitive facts about the persons
    found (:class:`appliance.pii.special.detector.SpecialCategoryDetector`)."""

    def findings(
        self, text: str, language: str, identifiers: Sequence[Finding]
    ) -> list[Finding]: ...
