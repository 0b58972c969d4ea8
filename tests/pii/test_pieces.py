"""Long texts as pieces: where the cuts fall, who owns what, how findings merge back."""

from __future__ import annotations

import pytest

from appliance.config.pii import PiiConfig
from appliance.pii.findings import Finding
from appliance.pii.language import language_runs
from appliance.pii.pieces import Piece, known_digests, known_spans, merge, plan_pieces, plan_text
from appliance.testing.documents import EN_FILLER, archive, at_cuts


def owned(pieces: list[Piece]) -> list[tuple[int, int]]:
    return [(p.own_start, p.own_end) for p in pieces]


def test_a_short_text_is_one_piece() -> None:
    assert plan_pieces("Call John on 555-0100.", 2000, 256) == [Piece(0, 22, 0, 22)]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(("width", "blank_lines"), [(None, True), (64, False)])
def test_pieces_own_every_character_once_and_read_past_their_ends(
        seed: int, width: int | None, blank_lines: bool) -> None:
    text = archive(30_000, seed=seed, width=width, blank_lines=blank_lines).text
    pieces = plan_pieces(text, 2000, 256)
    assert pieces[0].own_start == 0 and pieces[-1].own_end == len(text)
    for a, b in zip(pieces, pieces[1:], strict=False):
        assert a.own_end == b.own_start
    for p in pieces:
        assert 0 < p.own_end - p.own_start <= 2000
        assert p.start <= max(0, p.own_start - 128) and p.end >= min(len(text), p.own_end + 256)
        assert p.start == 0 or text[p.start - 1].isspace()  # windows do not cut words


@pytest.mark.parametrize(("text", "cut_after"), [
    # A blank line beats a line end, which beats a sentence end, which beats a space.
    ("a" * 120 + "\n\n" + "b" * 30 + "\n" + "c" * 100, "\n\n"),
    ("a" * 120 + ". Next" + "b" * 10 + "\n" + "c" * 120, "\n"),
    ("word " * 25 + "ends here. Another " + "word " * 30, "here. "),
    ("word " * 80, "word "),
])
def test_cuts_prefer_paragraphs_then_lines_then_sentences(text: str, cut_after: str) -> None:
    first = plan_pieces(text + " tail" * 60, 200, 64)[0]  # long: the first cut is a greedy one
    assert text[:first.own_end].endswith(cut_after)


def test_a_text_without_spaces_is_still_cut() -> None:
    pieces = plan_pieces("x" * 5000, 2000, 256)
    assert owned(pieces) == [(0, 2000), (2000, 3500), (3500, 5000)]


def test_appending_to_a_long_text_keeps_its_earlier_pieces() -> None:
    """Cuts are chosen from the left: a context with a new question appended is cut as
    before (so its pieces' findings come from the cache), except at its end."""
    text = archive(20_000, seed=4).text
    before = plan_pieces(text, 2000, 256)
    after = plan_pieces(text + "\nQuestion: who signed the lease, and where does she live?", 2000, 256)
    assert after[:len(before) - 3] == before[:-3]


def test_skipped_spans_are_owned_by_no_piece() -> None:
    text = archive(10_000, seed=5).text
    pieces = plan_pieces(text, 2000, 256, skip=[(3000, 7000)])
    assert all(p.own_end <= 3000 or p.own_start >= 7000 for p in pieces)
    assert sum(p.own_end - p.own_start for p in pieces) == len(text) - 4000


def test_no_piece_owns_both_sides_of_a_break() -> None:
    text = archive(10_000, seed=5).text
    pieces = plan_pieces(text, 2000, 256, breaks=[4321])
    assert any(p.own_end == 4321 for p in pieces) and any(p.own_start == 4321 for p in pieces)


def test_merge_keeps_each_entity_once_from_the_piece_it_starts_in() -> None:
    pieces = [Piece(0, 120, 0, 100), Piece(80, 200, 100, 200)]
    found = [
        # the first window sees the address that crosses the cut at 100, whole
        [Finding("ADDRESS", 90, 115, 0.6, "block"), Finding("PERSON", 10, 20, 0.85, "ner")],
        # the second sees it too (it starts in its lead), and its own e-mail
        [Finding("ADDRESS", 10, 35, 0.6, "block"), Finding("EMAIL_ADDRESS", 50, 70, 1.0, "email")],
    ]
    assert merge(pieces, found) == [
        Finding("PERSON", 10, 20, 0.85, "ner"),
        Finding("ADDRESS", 90, 115, 0.6, "block"),
        Finding("EMAIL_ADDRESS", 130, 150, 1.0, "email"),
    ]


def test_addresses_planted_at_the_cuts_straddle_them() -> None:
    """The document the pool test sends: with no overlap, every planted address would
    be cut in two (so that test fails without the overlap, as it was checked to)."""
    config = PiiConfig()
    doc = at_cuts(archive(40_000, seed=7, width=64, blank_lines=False, run_chars=10_000),
                  lambda text: cuts_within_runs(text, config))
    cuts = [c for c, _ in cuts_within_runs(doc.text, config)]
    assert len(doc.at_cuts) == len(cuts) >= 10
    for planted, cut in zip(doc.at_cuts, cuts, strict=True):
        assert planted.start < cut < planted.end
        assert doc.text[planted.start:planted.end].split()[0][:1].isalnum()


def cuts_within_runs(text: str, config: PiiConfig) -> list[tuple[int, str]]:
    """The pool's cuts inside runs of one language, with that language."""
    planned = plan_text(text, "en", config, detect=True)
    return [(p.own_end, lang) for (p, lang), (_, lang2) in zip(planned, planned[1:], strict=False)
            if lang == lang2]


def test_language_runs_follow_a_text_that_changes_language() -> None:
    english = " ".join(EN_FILLER) + "\nKind regards,\nJohn Smith\n29 Hornsey Road\n"
    german = ("Sehr geehrte Frau Schmidt,\nwir haben Ihre Unterlagen erhalten und werden die "
              "Rechnung bis Ende der Woche prüfen. Bitte senden Sie uns die fehlenden "
              "Belege. Die Zahlung erfolgt nach der Prüfung durch die Buchhaltung.\n") * 3
    text = english + german + english
    runs = language_runs(text, "en", ("en", "de"))
    assert [lang for _, _, lang in runs] == ["en", "de", "en"]
    # The signature and address lines stay with the English letter they close.
    assert runs[0][1] == len(english) and runs[1][1] == len(english) + len(german)


def test_repeated_paragraphs_are_known() -> None:
    long_para = " ".join(EN_FILLER[:4])
    request = f"{long_para}\n\nThanks, Anna"
    known = known_digests([request])
    answer = f"echo: here it is\n\n{long_para}\n\nThanks, Anna\n\nP.S. call Jonas"
    spans = known_spans(answer, known)
    assert [answer[s:e] for s, e in spans] == [long_para, "Thanks, Anna"]


def test_a_short_repeated_paragraph_between_new_ones_is_analysed_with_them() -> None:
    """Skipping it would leave two pieces whose windows read it anyway."""
    text = "New opening line.\n\nKind regards,\n\n" + "Another new paragraph. " * 5
    skip = [(19, 32)]
    assert text[19:32] == "Kind regards,"
    assert owned(plan_pieces(text, 2000, 256, skip=skip)) == [(0, len(text))]
    far = text.replace("Kind regards,", "x" * 500)
    assert len(plan_pieces(far, 2000, 256, skip=[(19, 519)])) == 2


def test_an_echoed_answer_is_one_small_piece() -> None:
    """Only the changed first paragraph is analysed; the blank lines between repeated
    paragraphs are no pieces of their own (each would read a whole window)."""
    request = "\n\n".join(" ".join(EN_FILLER[k:k + 4]) for k in range(0, 16, 4))
    answer = "echo: " + request
    skip = known_spans(answer, known_digests([request]))
    pieces = plan_pieces(answer, 2000, 256, skip=skip)
    assert len(skip) == 3 and len(pieces) == 1
    assert pieces[0].own_end == skip[0][0]
