"""AI Act Art. 73 reporting deadlines for a serious incident.

Regulation (EU) 2024/1689, Art. 73 (text as published in OJ L, 12.7.2024):
- 73(2): report "immediately after the provider has established a causal link between
  the AI system and the serious incident or the reasonable likelihood of such a link,
  and, in any event, not later than 15 days after the provider or, where applicable,
  the deployer, becomes aware of the serious incident";
- 73(3): "in the event of a widespread infringement or a serious incident as defined in
  Article 3, point (49)(b)" (serious and irreversible disruption of the management or
  operation of critical infrastructure): "immediately, and not later than two days after
  the provider or, where applicable, the deployer becomes aware of that incident";
- 73(4): "in the event of the death of a person": "immediately after the provider or
  the deployer has established, or as soon as it suspects, a causal relationship between
  the high-risk AI system and the serious incident, but not later than 10 days after the
  date on which [it] becomes aware of the serious incident";
- 73(5): an initial report that is incomplete may be submitted, followed by a complete one.
The serious-incident definition is Art. 3(49); "widespread infringement" is Art. 3(61).
These are quoted from the regulation as the team knows it: a lawyer should confirm them
before a report is filed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from appliance.reports.request import Severity


@dataclass(frozen=True)
class Deadline:
    severity: Severity
    article: str
    applies_to: str
    days: int

    def due(self, aware_at: dt.datetime) -> dt.datetime:
        return aware_at + dt.timedelta(days=self.days)


DEADLINES: tuple[Deadline, ...] = (
    Deadline("general", "Art. 73(2)", "any serious incident (Art. 3(49))", 15),
    Deadline("death", "Art. 73(4)", "death of a person (Art. 3(49)(a))", 10),
    Deadline(
        "widespread",
        "Art. 73(3)",
        "widespread infringement (Art. 3(61))",
        2,
    ),
    Deadline(
        "critical_infrastructure",
        "Art. 73(3)",
        "serious and irreversible disruption of critical infrastructure (Art. 3(49)(b))",
        2,
    ),
)


def deadline_for(severity: Severity) -> Deadline:
    for d in DEADLINES:
        if d.severity == severity:
            return d
    raise ValueError(f"unknown incident severity {severity!r}")


def deadline_rows(
    aware_at: dt.datetime, severity: Severity, now: dt.datetime
) -> list[dict[str, object]]:
    """Every Art. 73 deadline from ``aware_at``; the one for ``severity`` is marked."""
    rows: list[dict[str, object]] = []
    for d in DEADLINES:
        due = d.due(aware_at)
        left = due - now
        rows.append(
            {
                "article": d.article,
                "incident": d.applies_to,
                "days_after_awareness": d.days,
                "report_due_utc": due.replace(tzinfo=None).isoformat(timespec="seconds") + "Z",
                "applies": "yes" if d.severity == severity else "no",
                "time_left": _left(left),
            }
        )
    return rows


def _left(delta: dt.timedelta) -> str:
    if delta.total_seconds() <= 0:
        return "overdue"
    hours = int(delta.total_seconds() // 3600)
    return f"{hours // 24} d {hours % 24} h"
