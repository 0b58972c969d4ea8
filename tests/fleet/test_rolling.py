"""Rolling upgrades lose nothing: 3,000 requests through HAProxy while one replica is
SIGKILLed (and restarted, as its pod would be) and another gets SIGTERM (it turns
unready, drains, seals and ships). Every acknowledged request is then found by
``audit search --fleet``, ``audit verify --fleet`` passes and the usage report counts
every one of them."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import signal
import threading
import time
from pathlib import Path

import aiohttp
import pytest

from tests.fleet.conftest import Engines, RunningFleet, create_key, start_fleet

TOTAL = 3000
CLIENTS = 16


@pytest.fixture
def rolling_fleet(engines: Engines, tmp_path: Path):  # type: ignore[no-untyped-def]
    with start_fleet(engines, tmp_path / "rolling") as fleet:
        yield fleet


async def _traffic(url: str, key: str, acked: list[str], failed: list[float], sent: list[int]) -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "One more, please."}]}
    headers = {"Authorization": f"Bearer {key}"}

    async def client(session: aiohttp.ClientSession) -> None:
        while sent[0] < TOTAL:
            sent[0] += 1
            try:
                async with session.post(f"{url}/v1/chat/completions", json=body, headers=headers) as r:
                    await r.read()
                    if r.status == 200:
                        acked.append(r.headers["x-request-id"])
                    else:
                        failed.append(time.monotonic())
            except (aiohttp.ClientError, TimeoutError):
                failed.append(time.monotonic())

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        await asyncio.gather(*(client(session) for _ in range(CLIENTS)))


@pytest.mark.timeout(900)
def test_sigkill_and_sigterm_under_load_lose_no_acknowledged_request(
    rolling_fleet: RunningFleet, tmp_path: Path
) -> None:
    fleet = rolling_fleet.fleet

    async def key() -> str:
        async with aiohttp.ClientSession() as session:
            return str((await create_key(session, fleet.replicas[0].url, tenant="rolling"))["key"])

    api_key = asyncio.run(key())
    acked: list[str] = []
    failed: list[float] = []
    sent = [0]
    load = threading.Thread(target=lambda: asyncio.run(_traffic(rolling_fleet.lb_url, api_key, acked, failed, sent)))
    load.start()

    def when(n: int) -> None:
        deadline = time.monotonic() + 300
        while len(acked) < n and load.is_alive():
            assert time.monotonic() < deadline, f"only {len(acked)} acknowledged"
            time.sleep(0.01)

    when(TOTAL // 3)
    fleet.signal(1, signal.SIGKILL)  # replica2 dies mid-request, its segment unsealed
    fleet.wait(1)
    fleet.start(1)  # its pod's container restarts on the same disk: recovers, seals, ships
    when(2 * TOTAL // 3)
    terminated_at = time.monotonic()
    failed_before_term = len(failed)
    fleet.signal(2, signal.SIGTERM)  # replica3: unready, drains, seals, ships, exits
    load.join(600)
    assert fleet.wait(2) == 0
    assert "listening" in fleet.replicas[2].log()
    assert len(failed) == failed_before_term, (
        f"{len(failed) - failed_before_term} requests failed after SIGTERM at {terminated_at:.1f}")
    assert len(acked) >= TOTAL - CLIENTS  # only requests in flight at the SIGKILL may fail

    search = fleet.cli("audit", "search", "--fleet", "--json", "--tenant", "rolling", replica=0)
    assert search.returncode == 0, search.stderr
    rows = [json.loads(line) for line in search.stdout.splitlines() if line.strip()]
    found = {r["request_id"] for r in rows}
    missing = set(acked) - found
    assert not missing, f"{len(missing)} acknowledged requests missing from the fleet's audit trail"
    replicas = {r["request_id"].split("_")[0] for r in rows}
    assert replicas  # sanity: rows parsed

    public = fleet.root / "shared" / "audit-signing.pub.pem"
    verify = fleet.cli("audit", "verify", "--fleet", "--public-key", str(public), replica=0)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "OK:" in verify.stdout

    today = dt.datetime.now(dt.UTC).date().isoformat()
    out = tmp_path / "usage.json"
    report = fleet.cli("report", "export", "--fleet", "--kind", "usage", "--from", today, "--to", today,
                       "--tenant", "rolling", "--format", "json", "--out", str(out),
                       "--public-key", str(public), replica=0)
    assert report.returncode == 0, report.stderr
    assert f"{len(rows):,} records" in report.stderr, report.stderr
    assert len(rows) >= len(acked)
