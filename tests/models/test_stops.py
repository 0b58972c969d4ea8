"""Stop sequences on a stream of text pieces (table of cases)."""

from __future__ import annotations

import pytest

from appliance.providers.local.stops import StopMatcher

CASES: list[tuple[tuple[str, ...], list[str], str, bool]] = [
    # stops, pieces, emitted text, stopped
    (("END",), ["hello ", "world"], "hello world", False),
    (("END",), ["hello E", "N", "D more"], "hello ", True),
    (("END",), ["E", "NE", "ND"], "EN", True),
    (("END",), ["abc", "EN"], "abcEN", False),  # held back, released at the end
    (("\n\n", "###"), ["line\n", "\nnext"], "line", True),
    (("###", "##x"), ["a#", "#", "x"], "a", True),
    ((), ["any", "thing"], "anything", False),
]


@pytest.mark.parametrize(("stops", "pieces", "expected", "stopped"), CASES)
def test_stop_matcher(stops: tuple[str, ...], pieces: list[str], expected: str, stopped: bool) -> None:
    m = StopMatcher(stops)
    out = "".join(m.feed(p) for p in pieces) + m.flush()
    assert out == expected
    assert m.stopped is stopped


def test_nothing_after_stop() -> None:
    m = StopMatcher(("x",))
    assert m.feed("axb") == "a"
    assert m.feed("more") == "" and m.flush() == ""
