"""Multi-line postal addresses: a run of short lines that look like an address block.

Street, unit, town and postcode often stand on lines of their own (letters, forms,
signatures); no single pattern sees them whole, so this recognizer groups consecutive
short lines without sentence words, at least one of which carries a house number or a
postcode, into one ADDRESS finding.
"""

from __future__ import annotations

import re
from typing import Any

from presidio_analyzer import AnalysisExplanation, EntityRecognizer, RecognizerResult

_NUMBERED = re.compile(r"\b\d{1,6}\b")
_SENTENCE_WORDS = frozenset(
    ["the", "is", "are", "was", "were", "please", "i", "you", "we", "my", "your", "our", "this", "that", "with", "to", "from", "of", "it", "have", "has", "can", "could", "would", "will", "should", "hello", "hi", "thanks", "dear", "regards", "ist", "sind", "bitte", "ich", "sie", "wir", "mein", "meine", "ihr", "ihre", "das", "die", "der", "und", "mit", "vielen", "dank", "hallo", "sehr", "geehrte"]
)
_MAX_LINE = 60
_ADDRESS_LABELS = frozenset({"address", "adresse", "anschrift", "where", "location", "ort", ""})


class AddressBlockRecognizer(EntityRecognizer):
    def __init__(self, language: str) -> None:
        super().__init__(supported_entities=["ADDRESS"], name="AddressBlockRecognizer",
                         supported_language=language)

    def load(self) -> None:
        return None

    def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[RecognizerResult]:
        if "\n" not in text:
            return []
        out: list[RecognizerResult] = []
        run: list[tuple[int, int, bool]] = []
        pos = 0
        for line in text.split("\n") + [""]:
            start, end = pos, pos + len(line)
            pos = end + 1
            label, _, rest = line.partition(":")
            body = rest if _ else line
            if _ and label.strip(" >|?").lower() not in _ADDRESS_LABELS:
                body = ""  # "Name: ...", "Phone: ..." end an address block
            offset = len(line) - len(body)
            stripped = body.strip(" \t|,")
            words = re.findall(r"[^\W\d_]+", stripped.lower())
            looks = (0 < len(stripped) <= _MAX_LINE
                     and sum(c.isdigit() for c in stripped) <= 6
                     and sum(w in _SENTENCE_WORDS for w in words) == 0)
            if looks:
                lead = len(body) - len(body.lstrip(" \t|,"))
                run.append((start + offset + lead, end, bool(_NUMBERED.search(stripped))))
                continue
            if len(run) >= 2 and any(n for _, _, n in run):
                s, e = run[0][0], run[-1][1]
                out.append(RecognizerResult(
                    "ADDRESS", s, e, 0.6,
                    analysis_explanation=AnalysisExplanation("AddressBlockRecognizer", 0.6, textual_explanation="address block"),
                    recognition_metadata={RecognizerResult.RECOGNIZER_NAME_KEY: "AddressBlockRecognizer",
                                          RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id},
                ))
            run = []
        return out
