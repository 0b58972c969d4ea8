"""A shared engine goes down under a running appliance: Redis (the counters) and the OPA
policy server. Each fails closed (nothing goes upstream) and the refusal is audited."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from aiohttp.test_utils import TestServer

from appliance.config.policy import PolicyConfig
from appliance.policy.server import create_app as create_policy_server
from appliance.testing.fakes import FakeOpenAI
from appliance.testing.harness import PASS_THROUGH, openai_upstream
from tests.conftest import StartAppliance
from tests.server.test_upstream_faults import records

SHIPPED_POLICIES = Path(__file__).resolve().parents[2] / "policies"
MSG: Any = [{"role": "user", "content": "Summarise the quarterly plan in one line."}]


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of this test alone (it is killed mid-test), on a unix socket."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not on PATH (Debian package: redis-server)")
    sock = tmp_path / "redis.sock"
    proc = subprocess.Popen(
        [exe, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
         "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 20
    while not sock.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.05)
    try:
        yield f"unix://{sock}", proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def _stages(row: dict[str, Any]) -> dict[str, str]:
    stages = row["stages"]
    return {s["stage"]: s["outcome"] for s in (json.loads(stages) if isinstance(stages, str) else stages)}


async def test_redis_down_fails_closed_and_is_audited(
    start_appliance: StartAppliance, fake_openai: FakeOpenAI,
    redis_server: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, proc = redis_server
    running = await start_appliance(
        openai_upstream("openai", fake_openai.base_url, {"gpt-4o": "gpt-4o"}),
        PASS_THROUGH,
        {"pipeline": {"limits": True, "record": True},
         "limits": {"backend": "redis", "redis_url": url, "redis_password_env": None}},
        key_kw={"limits": {"rpm": 1000}},
    )
    async with openai.AsyncOpenAI(base_url=running.base_url, api_key=running.key, max_retries=0) as c:
        ok = await c.chat.completions.create(model="gpt-4o", messages=MSG)
        assert ok.choices[0].message.content
        proc.kill()
        proc.wait(10)
        sent = len(fake_openai.requests)
        with pytest.raises(openai.APIStatusError) as refused:
            await c.chat.completions.create(model="gpt-4o", messages=MSG)
    assert refused.value.status_code == 503
    assert len(fake_openai.requests) == sent  # nothing went upstream
    row = (await records(running))[refused.value.response.headers["x-request-id"]]
    assert (row["decision"], row["status"]) == ("error", 503)
    assert _stages(row)["limits"] == "error"


async def test_the_policy_server_down_fails_closed_and_is_audited(
    start_appliance: StartAppliance, fake_openai: FakeOpenAI
) -> None:
    opa = TestServer(create_policy_server(PolicyConfig(), SHIPPED_POLICIES), host="127.0.0.1", port=0)
    await opa.start_server()
    try:
        running = await start_appliance(
            openai_upstream("openai", fake_openai.base_url, {"gpt-4o": "gpt-4o"}),
            PASS_THROUGH,
            {"pipeline": {"decide": True, "record": True},
             "policy": {"engine": "opa", "opa_url": f"http://127.0.0.1:{opa.port}",
                        "opa_timeout_s": 0.5}},
        )
        async with openai.AsyncOpenAI(base_url=running.base_url, api_key=running.key, max_retries=0) as c:
            ok = await c.chat.completions.create(model="gpt-4o", messages=MSG)
            assert ok.choices[0].message.content
            await opa.close()  # the policy engine goes away
            sent = len(fake_openai.requests)
            with pytest.raises(openai.PermissionDeniedError) as refused:
                await c.chat.completions.create(model="gpt-4o", messages=MSG)
    finally:
        await opa.close()
    assert "fail closed" in refused.value.message
    assert len(fake_openai.requests) == sent
    row = (await records(running))[refused.value.response.headers["x-request-id"]]
    assert row["decision"] == "deny" and row["status"] == 403
    reasons = row["reasons"]
    assert any("fail closed" in r for r in (json.loads(reasons) if isinstance(reasons, str) else reasons))
