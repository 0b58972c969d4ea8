"""The first-start progress reporter: a bar on a terminal, paced log lines otherwise, and
progress relayed from build children."""

from __future__ import annotations

import io
import logging
import re
import sys
import time
from pathlib import Path

import pytest

from appliance.progress import BuildProgress, ChildFailed, duration, run_child

REPO = Path(__file__).resolve().parents[1]


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _log_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "appliance.progress"]


def test_log_mode_says_what_and_how_long_then_paces_its_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="appliance.progress")
    with BuildProgress(io.StringIO(), log_every_s=0.3, tick_s=0.05) as progress:
        step = progress.step("de-ner", "training the German tagger", expected_s=120)
        step("loading word lists", 0.0)
        for k in range(1, 1001):  # a thousand batches: far fewer lines
            step("", k / 1000)
            time.sleep(0.0015)
        step.done("ready at /tmp/x")
    lines = _log_lines(caplog)
    assert lines[0] == "de-ner: training the German tagger, about 2 min ..."
    assert lines[1] == "de-ner: loading word lists"
    periodic = [line for line in lines if "elapsed" in line]
    assert periodic, lines
    for line in periodic:
        assert re.fullmatch(r"de-ner: \d+% \(loading word lists\), \d+ s elapsed, "
                            r"(about .* left|taking longer than usual)", line), line
    assert re.fullmatch(r"de-ner: ready at /tmp/x \(\d+ s\)", lines[-1])
    assert len(lines) < 20


def test_a_step_that_cannot_count_still_reports_an_estimate(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="appliance.progress")
    with BuildProgress(io.StringIO(), log_every_s=0.2, tick_s=0.05) as progress:
        step = progress.step("local-embed", "exporting", expected_s=10)
        time.sleep(0.5)
        step.done()
    periodic = [line for line in _log_lines(caplog) if "elapsed" in line]
    assert periodic and all(re.match(r"local-embed: ~\d+%, ", line) for line in periodic)
    assert "about 10 s left" in periodic[0] or "about 9 s left" in periodic[0]


def test_a_failed_step_is_logged_as_an_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="appliance.progress")
    with BuildProgress(io.StringIO()) as progress:
        progress.step("de-ner", "training", 5).failed("disk full")
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == ["de-ner: failed after 0 s: disk full"]


def test_terminal_mode_draws_one_status_line_and_prints_logs_above_it() -> None:
    out = _Tty()
    handler = logging.StreamHandler(out)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with BuildProgress(out, tick_s=0.02) as progress:
            assert progress.tty
            a = progress.step("de-ner", "training", expected_s=100)
            b = progress.step("local-chat", "building", expected_s=5)
            a("", 0.5)
            time.sleep(0.1)
            logging.getLogger("appliance.test").warning("a log line")
            time.sleep(0.1)
            b.done("ready")
            a.done("ready")
        assert handler.stream is out  # given back
    finally:
        root.removeHandler(handler)
    text = out.getvalue()
    assert "\r\x1b[K" in text
    assert re.search(r"de-ner \[######\.\.\.\.\.\.\]  50% \S+ left \| local-chat \[", text), text
    # the log line starts on a cleared line, never glued to the status line
    assert "\r\x1b[Ka log line\n" in text
    assert "local-chat: ready (0 s)\n" in text
    assert text.endswith("de-ner: ready (0 s)\n")


def test_a_childs_progress_reaches_the_parent() -> None:
    script = (
        "from appliance.progress import child_report\n"
        "report = child_report(lambda note, fraction=None: None)\n"
        "report('loading', 0.0)\n"
        "import time\n"
        "for k in range(1, 5):\n"
        "    time.sleep(0.25)\n"
        "    report('', k / 4)\n"
        "print('library noise on stdout')\n"
    )
    seen: list[tuple[str, float | None]] = []
    run_child([sys.executable, "-c", script], lambda note, fraction=None: seen.append(
        (note, fraction)))
    assert seen[0] == ("loading", 0.0)
    assert [f for _, f in seen[1:]] == [0.25, 0.5, 0.75, 1.0]


def test_a_failing_child_raises_with_its_last_output() -> None:
    script = "import sys\nprint('step 1 ok')\nsys.exit('out of memory in step 2')\n"
    with pytest.raises(ChildFailed) as failed:
        run_child([sys.executable, "-c", script], lambda note, fraction=None: None)
    assert "exit code 1" in str(failed.value)
    assert "out of memory in step 2" in str(failed.value)


@pytest.mark.parametrize(("seconds", "said"), [(4.2, "4 s"), (60, "1 min"), (176, "2 min 56 s")])
def test_durations_read_as_people_say_them(seconds: float, said: str) -> None:
    assert duration(seconds) == said


def test_time_left_follows_the_pace_of_the_current_phase(monkeypatch: pytest.MonkeyPatch) -> None:
    """Training starts with seconds of loading: its pace counts from its first batch."""
    clock = [0.0]
    monkeypatch.setattr("appliance.progress.time.monotonic", lambda: clock[0])
    progress = BuildProgress(io.StringIO())  # not entered: no ticker, the test drives time
    step = progress.step("de-ner", "training", expected_s=100)
    step("training the taggers", 0.1)
    for t, fraction in ((10, 0.1), (20, 0.2), (30, 0.3)):
        clock[0] = t
        step("", fraction)
    state = progress._steps[0]
    fraction, measured, left = progress._figures(state, 30.0)
    assert (fraction, measured) == (0.3, True)
    assert left == pytest.approx(70.0)  # 1% per second since t=20, 70% to go
