"""A sample audit log written once per test session, and exports of it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest

from appliance.config import Config, load_config
from appliance.reports.sample import register_apps, write_sample_log

RECORDS = 3000
#: The log spans March 2026; reports cover March 1-31 unless a test says otherwise.
FIRST = dt.datetime(2026, 3, 1)
LAST = dt.datetime(2026, 3, 31, 23, 0)


@dataclass(frozen=True)
class SampleAudit:
    config: Config
    data_dir: Path
    records: int


@pytest.fixture(scope="session")
def sample_audit(tmp_path_factory: pytest.TempPathFactory) -> SampleAudit:
    data_dir = tmp_path_factory.mktemp("reports-data")
    config = load_config(None, data_dir=data_dir)
    register_apps(config)
    write_sample_log(config, RECORDS, first=FIRST, last=LAST)
    return SampleAudit(config, data_dir, RECORDS)
