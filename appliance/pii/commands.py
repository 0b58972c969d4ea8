"""CLI: ``appliance pii analyze [--language en|de|auto] [--json]`` (text on stdin).

Prints each finding (type, span, score, recognizer) and the text as it would leave the
appliance with the configured actions. Meant for operators trying recognizers on their
own data; it runs the analyzer in-process (no pool) and writes nothing to disk.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from appliance.config import load_config
from appliance.pii.actions import ActionTable, Outcome, apply_actions
from appliance.pii.engine import analyze_texts, build_analyzer
from appliance.pii.language import detect_language
from appliance.pii.vault import Vault


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    pii = sub.add_parser("pii", help="personal data detection and redaction")
    psub = pii.add_subparsers(dest="pii_command", required=True)
    a = psub.add_parser("analyze", help="find PII in text read from stdin")
    a.add_argument("--language", choices=("auto", "en", "de"), default="auto")
    a.add_argument("--json", action="store_true", help="print JSON")
    a.add_argument("--config", type=Path, default=None, help="TOML config file")
    a.add_argument("--data-dir", type=Path, default=None, help="data directory")
    a.set_defaults(func=cmd_analyze)


def cmd_analyze(args: argparse.Namespace) -> int:
    config = load_config(args.config, data_dir=args.data_dir).pii
    text = sys.stdin.read()
    language = args.language
    if language == "auto":
        language = detect_language(text, default=config.languages[0])
    if language not in config.languages:
        print(f"error: language {language!r} is not enabled in pii.languages", file=sys.stderr)
        return 2
    analyzer = build_analyzer(config)
    (findings,) = analyze_texts(analyzer, [text], [language], frozenset(config.ignore_entities))
    redacted = apply_actions(
        text, findings, ActionTable.resolve(config, None), Vault(), os.urandom(16), Outcome()
    )
    if args.json:
        print(json.dumps({
            "language": language,
            "findings": [
                {"type": f.entity_type, "start": f.start, "end": f.end, "score": f.score,
                 "recognizer": f.recognizer}
                for f in findings
            ],
            "redacted": redacted,
        }, ensure_ascii=False, indent=2))
    else:
        print(f"language: {language}")
        for f in findings:
            print(f"{f.entity_type:<16} {f.start:>6}-{f.end:<6} {f.score:.2f}  {f.recognizer}")
        print("redacted:")
        print(redacted)
    return 0
