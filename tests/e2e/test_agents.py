"""Agent traffic under every control, with the real SDKs: the openai SDK's Responses API
(a local model and a provider speaking the Responses wire format) and the official
``mcp`` SDK as the client of the MCP gateway, in front of an MCP server built with the
same SDK. One appliance process with every stage on serves the whole module."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client
from mcp.shared.exceptions import McpError
from openai import OpenAI

from appliance.testing.fakes import FakeOpenAI
from appliance.testing.fakes.mcp_server import FakeMcpServer
from appliance.testing.harness import (
    UPSTREAM_KEY_ENV,
    ServerProcess,
    create_key,
    merge,
    openai_upstream,
    serve_subprocess,
    to_toml,
)

UPSTREAM_KEY = "sk-agents-upstream"
EMAIL = "jane.roe@example.com"


@dataclass
class Agents:
    server: ServerProcess
    data_dir: Path
    config_path: Path
    openai: FakeOpenAI
    mcp: FakeMcpServer

    def key(self, **kw: Any) -> str:
        return create_key(self.data_dir, **kw)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "appliance", *args, "--config", str(self.config_path),
             "--data-dir", str(self.data_dir)],
            capture_output=True, text=True, timeout=300,
        )

    def records(self, **filters: str) -> list[dict[str, Any]]:
        args = [a for k, v in filters.items() for a in (f"--{k.replace('_', '-')}", v)]
        done = self.cli("audit", "search", "--json", *args)
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def agents(tmp_path_factory: pytest.TempPathFactory, test_models: Any) -> Iterator[Agents]:
    work = tmp_path_factory.mktemp("agents")
    with (
        FakeOpenAI(api_key=UPSTREAM_KEY).running() as fake_openai,
        FakeMcpServer("crm").running() as crm,
    ):
        config = merge(
            openai_upstream("openai", fake_openai.base_url, {"gpt-4o": "gpt-4o"}, region="eu"),
            {
                "providers": {"local": {"models_dir": str(test_models.models_dir)}},
                "policy": {"dir": str(Path(__file__).resolve().parents[2] / "policies")},
                "mcp": {"servers": {"crm": {"url": crm.url, "region": "eu"}}},
                "batch": {"poll_interval_s": 0.05},
            },
        )
        config_path = work / "appliance.toml"
        config_path.write_text(to_toml(config))
        data_dir = work / "data"
        with serve_subprocess(config_path, data_dir, env={UPSTREAM_KEY_ENV: UPSTREAM_KEY}) as server:
            yield Agents(server, data_dir, config_path, fake_openai, crm)


def _openai(agents: Agents, **kw: Any) -> OpenAI:
    key = agents.key(tenant="acme", user="alice", department="engineering", **kw)
    return OpenAI(base_url=agents.server.url + "/v1", api_key=key, max_retries=0)


# -- the Responses API ---------------------------------------------------------------------


def test_responses_pii_redacted_upstream_and_restored(agents: Agents) -> None:
    client = _openai(agents)
    raw = client.responses.with_raw_response.create(
        model="gpt-4o", input=f"Please write to {EMAIL} about the invoice"
    )
    r = raw.parse()
    assert r.output_text == f"echo: Please write to {EMAIL} about the invoice"
    sent = json.dumps(agents.openai.requests[-1].json())
    assert agents.openai.requests[-1].path == "/v1/responses"
    assert EMAIL not in sent and "<EMAIL_ADDRESS_1>" in sent
    assert raw.headers["x-appliance-decision"] == "allow"
    record = agents.records(request_id=raw.headers["x-request-id"])[0]
    assert record["route"] == "responses" and record["pii_total"] >= 1
    # The stored conversation is sealed: the e-mail address is nowhere on disk in clear.
    assert EMAIL.encode() not in (agents.data_dir / "state.db").read_bytes()
    wal = agents.data_dir / "state.db-wal"
    assert not wal.exists() or EMAIL.encode() not in wal.read_bytes()


def test_responses_stream_restores_placeholders(agents: Agents) -> None:
    client = _openai(agents)
    text = f"Call Maria Schneider at {EMAIL} today"
    events = list(client.responses.create(model="gpt-4o", input=text, stream=True))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == f"echo: {text}"
    assert events[-1].response.output_text == deltas  # type: ignore[union-attr]
    sent = json.dumps(agents.openai.requests[-1].json())
    assert EMAIL not in sent and "Maria Schneider" not in sent


def test_responses_streamed_and_continued_on_a_local_model(agents: Agents) -> None:
    client = _openai(agents)
    stream = client.responses.create(
        model="local-chat", input="hello there", max_output_tokens=8, stream=True
    )
    events = list(stream)
    assert events[0].type == "response.created" and events[-1].type in (
        "response.completed", "response.incomplete")
    assert [e.sequence_number for e in events] == list(range(len(events)))
    first = events[-1].response  # type: ignore[union-attr]
    second = client.responses.create(
        model="local-chat", previous_response_id=first.id, max_output_tokens=8,
        input=[{"type": "function_call_output", "call_id": "call_1", "output": "42"}],
    )
    assert second.previous_response_id == first.id and second.output
    assert client.responses.retrieve(second.id).id == second.id


def test_responses_secret_blocked(agents: Agents) -> None:
    client = _openai(agents)
    before = len(agents.openai.requests)
    from openai import PermissionDeniedError

    with pytest.raises(PermissionDeniedError):
        client.responses.create(
            model="gpt-4o", input="my key is sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd"
        )
    assert len(agents.openai.requests) == before


# -- the MCP gateway -----------------------------------------------------------------------


async def _session_run(agents: Agents, key: str, work: Any) -> Any:
    url = agents.server.url + "/mcp/crm"
    async with streamablehttp_client(url, headers={"Authorization": f"Bearer {key}"}) as (
        read, write, _,
    ), ClientSession(read, write) as session:
        await session.initialize()
        return await work(session)


async def test_mcp_lists_only_allowed_tools_and_redacts_arguments(agents: Agents) -> None:
    key = agents.key(tenant="acme", user="agent-1", department="engineering")

    async def work(session: ClientSession) -> Any:
        listed = await session.list_tools()
        names = sorted(t.name for t in listed.tools)
        result = await session.call_tool("lookup_customer", {"email": EMAIL})
        with pytest.raises(McpError) as denied:
            await session.call_tool("update_customer", {"email": EMAIL, "status": "gone"})
        return names, result, denied.value

    names, result, denied = await _session_run(agents, key, work)
    assert names == ["lookup_customer", "send_email"]  # destructive ones hidden
    assert result.isError is False
    assert result.content[0].text == f"customer {EMAIL}: status active"  # restored
    tool, args = agents.mcp.calls[-1]
    assert tool == "lookup_customer" and EMAIL not in args["email"]
    assert args["email"] == "<EMAIL_ADDRESS_1>"
    assert "mcp_destructive_unregistered" in denied.error.data["rules"]
    assert all(t != "update_customer" for t, _ in agents.mcp.calls)

    calls = agents.records(model="mcp:crm/lookup_customer")
    assert calls and calls[-1]["route"] == "mcp.tools/call"
    assert calls[-1]["decision"] == "allow" and calls[-1]["pii_total"] == 1
    assert calls[-1]["extra"]["tool"]["read_only"] is True
    refused = agents.records(model="mcp:crm/update_customer")
    assert refused and refused[-1]["decision"] == "deny"


async def test_mcp_registered_application_may_call_its_destructive_tool(agents: Agents) -> None:
    from appliance.keys.store import ControlPlane, control_plane_path

    control = ControlPlane.open(control_plane_path(agents.data_dir))
    try:  # the deployer registers the application (its purpose is not high-risk)
        control.register_app("acme", "crm-agent", "Keeps customer records up to date",
                             None, "minimal")
    finally:
        control.close()
    key = agents.key(tenant="acme", user="crm-bot", department="engineering",
                     application="crm-agent")

    async def work(session: ClientSession) -> Any:
        names = sorted(t.name for t in (await session.list_tools()).tools)
        result = await session.call_tool("update_customer", {"email": "x@example.org",
                                                             "status": "vip"})
        return names, result

    names, result = await _session_run(agents, key, work)
    assert names == ["lookup_customer", "send_email", "update_customer"]  # not delete_customer
    assert result.isError is False
    assert agents.mcp.calls[-1][0] == "update_customer"


async def test_mcp_secret_in_arguments_is_refused_and_usage_counted_per_tool(
    agents: Agents,
) -> None:
    import httpx

    key = agents.key(tenant="acme", user="agent-3", department="engineering")
    secret = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd"
    before = len(agents.mcp.calls)

    async def work(session: ClientSession) -> Any:
        with pytest.raises(McpError) as refused:
            await session.call_tool("send_email", {"to": "ops@example.org",
                                                   "body": f"the key is {secret}"})
        return refused.value

    refused = await _session_run(agents, key, work)
    assert refused.error.code == -32001 and secret not in str(refused.error)
    assert len(agents.mcp.calls) == before  # never reached the upstream
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(agents.server.url + "/metrics")).text
    counted = [line for line in metrics.splitlines()
               if line.startswith("appliance_requests_total")
               and 'model="mcp:crm/lookup_customer"' in line]
    assert counted and 'route="mcp.tools/call"' in counted[0]


async def test_mcp_rejects_bad_keys(agents: Agents) -> None:
    import httpx

    async with httpx.AsyncClient() as client:
        r = await client.post(agents.server.url + "/mcp/crm", json={
            "jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert r.status_code == 401
        r = await client.post(agents.server.url + "/mcp/nope", json={})
        assert r.status_code == 404


# -- batches -------------------------------------------------------------------------------


def test_batch_lines_each_pass_the_pipeline_and_are_recorded(agents: Agents) -> None:
    import time

    client = _openai(agents)
    secret = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd"
    lines = [
        {"custom_id": "mail", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": "gpt-4o", "messages": [{"role": "user", "content": f"Mail {EMAIL}"}]}},
        {"custom_id": "secret", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": "gpt-4o", "messages": [{"role": "user", "content": f"key {secret}"}]}},
    ]
    data = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
    upload = client.files.create(file=("lines.jsonl", data), purpose="batch")
    assert EMAIL.encode() not in (agents.data_dir / "state.db").read_bytes()
    batch = client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
    for _ in range(600):
        batch = client.batches.retrieve(batch.id)
        if batch.status in ("completed", "failed"):
            break
        time.sleep(0.1)
    assert batch.status == "completed"
    assert batch.output_file_id and batch.error_file_id
    (ok,) = [json.loads(x) for x in client.files.content(batch.output_file_id).text.splitlines()]
    (refused,) = [json.loads(x) for x in client.files.content(batch.error_file_id).text.splitlines()]
    assert ok["response"]["body"]["choices"][0]["message"]["content"] == f"echo: Mail {EMAIL}"
    # The allowed line went on in the provider's own batch API, redacted; the refused one
    # never left. The caller's custom ids stay in the appliance.
    uploaded = b"".join(agents.openai.batch_api.files.values())
    assert b"<EMAIL_ADDRESS_1>" in uploaded
    assert EMAIL.encode() not in uploaded and secret.encode() not in uploaded
    assert b'"mail"' not in uploaded
    assert refused["custom_id"] == "secret" and refused["response"]["status_code"] == 403
    for line, decision in ((ok, "allow"), (refused, "deny")):
        (record,) = agents.records(request_id=line["response"]["request_id"])
        assert record["decision"] == decision and record["route"] == "chat.completions"


# -- reports -------------------------------------------------------------------------------


def test_reports_know_tool_calls(agents: Agents, tmp_path: Path) -> None:
    import datetime as dt

    today = dt.datetime.now(dt.UTC).date()
    docs = {}
    for kind in ("art30", "art12"):
        out = tmp_path / f"{kind}.json"
        done = agents.cli("report", "export", "--kind", kind, "--format", "json", "--out",
                          str(out), "--from", str(today - dt.timedelta(days=1)), "--to",
                          str(today), "--tenant", "acme")
        assert done.returncode == 0, done.stdout + done.stderr
        docs[kind] = json.loads(out.read_bytes())
    recipients = docs["art30"]["sections"]["recipients"]["rows"]
    mcp = [r for r in recipients if r["recipient"] == "mcp:crm"]
    assert mcp and mcp[0]["recipient_kind"] == "MCP server (tool calls)"
    assert mcp[0]["region"] == "eu" and mcp[0]["requests_with_personal_data"] >= 1
    assert docs["art12"]["summary"]["tool_calls"] >= 3
    tools = {r.get("tool") for r in docs["art12"]["detail"]["rows"]}
    assert "crm/lookup_customer" in tools


def test_mcp_sdk_2_client(agents: Agents) -> None:
    """The other SDK generation speaks the same wire protocol (2.x probes server/discover
    first and falls back to initialize). Needs an install of mcp 2.x at APPLIANCE_MCP2_PATH
    (``pip install --target DIR 'mcp>=2,<3'``): 2.x cannot share an environment with 1.x."""
    import os

    path = os.environ.get("APPLIANCE_MCP2_PATH")
    if not path:
        pytest.skip("set APPLIANCE_MCP2_PATH to an install of mcp 2.x")
    key = agents.key(tenant="acme", user="agent-2", department="engineering")
    done = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("mcp2_client.py")),
         agents.server.url + "/mcp/crm", key, EMAIL],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": path},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen == {"tools": ["lookup_customer", "send_email"],
                    "text": f"customer {EMAIL}: status active", "is_error": False}
    assert agents.mcp.calls[-1] == ("lookup_customer", {"email": "<EMAIL_ADDRESS_1>"})
