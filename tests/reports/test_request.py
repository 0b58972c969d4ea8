from __future__ import annotations

import datetime as dt

import pytest

from appliance.reports.request import Period, parse_day
from appliance.reports.sql import load, parse

BUCKETS = [
    (dt.date(2026, 3, 1), dt.date(2026, 3, 1), "hour"),
    (dt.date(2026, 3, 1), dt.date(2026, 3, 2), "hour"),
    (dt.date(2026, 3, 1), dt.date(2026, 3, 31), "day"),
    (dt.date(2026, 1, 1), dt.date(2026, 12, 31), "week"),
    (dt.date(2024, 1, 1), dt.date(2026, 12, 31), "month"),
]


@pytest.mark.parametrize(("first", "last", "bucket"), BUCKETS)
def test_bucket_keeps_charts_to_a_few_dozen_points(
    first: dt.date, last: dt.date, bucket: str
) -> None:
    assert Period(first, last).bucket() == bucket


def test_period_is_half_open_and_includes_the_last_day() -> None:
    p = Period(dt.date(2026, 3, 1), dt.date(2026, 3, 31))
    assert p.start == dt.datetime(2026, 3, 1)
    assert p.end == dt.datetime(2026, 4, 1)
    assert p.days == 31


@pytest.mark.parametrize("bad", ["2026-13-01", "01.03.2026", "yesterday", ""])
def test_parse_day_refuses_other_forms(bad: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_day(bad)


def test_period_refuses_end_before_start() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        Period(dt.date(2026, 3, 2), dt.date(2026, 3, 1))


def test_named_statements_parse() -> None:
    text = "-- header\n-- name: a\nSELECT 1;\n-- name: b\n-- about b\nSELECT 2\n"
    assert parse(text) == {"a": "SELECT 1", "b": "-- about b\nSELECT 2"}
    with pytest.raises(ValueError, match="twice"):
        parse("-- name: a\nSELECT 1\n-- name: a\nSELECT 2")


def test_every_kind_has_the_statements_its_spec_names() -> None:
    from appliance.reports.kinds import kinds

    scope = load("_scope")
    assert {"scope", "third_country", "segments_in_scope", "not_covered"} <= set(scope.statements)
    for spec in kinds().values():
        q = load(spec.name)
        for name in ("summary", "detail", *spec.prepare, *(s.query for s in spec.sections)):
            assert name in q, f"{spec.name}.sql lacks {name}"
        assert len(q.sha256) == 64
