"""The per-request placeholder vault: value <-> ``<PERSON_1>``, reversible within one request.

One vault lives in one request's context and dies with it; nothing here is process-wide.
Where a vault must be persisted (an encrypted audit payload), :meth:`Vault.encrypt`
seals it with AES-GCM; there is deliberately no plaintext serialization.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]*)_(\d+)>")
_AAD = b"appliance-pii-vault-v1"


@dataclass
class Vault:
    _by_value: dict[tuple[str, str], str] = field(default_factory=dict)
    _by_placeholder: dict[str, str] = field(default_factory=dict)
    _counters: dict[str, int] = field(default_factory=dict)
    #: Placeholder-shaped text the caller wrote itself: never handed out, or restoring
    #: the answer would turn the caller's literal ``<PERSON_1>`` into a value.
    _reserved: set[str] = field(default_factory=set)

    @classmethod
    def reserving(cls, texts: Iterable[str]) -> Vault:
        """A vault that will not hand out any placeholder written literally in ``texts``
        (all of one request's texts: a literal in its last message must not collide
        with a placeholder made for its first)."""
        vault = cls()
        for text in texts:
            vault.reserve_literals(text)
        return vault

    def reserve_literals(self, text: str) -> None:
        if "<" in text:
            self._reserved.update(m.group(0) for m in PLACEHOLDER.finditer(text))

    def placeholder(self, entity_type: str, value: str) -> str:
        """The placeholder for ``value``; the same value always gets the same one."""
        key = (entity_type, value)
        found = self._by_value.get(key)
        if found is not None:
            return found
        n = self._counters.get(entity_type, 0) + 1
        while f"<{entity_type}_{n}>" in self._reserved:
            n += 1
        self._counters[entity_type] = n
        ph = f"<{entity_type}_{n}>"
        self._by_value[key] = ph
        self._by_placeholder[ph] = value
        return ph

    def __len__(self) -> int:
        return len(self._by_placeholder)

    def __contains__(self, placeholder: object) -> bool:
        return placeholder in self._by_placeholder

    def value(self, placeholder: str) -> str | None:
        return self._by_placeholder.get(placeholder)

    @property
    def placeholders(self) -> tuple[str, ...]:
        return tuple(self._by_placeholder)

    @property
    def longest_placeholder(self) -> int:
        return max((len(p) for p in self._by_placeholder), default=0)

    def could_start_placeholder(self, tail: str) -> bool:
        """Is ``tail`` (starting with "<") a proper prefix of some placeholder?"""
        return any(p.startswith(tail) and p != tail for p in self._by_placeholder)

    def restore(self, text: str, escape_json: bool = False) -> str:
        """Replace every known placeholder in ``text`` by its value."""
        if not self._by_placeholder or "<" not in text:
            return text

        def sub(m: re.Match[str]) -> str:
            value = self._by_placeholder.get(m.group(0))
            if value is None:
                return m.group(0)
            return json.dumps(value, ensure_ascii=False)[1:-1] if escape_json else value

        return PLACEHOLDER.sub(sub, text)

    def encrypt(self, key: bytes) -> bytes:
        """AES-GCM sealed form (12-byte nonce + ciphertext); ``key`` is 16, 24 or 32 bytes."""
        payload = json.dumps(
            {"map": self._by_placeholder, "counters": self._counters}, ensure_ascii=False
        ).encode("utf-8")
        nonce = os.urandom(12)
        return nonce + AESGCM(key).encrypt(nonce, payload, _AAD)

    @classmethod
    def decrypt(cls, key: bytes, blob: bytes) -> Vault:
        """Inverse of :meth:`encrypt`; raises ``cryptography.exceptions.InvalidTag`` on a
        wrong key or tampered data."""
        data = json.loads(AESGCM(key).decrypt(blob[:12], blob[12:], _AAD))
        vault = cls()
        for ph, value in data["map"].items():
            m = PLACEHOLDER.fullmatch(ph)
            if m is None:
                raise ValueError("corrupt vault")
            vault._by_placeholder[ph] = value
            vault._by_value[(m.group(1), value)] = ph
        vault._counters = {k: int(v) for k, v in data["counters"].items()}
        return vault
