"""Property tests (Hypothesis): what redaction takes away, restoration gives back, for any
Unicode text and any findings; and a stream yields the same text however it is chunked.

Texts mix arbitrary Unicode with fragments that look like placeholders (``<PERSON_1>``,
``<EMAIL_ADDRESS_``): a caller may type those too, and restoring the answer must not
turn the caller's own literal into somebody's value.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from presidio_analyzer import AnalyzerEngine

from appliance.pii.actions import ActionTable, Outcome, apply_actions
from appliance.pii.findings import Finding, resolve_overlaps
from appliance.pii.stream import PlaceholderRestorer, StreamScreener
from appliance.pii.vault import Vault

SETTINGS = settings(max_examples=300, deadline=None, database=None, derandomize=True)
TYPES = ("PERSON", "EMAIL_ADDRESS", "IBAN_CODE", "LOCATION")
MASK_ALL = ActionTable(by_type={}, default="mask")

_placeholder_like = st.builds(
    lambda t, n, close: f"<{t}_{n}" + (">" if close else ""),
    st.sampled_from(TYPES), st.integers(0, 12), st.booleans())
#: Any Unicode (surrogates excluded: a str from JSON never holds a lone one) plus
#: fragments that look like placeholders.
texts = st.lists(st.one_of(st.text(), _placeholder_like), max_size=8).map("".join)


@st.composite
def text_and_findings(draw: st.DrawFn) -> tuple[str, list[Finding]]:
    text = draw(texts)
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=10)))
    findings = []
    for start, end in zip(cuts[::2], cuts[1::2], strict=False):
        if start < end:
            findings.append(Finding(draw(st.sampled_from(TYPES)), start, end, 0.9, "property"))
    return text, findings


def _redact(text: str, findings: Sequence[Finding], vault: Vault) -> str:
    return apply_actions(text, findings, MASK_ALL, vault, b"salt", Outcome())


@SETTINGS
@given(text_and_findings())
def test_restore_of_redact_is_the_identity(case: tuple[str, list[Finding]]) -> None:
    text, findings = case
    vault = Vault()
    redacted = _redact(text, findings, vault)
    assert vault.restore(redacted) == text


@settings(max_examples=60, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=texts, after=texts,
       planted=st.sampled_from(["Anna Schmidt", "john.doe@example.com",
                                "DE89 3704 0044 0532 0130 00", "Bob Miller in Berlin"]))
def test_restore_of_presidio_redact_is_the_identity(
    analyzer: AnalyzerEngine, before: str, after: str, planted: str
) -> None:
    """The same with real Presidio findings (overlapping ones resolved as the pool does)."""
    text = f"{before} {planted} {after}"
    results = analyzer.analyze(text, language="en")
    findings = resolve_overlaps(
        [Finding(r.entity_type, r.start, r.end, r.score, "presidio") for r in results])
    vault = Vault()
    assert vault.restore(_redact(text, findings, vault)) == text


def _chunks(text: str, cuts: list[int]) -> list[str]:
    bounds = [0, *sorted({c % (len(text) + 1) for c in cuts}), len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


@SETTINGS
@given(text_and_findings(), st.lists(st.integers(0, 10_000), max_size=30))
def test_the_restorer_yields_the_same_text_for_any_chunking(
    case: tuple[str, list[Finding]], cuts: list[int]
) -> None:
    text, findings = case
    vault = Vault()
    redacted = _redact(text, findings, vault)
    restorer = PlaceholderRestorer(vault)
    streamed = "".join(restorer.feed(c) for c in _chunks(redacted, cuts)) + restorer.flush()
    assert streamed == vault.restore(redacted) == text


_NAMES = re.compile(r"Anna Schmidt|Bob Miller")


async def _names(text: str) -> list[Finding]:
    return [Finding("PERSON", m.start(), m.end(), 0.9, "re") for m in _NAMES.finditer(text)]


def _mask(text: str, findings: Sequence[Finding]) -> str:
    for f in sorted(findings, key=lambda f: -f.start):
        text = text[:f.start] + "<PERSON>" + text[f.end:]
    return text


@SETTINGS
@given(st.lists(st.one_of(st.text(), st.sampled_from(["Anna Schmidt", "Bob Miller", " "])),
                max_size=12).map("".join),
       st.lists(st.integers(0, 10_000), max_size=30), st.integers(12, 40), st.integers(1, 30))
def test_the_screener_yields_the_same_text_for_any_chunking(
    text: str, cuts: list[int], hold: int, step: int
) -> None:
    """Screening a stream chunk by chunk gives what screening the whole answer gives."""

    async def run() -> str:
        screener = StreamScreener(_names, _mask, hold=hold, step=step)
        out = [await screener.feed(c) for c in _chunks(text, cuts)]
        return "".join(out) + await screener.flush()

    assert asyncio.run(run()) == _mask(text, asyncio.run(_names(text)))
