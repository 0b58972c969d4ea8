"""`appliance pii analyze` shows special categories and analyses a JSONL corpus in one
process (run as a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance", "pii", "analyze", *args],
        input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=300, check=False,
    )


def test_text_output_names_the_special_categories() -> None:
    proc = _run(stdin="Employee Tarik Demir has been on sick leave since his heart attack.")
    assert proc.returncode == 0, proc.stderr
    assert "special categories (GDPR Art. 9): HEALTH" in proc.stdout
    assert "-> finding" in proc.stdout  # linked to the PERSON finding by index


def test_jsonl_file_one_result_per_line_in_order(tmp_path: Path) -> None:
    lines = [
        {"id": "a", "text": "Kevin Moore told us he is bisexual."},
        {"id": "b", "text": "Frau Ines Vogt ist ver.di-Mitglied.", "language": "de"},
        "this line is not JSON",
        {"text": "Prove that the union of two countable sets is countable."},
        {"id": 5, "text": 42},
        {"id": "c", "text": "Lohnabrechnung: Kirchensteuer: ev", "language": "klingon"},
        {"id": "d", "text": "Herr Paul Kern ist Muslim.", "language": "auto"},
    ]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n\n")
    proc = _run("--jsonl", str(corpus))
    assert proc.returncode == 1  # three bad lines
    assert "3 line(s) could not be analysed" in proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(out) == len(lines)
    assert out[0]["id"] == "a" and out[0]["special_categories"] == ["SEX_LIFE"]
    sex = next(f for f in out[0]["findings"] if f["type"] == "SEX_LIFE")
    assert out[0]["findings"][sex["person"]]["type"] == "PERSON"
    assert out[1]["id"] == "b" and out[1]["language"] == "de"
    assert out[1]["special_categories"] == ["TRADE_UNION"]
    assert out[2] == {"line": 3, "error": out[2]["error"]} and out[2]["error"].startswith("not JSON")
    assert out[3]["special_categories"] == [] and "id" not in out[3]
    assert out[4]["line"] == 5 and "text" in out[4]["error"]
    assert out[5]["line"] == 6 and "language" in out[5]["error"]
    assert out[6]["id"] == "d" and out[6]["special_categories"] == ["RELIGION"]
    # types and spans only: the text never comes back
    assert "Kevin" not in proc.stdout and "Vogt" not in proc.stdout


def test_jsonl_from_stdin_keeps_order_across_batches() -> None:
    texts = [f"Case {i}: the client Tom Hale was diagnosed with asthma." if i % 3 == 0
             else f"Case {i}: invoice {1000 + i} is overdue." for i in range(70)]
    stdin = "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts))
    proc = _run("--jsonl", stdin=stdin)
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o["id"] for o in out] == list(range(70))
    assert [o["special_categories"] == ["HEALTH"] for o in out] == [i % 3 == 0 for i in range(70)]


def test_jsonl_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    proc = _run("--jsonl", str(tmp_path / "nope.jsonl"))
    assert proc.returncode == 2
    assert "cannot read" in proc.stderr and "Traceback" not in proc.stderr
