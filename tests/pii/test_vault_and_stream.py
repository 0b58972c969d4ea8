"""Vault round trip and encryption; placeholder restoration at every split position."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from cryptography.exceptions import InvalidTag

from appliance.pii.findings import Finding
from appliance.pii.stream import PlaceholderRestorer, StreamScreener
from appliance.pii.vault import Vault


def _vault() -> Vault:
    v = Vault()
    v.placeholder("PERSON", "Anna Schmidt")
    v.placeholder("PERSON", 'Jo "Quote" Ü')
    v.placeholder("EMAIL_ADDRESS", "anna@example.com")
    return v


def test_same_value_same_placeholder() -> None:
    v = Vault()
    a = v.placeholder("PERSON", "Anna")
    assert a == "<PERSON_1>"
    assert v.placeholder("PERSON", "Bob") == "<PERSON_2>"
    assert v.placeholder("PERSON", "Anna") == a
    assert v.placeholder("LOCATION", "Berlin") == "<LOCATION_1>"


def test_restore_whole_text() -> None:
    v = _vault()
    assert v.restore("Hi <PERSON_1>, mail <EMAIL_ADDRESS_1>; <PERSON_9> stays") == (
        "Hi Anna Schmidt, mail anna@example.com; <PERSON_9> stays"
    )


def test_encrypt_round_trip_and_wrong_key() -> None:
    v = _vault()
    key = os.urandom(32)
    blob = v.encrypt(key)
    assert b"Anna" not in blob and b"example" not in blob
    back = Vault.decrypt(key, blob)
    assert back.restore("<PERSON_1> <PERSON_2>") == 'Anna Schmidt Jo "Quote" Ü'
    assert back.placeholder("PERSON", "New") == "<PERSON_3>"
    with pytest.raises(InvalidTag):
        Vault.decrypt(os.urandom(32), blob)


MASKED = "Dear <PERSON_1>, write to <EMAIL_ADDRESS_1> or ask <PERSON_2>. <PERSON_1>!<x <PERS"
RESTORED = 'Dear Anna Schmidt, write to anna@example.com or ask Jo "Quote" Ü. Anna Schmidt!<x <PERS'


@pytest.mark.parametrize("k", range(len(MASKED) + 1))
def test_restore_split_at_every_position(k: int) -> None:
    r = PlaceholderRestorer(_vault())
    out = r.feed(MASKED[:k]) + r.feed(MASKED[k:]) + r.flush()
    assert out == RESTORED


def test_restore_char_by_char_holds_back_at_most_a_placeholder() -> None:
    v = _vault()
    r = PlaceholderRestorer(v)
    out = []
    for ch in MASKED:
        out.append(r.feed(ch))
        assert len(r.pending) < v.longest_placeholder
    out.append(r.flush())
    assert "".join(out) == RESTORED


@pytest.mark.parametrize("k", range(0, 60, 1))
def test_restore_inside_json_arguments(k: int) -> None:
    args = json.dumps({"to": "<PERSON_2>", "cc": ["<EMAIL_ADDRESS_1>"]})
    r = PlaceholderRestorer(_vault(), escape_json=True)
    out = r.feed(args[:k]) + r.feed(args[k:]) + r.flush()
    assert json.loads(out) == {"to": 'Jo "Quote" Ü', "cc": ["anna@example.com"]}


def test_screener_catches_entity_split_across_chunks() -> None:
    secret = "AKIAIOSFODNN7EXAMPLE"
    text = f"Here is the key {secret} that you asked for, keep it safe and private please."

    async def analyze(buf: str) -> list[Finding]:
        i = buf.find(secret)
        return [Finding("SECRET", i, i + len(secret), 1.0, "t")] if i >= 0 else []

    def transform(buf: str, found: object) -> str:
        out = buf
        for f in sorted(found, key=lambda f: -f.start):  # type: ignore[attr-defined]
            out = out[: f.start] + "<SECRET>" + out[f.end:]
        return out

    async def run(k: int) -> str:
        s = StreamScreener(analyze, transform, hold=24, step=8)
        parts = [await s.feed(text[i:i + k]) for i in range(0, len(text), k)]
        return "".join(parts) + await s.flush()

    for k in (1, 2, 3, 5, 7, 11):
        assert asyncio.run(run(k)) == text.replace(secret, "<SECRET>")
