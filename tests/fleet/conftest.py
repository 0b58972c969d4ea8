"""A fleet on loopback: PostgreSQL (a throwaway cluster), Redis, an S3-compatible store
(moto: a stand-in for real object storage), a fake upstream, three replicas as real
processes and HAProxy with the shipped config in front of them."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from appliance.audit.keys import load_signing_key
from appliance.policy.bundle import build, new_signing_key
from appliance.policy.source import load_source
from appliance.testing.engines import S3, Postgres, haproxy, postgres, redis_server, s3_server
from appliance.testing.fakes import FakeOpenAI
from appliance.testing.fleet import Fleet
from appliance.testing.harness import PASS_THROUGH, UPSTREAM_KEY_ENV, merge, openai_upstream

ROOT = Path(__file__).resolve().parents[2]
HAPROXY_CFG = ROOT / "packaging" / "haproxy" / "haproxy.cfg"
ADMIN_KEY = "admin-" + secrets.token_hex(8)
FAKE_KEY = "sk-upstream-fleet"


def _need(*exes: str) -> None:
    for exe in exes:
        if shutil.which(exe) is None and not Path(exe).exists():
            pytest.skip(f"{exe} is not installed (see .ci/run)")


@dataclass
class Engines:
    pg: Postgres
    redis_url: str
    s3: S3


@pytest.fixture(scope="session")
def engines() -> Iterator[Engines]:
    _need("/usr/lib/postgresql/15/bin/initdb", "redis-server", "haproxy")
    with postgres() as pg, redis_server() as redis_url, s3_server(("audit", "policy")) as s3:
        yield Engines(pg, redis_url, s3)


@dataclass
class Bundles:
    """The policy bundle the replicas poll, and the keys to sign others with."""

    private: bytes
    public_path: Path
    s3: S3
    key: str
    first_revision: str = ""

    def publish(self, data: bytes) -> None:
        import botocore.session

        client = botocore.session.get_session().create_client(
            "s3", endpoint_url=self.s3.endpoint, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing")
        client.put_object(Bucket="policy", Key=self.key, Body=data)


@dataclass
class RunningFleet:
    fleet: Fleet
    lb_port: int
    bundles: Bundles
    fake: FakeOpenAI

    @property
    def lb_url(self) -> str:
        return f"http://127.0.0.1:{self.lb_port}"

    def urls(self) -> list[str]:
        return [r.url for r in self.fleet.replicas]


def fleet_config(engines: Engines, shared: Path, fake_url: str, prefix: str) -> dict[str, Any]:
    return merge(
        openai_upstream("openai", fake_url, {"gpt-4o": "gpt-4o"}),
        PASS_THROUGH,
        {
            "pipeline": {"decide": True, "limits": True, "record": True},
            "state": {"backend": "postgres", "dsn_env": "APPLIANCE_STATE_DSN"},
            "limits": {"backend": "redis", "redis_url": engines.redis_url, "redis_prefix": prefix},
            "policy": {"bundle_url": f"s3://policy/{prefix}/bundle.tar.gz",
                       "bundle_public_key_file": str(shared / "bundle.pub"), "bundle_poll_s": 0.5},
            "audit": {"archive_url": f"s3://audit/{prefix}", "archive_poll_s": 0.5,
                      "signing_key_file": str(shared / "audit-signing.pem"),
                      "checkpoint_interval_s": 1.0},
            "fleet": {"drain_unready_s": 1.5, "drain_timeout_s": 20},
        },
    )


@contextmanager
def start_fleet(engines: Engines, root: Path) -> Iterator[RunningFleet]:
    """Three replicas behind HAProxy, the shipped policies as the first signed bundle."""
    shared = root / "shared"
    shared.mkdir(parents=True)
    name = "f" + secrets.token_hex(4)  # this fleet's bundle, archive and counters
    load_signing_key(shared / "audit-signing.pem", shared / "audit-signing.pub.pem")
    private, public = new_signing_key()
    (shared / "bundle.pub").write_bytes(public)
    bundles = Bundles(private, shared / "bundle.pub", engines.s3, f"{name}/bundle.tar.gz")
    data, bundles.first_revision = build(load_source(ROOT / "policies"), private)
    bundles.publish(data)
    env = {
        **engines.s3.env,
        "APPLIANCE_STATE_DSN": engines.pg.dsn,
        "APPLIANCE_ADMIN_KEY": ADMIN_KEY,
        "APPLIANCE_AUDIT_DB_KEY": secrets.token_hex(16),
        "APPLIANCE_AUDIT_MASTER_KEY": secrets.token_hex(32),
        UPSTREAM_KEY_ENV: FAKE_KEY,
    }
    with FakeOpenAI(api_key=FAKE_KEY, record=False).running() as fake:
        fleet = Fleet.create(root, fleet_config(engines, shared, fake.base_url, name), env, 3)
        upgrade = fleet.cli("db", "upgrade")
        assert upgrade.returncode == 0, upgrade.stderr
        try:
            fleet.start()
            with haproxy(HAPROXY_CFG, [r.port for r in fleet.replicas]) as lb_port:
                yield RunningFleet(fleet, lb_port, bundles, fake)
        finally:
            fleet.stop()


@pytest.fixture(scope="session")
def running_fleet(engines: Engines, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningFleet]:
    """One fleet shared by the tests that leave it as they found it."""
    with start_fleet(engines, tmp_path_factory.mktemp("fleet")) as fleet:
        yield fleet


async def chat(session: aiohttp.ClientSession, url: str, key: str) -> aiohttp.ClientResponse:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Say hello."}]}
    async with session.post(f"{url}/v1/chat/completions", json=body,
                            headers={"Authorization": f"Bearer {key}"}) as r:
        await r.read()
        return r


async def create_key(session: aiohttp.ClientSession, url: str, **fields: Any) -> dict[str, Any]:
    body = {"tenant": "acme", "user": "alice", **fields}
    async with session.post(f"{url}/admin/keys", json=body,
                            headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as r:
        assert r.status == 201, await r.text()
        created: dict[str, Any] = await r.json()
        return created
