"""Retention purge (per tenant, recorded in the chain) and search filters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appliance.audit.reader import open_reader
from appliance.audit.segments import AuditPaths
from tests.audit._tamper import cli, cli_verify
from tests.audit.conftest import audit_config, make_ctx, record_all


def _ids(data: Path, *args: str) -> set[str]:
    r = cli("search", "--data-dir", str(data), "--json", *args)
    assert r.returncode == 0, r.stderr
    return {json.loads(line)["request_id"] for line in r.stdout.splitlines() if '"request"' in line}


def test_purge_removes_only_expired_records_and_is_recorded(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = audit_config(data, tenant_retention_days={"shortlived": 30})
    # Segment 1: everything expired (dropped whole). Segment 2: mixed (thinned).
    record_all(config, [make_ctx(i, age_days=400) for i in range(5)])
    record_all(config, [make_ctx(i, age_days=200) for i in range(5, 10)]
               + [make_ctx(i, age_days=10) for i in range(10, 15)]
               + [make_ctx(i, tenant="shortlived", age_days=40) for i in range(3)]
               + [make_ctx(i, tenant="shortlived", age_days=20) for i in range(3, 6)]
               + [make_ctx(i, tenant="longlived", age_days=200) for i in range(2)])
    (data / "cfg.toml").write_text('[audit]\ntenant_retention_days = { "shortlived" = 30, "longlived" = 400 }\n')
    r = cli("purge", "--data-dir", str(data), "--config", str(data / "cfg.toml"))
    assert r.returncode == 0, r.stderr
    assert "purged 13 record(s)" in r.stdout and "1 segment(s) dropped" in r.stdout, r.stdout
    kept = _ids(data)
    assert kept == ({f"req_acme_{i:05d}" for i in range(10, 15)}
                    | {f"req_shortlived_{i:05d}" for i in range(3, 6)}
                    | {f"req_longlived_{i:05d}" for i in range(2)})
    rc, out = cli_verify(config, AuditPaths.from_config(config))
    assert rc == 0, out
    r = cli("search", "--data-dir", str(data), "--json", "--kind", "purge")
    (purge,) = [json.loads(x) for x in r.stdout.splitlines()]
    assert purge["extra"]["records"] == 13 and len(purge["extra"]["dropped"]) == 1
    # a second purge finds nothing more
    assert "purged 0 record(s)" in cli("purge", "--data-dir", str(data), "--config", str(data / "cfg.toml")).stdout


@pytest.fixture(scope="module")
def searchable(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("search") / "data"
    record_all(audit_config(data), [
        make_ctx(0, tenant="acme", user="alice", model="gpt-4o", risk="minimal"),
        make_ctx(1, tenant="acme", user="bob", model="llama-local", risk="high", decision=False),
        make_ctx(2, tenant="globex", user="carol", model="gpt-4o", risk="limited", application="hr-bot"),
        make_ctx(3, tenant="globex", user="carol", model="gpt-4o", risk="minimal", age_days=3),
    ])
    return data


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), {"req_acme_00000", "req_acme_00001", "req_globex_00002", "req_globex_00003"}),
        (("--tenant", "globex"), {"req_globex_00002", "req_globex_00003"}),
        (("--user", "bob"), {"req_acme_00001"}),
        (("--model", "llama-local"), {"req_acme_00001"}),
        (("--decision", "deny"), {"req_acme_00001"}),
        (("--risk-class", "high"), {"req_acme_00001"}),
        (("--application", "hr-bot"), {"req_globex_00002"}),
        (("--request-id", "req_globex_00003"), {"req_globex_00003"}),
        (("--since", "1d"), {"req_acme_00000", "req_acme_00001", "req_globex_00002"}),
        (("--until", "1d"), {"req_globex_00003"}),
        (("--tenant", "globex", "--risk-class", "minimal"), {"req_globex_00003"}),
    ],
)
def test_search_filters(searchable: Path, args: tuple[str, ...], expected: set[str]) -> None:
    assert _ids(searchable, *args) == expected


def test_search_json_lines_carry_request_id_decision_status(searchable: Path) -> None:
    r = cli("search", "--data-dir", str(searchable), "--json", "--user", "bob")
    (row,) = [json.loads(x) for x in r.stdout.splitlines()]
    assert (row["request_id"], row["decision"], row["status"]) == ("req_acme_00001", "deny", 403)
    assert row["pii_counts"] == {"IBAN_CODE": 1, "PERSON": 1}
    assert row["reasons"] == ["high-risk use needs approval"]


def test_reader_api(searchable: Path) -> None:
    with open_reader(audit_config(searchable)) as reader:
        assert reader.get("req_acme_00001")["decision"] == "deny"  # type: ignore[index]
        assert reader.get("nope") is None
        rows = reader.sql("SELECT tenant, count(*) FROM records WHERE kind = 'request' GROUP BY ALL ORDER BY 1")
        assert rows == [("acme", 2), ("globex", 2)]
        assert [r["request_id"] for r in reader.search(tenant="acme", decision="allow")] == ["req_acme_00000"]
