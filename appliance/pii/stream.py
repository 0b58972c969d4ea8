"""Streaming helpers: restore placeholders and screen PII with a bounded hold-back.

A stream is never buffered whole. The restorer holds back only a tail that could still
become a placeholder (at most the longest placeholder minus one character); the
screener holds back the longest entity it must be able to see whole
(``pii.stream_entity_chars``) and analyses the text in steps, so an entity or a
placeholder split across chunks is still caught.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from appliance.pii.findings import Finding
from appliance.pii.vault import PLACEHOLDER, Vault

_PEM_BEGIN = "-----BEGIN"
_PEM_END = "-----END"
#: Upper bound on holding an unterminated PEM block (a key is ~1.7-3.3 kB).
_PEM_MAX = 8192


class PlaceholderRestorer:
    """Feed fragments, get restored text back; call :meth:`flush` at the end."""

    def __init__(self, vault: Vault, *, escape_json: bool = False) -> None:
        self._vault = vault
        self._escape_json = escape_json
        self._pending = ""

    @property
    def pending(self) -> str:
        return self._pending

    def feed(self, fragment: str) -> str:
        text = self._pending + fragment
        cut = len(text)
        i = text.rfind("<")
        if i != -1 and self._vault.could_start_placeholder(text[i:]):
            cut = i
        self._pending = text[cut:]
        return self._vault.restore(text[:cut], escape_json=self._escape_json)

    def flush(self) -> str:
        text, self._pending = self._pending, ""
        return self._vault.restore(text, escape_json=self._escape_json)


Analyze = Callable[[str], Awaitable[Sequence[Finding]]]
Transform = Callable[[str, Sequence[Finding]], str]


class StreamScreener:
    """Screens model-produced PII in a stream: analyse, release all but the tail.

    At most ``hold + step`` characters wait at any time; every release keeps the last
    ``hold`` characters (moved back to a word boundary, and to the start of any
    entity or placeholder crossing the cut) for the next analysis.
    """

    def __init__(self, analyze: Analyze, transform: Transform, hold: int, step: int) -> None:
        self._analyze = analyze
        self._transform = transform
        self._hold = hold
        self._step = max(1, step)
        self._buf = ""

    async def feed(self, fragment: str) -> str:
        self._buf += fragment
        if len(self._buf) < self._hold + self._step:
            return ""
        return await self._release(final=False)

    async def flush(self) -> str:
        if not self._buf:
            return ""
        return await self._release(final=True)

    async def _release(self, final: bool) -> str:
        buf = self._buf
        findings = list(await self._analyze(buf)) if buf.strip() else []
        spans = [(f.start, f.end) for f in findings]
        spans += [m.span() for m in PLACEHOLDER.finditer(buf)]
        if final:
            cut = len(buf)
        else:
            cut = len(buf) - self._hold
            ws = max(buf.rfind(" ", 0, cut), buf.rfind("\n", 0, cut))
            if ws > 0:
                cut = ws + 1
            for start, end in sorted(spans):
                if start < cut < end:
                    cut = start
            pem = buf.rfind(_PEM_BEGIN, 0, cut)
            if pem != -1 and buf.find(_PEM_END, pem) == -1 and len(buf) - pem < _PEM_MAX:
                cut = pem
        released = [f for f in findings if f.end <= cut]
        self._buf = buf[cut:]
        return self._transform(buf[:cut], released)
