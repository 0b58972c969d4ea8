"""The console's view of the audit log over a written log: after an idle release the
files are free (another process may open them for writing) and the roll-ups survive, so
the next page does not read every record again; a segment that changed or went away
while released is rolled up again or forgotten."""

from __future__ import annotations

import datetime as dt
from pathlib import Path


from appliance.audit.segments import AuditPaths, attach, connect, db_key
from appliance.config import load_config
from appliance.console.auditlog import AuditFilters, AuditView
from appliance.reports.sample import write_sample_log


def test_idle_release_keeps_the_rollups_and_frees_the_files(tmp_path: Path) -> None:
    config = load_config(None, data_dir=tmp_path)
    last = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(hours=1)
    write_sample_log(config, 2_000, first=last - dt.timedelta(days=5), last=last)
    view = AuditView(config)
    everything = AuditFilters(since=dt.datetime.now(dt.UTC) - dt.timedelta(days=30))
    try:
        before = view.overview(everything, max_age_s=0)
        computed = view.rollups_computed
        assert before["totals"]["requests"] == 2_000 and computed >= 1
        assert view.close_if_idle(0.0)

        paths = AuditPaths.from_config(config)
        segments = [p for p in paths.segment_files() if p.stem.startswith("seg-")]
        assert segments
        other = connect()
        for n, segment in enumerate(segments):  # free to write (a purge could thin them now)
            attach(other, segment, f"w{n}", db_key(config), read_only=False)
            other.execute(f"DETACH w{n}")
        other.close()

        after = view.overview(everything, max_age_s=0)
        assert after["totals"] == before["totals"] and after["series"] == before["series"]
        assert view.rollups_computed == computed  # not one record read again
        assert view.search(AuditFilters(tenant="acme"), page_size=5).total > 0  # attached again

        assert view.close_if_idle(0.0)
        for segment in segments:
            segment.unlink()  # gone while released (retention): their figures go with them
        gone = view.overview(everything, max_age_s=0)
        assert gone["totals"]["requests"] == 0
    finally:
        view.close()
