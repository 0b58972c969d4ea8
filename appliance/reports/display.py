"""How values and column names read in HTML and PDF (one place, so both agree)."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

_WORDS = {
    "usd": "(USD)",
    "utc": "(UTC)",
    "pii": "PII",
    "id": "ID",
    "ids": "IDs",
    "http": "HTTP",
    "eu": "EU",
    "annex": "Annex",
    "iii": "III",
}


def label(column: str) -> str:
    """``total_tokens`` -> ``Total tokens``; ``cost_usd`` -> ``Cost (USD)``."""
    words = [_WORDS.get(w, w) for w in column.split("_")]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def fmt(value: Any, column: str = "") -> str:
    """A value as shown in a report; numbers are those of the JSON export, formatted."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, decimal.Decimal):
        value = int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if column.endswith("usd"):
            return f"{value:,.2f}"
        return f"{value:,.3f}"
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        if column == "period_start" and value.time() == dt.time():
            return value.date().isoformat()
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str) and len(value) >= 20 and value.endswith("Z") and value[10:11] == "T":
        try:
            return fmt(dt.datetime.fromisoformat(value[:-1]), column)
        except ValueError:
            return value
    return str(value)


def short_hash(h: str, n: int = 16) -> str:
    return h[:n] + "…" if len(h) > n else h
