"""Log lines that a caller cannot forge: control characters in a message are escaped.

Messages name request ids, types and counts, never content; but a value a caller chose
(a model name, a path, a tenant registered through the admin API) may still reach one.
A CR or LF in it would start a forged line, an ESC would drive the operator's terminal.
Every handler the appliance installs formats through :class:`OneLineFormatter`, which
writes such characters as ``\\u000d``-style escapes; tracebacks keep their own lines.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import TextIO

#: C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escape(m: re.Match[str]) -> str:
    return f"\\u{ord(m.group(0)):04x}"


def escape_controls(text: str) -> str:
    """``text`` with every control character written as a ``\\uXXXX`` escape, which is
    also a valid escape inside a JSON string (printable text stays as it is)."""
    if text.isascii() and text.isprintable():
        return text
    return _CONTROL.sub(_escape, text)


class OneLineFormatter(logging.Formatter):
    """A formatter whose message part is always one line of printable text."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        record.message = escape_controls(record.message)
        return super().formatMessage(record)


DEFAULT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: Client libraries whose DEBUG lines are wire dumps: request headers (a signed
#: ``Authorization``), bodies, and a full traceback for every retried connection. The
#: appliance's own DEBUG lines say what it decided; these would say what it sent, so they
#: stay at INFO whatever level the operator asks for.
WIRE_LOGGERS = ("botocore", "boto3", "s3transfer", "urllib3", "redis", "psycopg", "hpack", "httpcore", "httpx")


def setup_logging(level: int, fmt: str = DEFAULT_FORMAT, stream: TextIO | None = None) -> None:
    """``logging.basicConfig`` with one handler that formats through OneLineFormatter."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(OneLineFormatter(fmt))
    logging.basicConfig(level=level, handlers=[handler])
    for name in WIRE_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.INFO))
