"""Findings of text seen before, per tenant: a system prompt repeated in every request is
analysed once.

Chat clients resend the whole conversation each turn: the system prompt, the tool
definitions and retrieved documents come back unchanged while only the last user turn
is new. The pool looks each piece it would analyse up here first, by the SHA-256 of the
tenant, the analyzer's revision, the language and the piece's text.

What is kept: that digest and the findings (offsets, types, scores, recognizer names),
never the text or the values. Entries are per tenant (one tenant cannot learn from a
fast answer that another tenant sent a text), each tenant's entries are bounded and
least recently used ones go first, and so do whole tenants beyond ``max_tenants``. The
revision (:mod:`appliance.pii.revision`) changes with the recognizers' code, the models
and the configuration, so a changed analyzer never answers from an old one's findings.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

from appliance.pii.findings import Finding


@dataclass
class CacheStats:
    """Counters since start: look-ups answered, look-ups missed, entries stored."""

    hits: int = 0
    misses: int = 0
    stored: int = 0


class FindingsCache:
    """``get(tenant, key)`` / ``put(tenant, key, findings)``; keys from :meth:`key`."""

    def __init__(self, entries_per_tenant: int, max_tenants: int) -> None:
        self._per_tenant = entries_per_tenant
        self._max_tenants = max_tenants
        self._tenants: OrderedDict[str, OrderedDict[bytes, tuple[Finding, ...]]] = OrderedDict()
        self.stats = CacheStats()

    @property
    def enabled(self) -> bool:
        return self._per_tenant > 0 and self._max_tenants > 0

    @staticmethod
    def key(tenant: str, revision: str, language: str, text: str) -> bytes:
        h = hashlib.sha256()
        for part in (tenant, revision, language):
            encoded = part.encode("utf-8", "surrogatepass")
            h.update(len(encoded).to_bytes(4, "big"))
            h.update(encoded)
        h.update(text.encode("utf-8", "surrogatepass"))
        return h.digest()

    def get(self, tenant: str, key: bytes) -> tuple[Finding, ...] | None:
        entries = self._tenants.get(tenant)
        found = entries.get(key) if entries is not None else None
        if found is None or entries is None:
            self.stats.misses += 1
            return None
        entries.move_to_end(key)
        self._tenants.move_to_end(tenant)
        self.stats.hits += 1
        return found

    def put(self, tenant: str, key: bytes, findings: tuple[Finding, ...]) -> None:
        if not self.enabled:
            return
        entries = self._tenants.get(tenant)
        if entries is None:
            entries = self._tenants[tenant] = OrderedDict()
            while len(self._tenants) > self._max_tenants:
                self._tenants.popitem(last=False)
        entries[key] = findings
        entries.move_to_end(key)
        self._tenants.move_to_end(tenant)
        while len(entries) > self._per_tenant:
            entries.popitem(last=False)
        self.stats.stored += 1

    def clear(self) -> None:
        self._tenants.clear()

    def __len__(self) -> int:
        return sum(len(e) for e in self._tenants.values())
