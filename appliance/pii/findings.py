"""What PII analysis finds: plain frozen values, importable without Presidio.

The server process reads findings (redaction, output screening, audit facts) but never
analyses text itself: the analyzer runs in the pool's worker processes. Keeping the type
here, away from :mod:`appliance.pii.engine`, keeps Presidio, spaCy and the torch they pull
in (several hundred MB) out of the server process.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Finding:
    """One entity found in one text: where, what type, how sure, and by which recognizer."""

    entity_type: str
    start: int
    end: int
    score: float
    recognizer: str
