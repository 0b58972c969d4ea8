"""The hand-written German held-out set in the registers users write (data/de_registers_heldout.txt).

Mail, HR notes, support tickets, chat messages, CVs and letters, written by hand for
evaluation only and frozen before any tuning (a test pins the file's hash): not text of
the generator the tagger learns from. This module only parses its markup; see the
file's header for the annotation rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

FILE = Path(__file__).resolve().parent / "data" / "de_registers_heldout.txt"
REGISTERS = ("mail", "hr", "ticket", "chat", "cv", "letter")
_MARK = re.compile(r"\{([A-Z]+):([^{}]+)\}")


@dataclass(frozen=True)
class Marked:
    register: str
    text: str
    #: (start, end, class) character spans, classes as marked (PER, LOC, ID, ...).
    spans: tuple[tuple[int, int, str], ...]


def parse(body: str) -> list[Marked]:
    """Samples of the file: header comments dropped, markup removed, spans kept."""
    out = []
    lines = [line for line in body.splitlines() if not line.startswith("#")]
    for block in "\n".join(lines).split("\n===\n"):
        head, _, rest = block.strip("\n").partition("\n")
        if not head.startswith("@ ") or head[2:] not in REGISTERS:
            raise ValueError(f"sample without a known register: {head!r}")
        text, spans, pos = "", [], 0
        for m in _MARK.finditer(rest):
            text += rest[pos:m.start()]
            spans.append((len(text), len(text) + len(m.group(2)), m.group(1)))
            text += m.group(2)
            pos = m.end()
        text += rest[pos:]
        if "{" in text or "}" in text:
            raise ValueError(f"unbalanced markup in {text!r}")
        out.append(Marked(head[2:], text, tuple(spans)))
    return out


def load(path: Path = FILE) -> list[Marked]:
    return parse(path.read_text("utf-8"))
