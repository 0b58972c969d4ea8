"""The report queries: readable SQL files under ``audit/reports/``, one per report kind.

A file holds named statements, each introduced by a ``-- name: NAME`` line; everything
up to the next such line (comments included) is that statement. Auditors read these
files; the exporter runs them unchanged and records each file's SHA-256 in the report,
so a reader can tell which queries produced the numbers.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from appliance.shipped import shipped

_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def default_sql_dir() -> Path:
    """``audit/reports`` as shipped (the source tree's, or the installed copy)."""
    return shipped("audit") / "reports"


@dataclass(frozen=True)
class QueryFile:
    path: Path
    sha256: str
    statements: dict[str, str]

    def __getitem__(self, name: str) -> str:
        try:
            return self.statements[name]
        except KeyError:
            raise KeyError(f"{self.path.name} has no statement named {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self.statements


def parse(text: str) -> dict[str, str]:
    """Split a query file into its named statements (trailing ``;`` removed)."""
    marks = list(_NAME.finditer(text))
    out: dict[str, str] = {}
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        body = text[m.end() : end].strip().rstrip(";").strip()
        if m.group(1) in out:
            raise ValueError(f"statement {m.group(1)!r} is defined twice")
        out[m.group(1)] = body
    return out


def load(name: str, sql_dir: Path | None = None) -> QueryFile:
    """Load ``<sql_dir>/<name>.sql``."""
    path = (sql_dir or default_sql_dir()) / f"{name}.sql"
    raw = path.read_bytes()
    return QueryFile(
        path=path, sha256=hashlib.sha256(raw).hexdigest(), statements=parse(raw.decode("utf-8"))
    )
