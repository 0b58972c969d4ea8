"""CLI: ``appliance pii analyze [--language en|de|auto] [--json | --jsonl [FILE]]``.

Prints each finding (type, span, score, recognizer; for a GDPR Art. 9 special category
also the PERSON finding it concerns) and the text as it would leave the appliance with
the configured actions. Meant for operators trying recognizers on their own data; it
runs the analyzer in-process (no pool) and writes nothing to disk.

``--jsonl`` analyses a corpus in one process: one JSON object per input line (``text``,
optional ``language``, optional ``id`` echoed back), one result per output line in the
same order. Results hold types, spans and scores only, never the text; a line that is
not such an object gets ``{"line": n, "error": ...}`` in its place, and the exit status
is then 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import IO, Any

from appliance.config import load_config
from appliance.pii.actions import ActionTable, Outcome, apply_actions
from appliance.config.pii import PiiConfig
from appliance.pii.findings import Finding
from appliance.pii.engine import analyze_texts, build_analyzer
from appliance.pii.language import detect_language
from appliance.pii.special.categories import SPECIAL_CATEGORIES
from appliance.pii.special.detector import build_special_detector
from appliance.pii.vault import Vault

#: Lines analysed together in --jsonl mode (spaCy tags a batch faster than its texts alone).
_BATCH = 64


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    pii = sub.add_parser("pii", help="personal data detection and redaction")
    psub = pii.add_subparsers(dest="pii_command", required=True)
    a = psub.add_parser("analyze", help="find PII in text read from stdin")
    a.add_argument("--language", choices=("auto", "en", "de"), default="auto")
    out = a.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON")
    out.add_argument(
        "--jsonl", nargs="?", const="-", default=None, metavar="FILE",
        help="read one JSON object per line ({\"text\": ..., \"language\": ...}) from FILE "
             "or stdin, write one result per line in the same order",
    )
    a.add_argument("--config", type=Path, default=None, help="TOML config file")
    a.add_argument("--data-dir", type=Path, default=None, help="data directory")
    a.set_defaults(func=cmd_analyze)


def _finding_json(f: Finding) -> dict[str, Any]:
    out: dict[str, Any] = {"type": f.entity_type, "start": f.start, "end": f.end,
                           "score": f.score, "recognizer": f.recognizer}
    if f.entity_type in SPECIAL_CATEGORIES:
        out["person"] = f.person  # index of the PERSON finding it concerns, or null
    return out


def _special(findings: list[Finding]) -> list[str]:
    return sorted({f.entity_type for f in findings if f.entity_type in SPECIAL_CATEGORIES})


def _language(requested: str, text: str, config: PiiConfig) -> str:
    if requested == "auto":
        lang = detect_language(text, default=config.languages[0])
        return lang if lang in config.languages else config.languages[0]
    return requested


def cmd_analyze(args: argparse.Namespace) -> int:
    config = load_config(args.config, data_dir=args.data_dir).pii
    if args.language != "auto" and args.language not in config.languages:
        print(f"error: language {args.language!r} is not enabled in pii.languages", file=sys.stderr)
        return 2
    if args.jsonl is not None:
        return _analyze_jsonl(args, config)
    text = sys.stdin.read()
    language = _language(args.language, text, config)
    analyzer = build_analyzer(config)
    (findings,) = analyze_texts(analyzer, [text], [language], frozenset(config.ignore_entities),
                                build_special_detector(config))
    redacted = apply_actions(
        text, findings, ActionTable.resolve(config, None), Vault(), os.urandom(16), Outcome()
    )
    if args.json:
        print(json.dumps({
            "language": language,
            "findings": [_finding_json(f) for f in findings],
            "special_categories": _special(findings),
            "redacted": redacted,
        }, ensure_ascii=False, indent=2))
        return 0
    print(f"language: {language}")
    for f in findings:
        line = f"{f.entity_type:<17} {f.start:>6}-{f.end:<6} {f.score:.2f}  {f.recognizer}"
        if f.entity_type in SPECIAL_CATEGORIES:
            line += "  (no person named)" if f.person is None else f"  -> finding {f.person}"
        print(line)
    special = _special(findings)
    print(f"special categories (GDPR Art. 9): {', '.join(special) if special else 'none'}")
    print("redacted:")
    print(redacted)
    return 0


def _parse_line(raw: str, config: PiiConfig, default: str) -> tuple[str, str, Any] | str:
    """(text, language, id) of one input line, or the error to report for it."""
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as e:
        return f"not JSON: {e.msg} at column {e.colno}"
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        return 'expected an object with a string "text"'
    lang = obj.get("language", default)
    if lang not in ("auto", *config.languages):
        return f"language must be one of auto, {', '.join(config.languages)}"
    return obj["text"], _language(lang, obj["text"], config), obj.get("id")


def _lines(source: IO[str]) -> Iterator[tuple[int, str]]:
    for n, raw in enumerate(source, start=1):
        if raw.strip():
            yield n, raw


def _analyze_jsonl(args: argparse.Namespace, config: PiiConfig) -> int:
    try:
        source: IO[str] = sys.stdin if args.jsonl == "-" else open(args.jsonl, encoding="utf-8")
    except OSError as e:
        print(f"error: cannot read {args.jsonl}: {e.strerror}", file=sys.stderr)
        return 2
    analyzer = build_analyzer(config)
    special = build_special_detector(config)
    ignore = frozenset(config.ignore_entities)
    failed = 0
    lines = _lines(source)
    try:
        while batch := list(islice(lines, _BATCH)):
            parsed = [(n, _parse_line(raw, config, args.language)) for n, raw in batch]
            good = [(n, p) for n, p in parsed if not isinstance(p, str)]
            found = analyze_texts(analyzer, [p[0] for _, p in good], [p[1] for _, p in good],
                                  ignore, special)
            results = dict(zip((n for n, _ in good), found, strict=True))
            for n, p in parsed:
                if isinstance(p, str):
                    failed += 1
                    out: dict[str, Any] = {"line": n, "error": p}
                else:
                    findings = results[n]
                    out = {"language": p[1], "findings": [_finding_json(f) for f in findings],
                           "special_categories": _special(findings)}
                    if p[2] is not None:
                        out = {"id": p[2], **out}
                print(json.dumps(out, ensure_ascii=False))
            sys.stdout.flush()
    finally:
        if source is not sys.stdin:
            source.close()
    if failed:
        print(f"error: {failed} line(s) could not be analysed (see their results)", file=sys.stderr)
        return 1
    return 0
