"""What a report is asked to cover: kind, period, filters, and the incident details.

Dates on the command line are calendar days in UTC and both ends are inclusive, the way
people write periods ("2026-01-01 to 2026-03-31"); internally the period is the half-open
interval [start, end) so that consecutive periods never share a record.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

Bucket = Literal["hour", "day", "week", "month"]
Severity = Literal["general", "death", "widespread", "critical_infrastructure"]

SEVERITIES: tuple[Severity, ...] = ("general", "death", "widespread", "critical_infrastructure")


def parse_day(text: str) -> dt.date:
    """``YYYY-MM-DD`` into a date; anything else is refused with the expected form."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date; use YYYY-MM-DD") from None


@dataclass(frozen=True)
class Period:
    """Calendar days ``first`` .. ``last`` (inclusive), UTC."""

    first: dt.date
    last: dt.date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError(f"the period ends ({self.last}) before it starts ({self.first})")

    @property
    def start(self) -> dt.datetime:
        """First instant inside the period (naive UTC, as stored in the log)."""
        return dt.datetime.combine(self.first, dt.time())

    @property
    def end(self) -> dt.datetime:
        """First instant after the period (naive UTC)."""
        return dt.datetime.combine(self.last + dt.timedelta(days=1), dt.time())

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def bucket(self) -> Bucket:
        """Time bucket for "over time" tables: a few dozen points, never thousands."""
        if self.days <= 2:
            return "hour"
        if self.days <= 92:
            return "day"
        if self.days <= 730:
            return "week"
        return "month"

    def label(self) -> str:
        return f"{self.first.isoformat()} to {self.last.isoformat()} (UTC, both days included)"


@dataclass(frozen=True)
class IncidentDetails:
    """Art. 73 inputs a person must supply; the log cannot know them."""

    #: When the provider became aware of the serious incident (deadlines run from here).
    aware_at: dt.datetime | None = None
    #: Which Art. 73 deadline applies.
    severity: Severity = "general"
    #: Free text a person writes for the authority (never taken from prompts).
    description: str = ""


@dataclass(frozen=True)
class ReportRequest:
    kind: str
    period: Period
    tenant: str | None = None
    application: str | None = None
    #: incident: the requests the report is about (empty: the flagged requests of the period).
    request_ids: tuple[str, ...] = ()
    incident: IncidentDetails = field(default_factory=IncidentDetails)
    #: Run the full chain verification (always done for art12).
    verify: bool = False
    #: Most detail rows shown in HTML/PDF (the data formats always hold every row).
    detail_limit: int = 200
