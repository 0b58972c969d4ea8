"""When a shared engine is down, each replica does what its config says, and says so.

Two single-replica deployments on their own engines (this test stops them): "strict"
on the defaults (fail closed everywhere), "lenient" with ``[state] outage_grace_s`` and
``[fleet] redis_outage = "open"``, its audit log shipped to an S3 archive. PostgreSQL,
then Redis, then the object store go down; requests get what the mode promises (503
``engine_unavailable`` in the caller's format when failing closed), ``/readyz`` names
the engine, the audit log records the refusals and the uncounted admissions, ``doctor``
names the outage, and a sealed segment the archive cannot take stays on local disk.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from appliance.audit.keys import load_signing_key
from appliance.testing.engines import Postgres, postgres, redis_server, s3_server
from appliance.testing.fakes import FakeOpenAI
from appliance.testing.fleet import Fleet
from appliance.testing.harness import PASS_THROUGH, UPSTREAM_KEY_ENV, merge, openai_upstream
from tests.fleet.conftest import FAKE_KEY, _need

BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Say hello."}]}


@dataclass
class Outage:
    pg: Postgres
    redis: ExitStack
    s3: ExitStack
    strict: Fleet
    lenient: Fleet

    def key(self, fleet: Fleet) -> str:
        made = fleet.cli("keys", "create", "--tenant", "acme", "--user", "u", "--rpm", "1000", "--json")
        assert made.returncode == 0, made.stderr
        return str(json.loads(made.stdout)["key"])


@pytest.fixture
def outage(tmp_path: Path) -> Iterator[Outage]:
    _need("/usr/lib/postgresql/15/bin/initdb", "redis-server")
    shared = tmp_path / "shared"
    shared.mkdir()
    load_signing_key(shared / "audit-signing.pem", shared / "audit-signing.pub.pem")
    with ExitStack() as stack:
        pg = stack.enter_context(postgres())
        redis_stack, s3_stack = ExitStack(), ExitStack()
        stack.callback(redis_stack.close)
        stack.callback(s3_stack.close)
        redis_url = redis_stack.enter_context(redis_server())
        s3 = s3_stack.enter_context(s3_server(("audit",)))
        fake = stack.enter_context(FakeOpenAI(api_key=FAKE_KEY, record=False).running())
        env = {**s3.env, "APPLIANCE_STATE_DSN": pg.dsn, UPSTREAM_KEY_ENV: FAKE_KEY,
               "APPLIANCE_AUDIT_DB_KEY": secrets.token_hex(16),
               "APPLIANCE_AUDIT_MASTER_KEY": secrets.token_hex(32)}
        base: dict[str, Any] = merge(
            openai_upstream("openai", fake.base_url, {"gpt-4o": "gpt-4o"}), PASS_THROUGH,
            {"pipeline": {"decide": True, "limits": True, "record": True},
             "state": {"backend": "postgres", "dsn_env": "APPLIANCE_STATE_DSN", "timeout_s": 1.0},
             "limits": {"backend": "redis", "redis_url": redis_url},
             "audit": {"signing_key_file": str(shared / "audit-signing.pem")},
             "fleet": {"drain_unready_s": 0.2}},
        )
        strict = Fleet.create(tmp_path / "strict", merge(base, {"limits": {"redis_prefix": "strict"}}), env, 1)
        lenient = Fleet.create(tmp_path / "lenient", merge(base, {
            "limits": {"redis_prefix": "lenient"},
            "state": {"outage_grace_s": 60},
            "fleet": {"redis_outage": "open"},
            "audit": {"archive_url": "s3://audit/lenient", "archive_poll_s": 0.3},
        }), env, 1)
        upgrade = strict.cli("db", "upgrade")
        assert upgrade.returncode == 0, upgrade.stderr
        strict.start()
        lenient.start()
        stack.callback(strict.stop)
        stack.callback(lenient.stop)
        yield Outage(pg, redis_stack, s3_stack, strict, lenient)


async def _chat(session: aiohttp.ClientSession, fleet: Fleet, key: str) -> tuple[int, dict[str, Any]]:
    async with session.post(f"{fleet.replicas[0].url}/v1/chat/completions", json=BODY,
                            headers={"Authorization": f"Bearer {key}"}) as r:
        return r.status, await r.json(content_type=None)


async def _readyz(session: aiohttp.ClientSession, fleet: Fleet) -> tuple[int, dict[str, Any]]:
    async with session.get(f"{fleet.replicas[0].url}/readyz") as r:
        return r.status, await r.json()


async def _until_degraded(session: aiohttp.ClientSession, fleet: Fleet, component: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        status, body = await _readyz(session, fleet)
        if component in body.get("degraded", []):
            assert status == 200, body  # still in the balancer: it answers in the API's format
            return body
        assert time.monotonic() < deadline, f"{component} never reported degraded: {body}"
        await asyncio.sleep(0.1)


def _refused(status: int, body: dict[str, Any]) -> bool:
    return status == 503 and body["error"]["code"] == "engine_unavailable"


@pytest.mark.timeout(600)
def test_each_engine_down_behaves_as_configured_and_is_visible(outage: Outage) -> None:
    strict, lenient = outage.strict, outage.lenient
    keys = {"strict": outage.key(strict), "lenient": outage.key(lenient)}
    unseen = outage.key(lenient)  # created, never used: not in any cache

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            for name, fleet in (("strict", strict), ("lenient", lenient)):
                assert (await _chat(session, fleet, keys[name]))[0] == 200  # cached now

            # PostgreSQL down: strict refuses at once; lenient serves the cached key only.
            outage.pg.stop()
            body = await _until_degraded(session, strict, "control_plane")
            assert body["checks"]["control_plane"]["on_outage"] == "fail closed"
            body = await _until_degraded(session, lenient, "control_plane")
            assert "cached keys served for 60 s" in body["checks"]["control_plane"]["on_outage"]
            assert _refused(*await _chat(session, strict, keys["strict"]))
            assert (await _chat(session, lenient, keys["lenient"]))[0] == 200
            assert _refused(*await _chat(session, lenient, unseen))

            # Back: both serve again without a restart.
            outage.pg.start()
            deadline = time.monotonic() + 15
            while (await _chat(session, strict, keys["strict"]))[0] != 200:
                assert time.monotonic() < deadline, "strict replica never recovered from the database outage"
                await asyncio.sleep(0.2)
            assert (await _chat(session, lenient, unseen))[0] == 200

            # Redis down: strict refuses, lenient admits uncounted.
            outage.redis.close()
            await _until_degraded(session, strict, "limits")
            body = await _until_degraded(session, lenient, "limits")
            assert body["checks"]["limits"]["on_outage"] == "open"
            assert _refused(*await _chat(session, strict, keys["strict"]))
            assert (await _chat(session, lenient, keys["lenient"]))[0] == 200

    asyncio.run(scenario())

    doctor = strict.cli("doctor", "--check", "counters", "--json")
    checks = {c["check"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert doctor.returncode == 1 and checks["counters"]["status"] == "fail", doctor.stdout
    assert "fail closed" in checks["counters"]["message"]

    # The audit log says what happened: the refusals (strict), the uncounted admission (lenient).
    search = strict.cli("audit", "search", "--json")
    assert search.returncode == 0, search.stderr
    rows = [json.loads(line) for line in search.stdout.splitlines() if line.strip()]
    refused = [r for r in rows if r["status"] == 503 and "engine_unavailable" in str(r["error"])]
    assert len(refused) == 2, [(r["status"], r["error"]) for r in rows]  # database, then Redis
    search = lenient.cli("audit", "search", "--json", "--fleet")
    assert search.returncode == 0, search.stderr
    rows = [json.loads(line) for line in search.stdout.splitlines() if line.strip()]
    assert any("limits not enforced" in str(r["reasons"]) for r in rows), [r["reasons"] for r in rows]

    # Object storage down: the replica keeps serving, says so, and keeps every sealed
    # segment on its disk until a copy is confirmed.
    outage.s3.close()

    async def archive_down() -> None:
        async with aiohttp.ClientSession() as session:
            body = await _until_degraded(session, lenient, "audit")
            assert body["checks"]["audit"]["archive"]["last_error"]
            assert (await _chat(session, lenient, keys["lenient"]))[0] == 200

    asyncio.run(archive_down())
    lenient.signal(0, signal.SIGTERM)  # seals at shutdown; the copy fails
    assert lenient.wait(0) == 0
    replica = lenient.replicas[0]
    assert list((replica.data_dir / "audit" / "segments").glob("seg-*.duckdb")), "sealed segment lost"
    doctor = lenient.cli("doctor", "--check", "archive", "--json")
    checks = {c["check"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert checks["archive"]["status"] == "fail", doctor.stdout
    assert "wait locally" in checks["archive"]["message"]
    assert not any(n in replica.log() for n in ("Traceback",)), replica.log()[-3000:]
