"""The OPA REST path through opa-python-client.

By default the server is ``appliance policy serve``'s app on port 0; set ``OPA_URL``
(e.g. http://127.0.0.1:8181) to run the same tests unchanged against a real OPA. Each
test uploads the shipped policies and data through the client, as one would to OPA.
"""

from __future__ import annotations

import copy
import os
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestServer
from opa_client.opa_async import AsyncOpaClient

from appliance.config import load_config
from appliance.core.context import Context, Principal
from appliance.core.findings import PolicyFindings
from appliance.pipeline.decide import DecideStage
from appliance.config.policy import PolicyConfig
from appliance.policy.input import example_input
from appliance.policy.server import create_app
from appliance.policy.source import load_source
from tests.policy.conftest import SHIPPED


@pytest.fixture
async def opa_url() -> AsyncIterator[str]:
    external = os.environ.get("OPA_URL")
    if external:
        yield external
        return
    server = TestServer(create_app(PolicyConfig(), None), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()


@pytest.fixture
async def client(opa_url: str) -> AsyncIterator[AsyncOpaClient]:
    url = urlsplit(opa_url)
    async with AsyncOpaClient(host=url.hostname or "127.0.0.1", port=url.port or 8181, retries=0) as c:
        source = load_source(SHIPPED)
        for name, text in source.modules.items():
            assert await c.update_policy_from_string(text, f"appliance/{name}")
        for key, value in source.data.items():
            await c.update_or_create_data(value, key)
        yield c


async def test_health(client: AsyncOpaClient) -> None:
    assert await client.check_health() is True


async def test_decision_over_rest(client: AsyncOpaClient) -> None:
    allowed = await client.query_rule(example_input(), "appliance.main", "decision")
    assert allowed["result"]["allow"] is True
    doc = copy.deepcopy(example_input())
    doc["risk"]["class"] = "prohibited"
    denied = await client.query_rule(doc, "appliance.main", "decision")
    assert denied["result"]["allow"] is False
    assert "ai_act_art5_prohibited" in denied["result"]["rules"]


async def test_undefined_answers_empty_object(client: AsyncOpaClient) -> None:
    assert await client.query_rule({}, "appliance.main", "no_such_rule") == {}


async def test_policy_put_get_delete(client: AsyncOpaClient) -> None:
    pid = f"extra/{uuid.uuid4().hex}"
    text = "package extra.probe\n\nimport rego.v1\n\nanswer := input.x * 2\n"
    assert await client.update_policy_from_string(text, pid)
    assert (await client.query_rule({"x": 21}, "extra.probe", "answer"))["result"] == 42
    got = await client.get_policy(pid)
    assert got["result"]["raw"] == text
    assert pid in await client.get_policies_list()
    assert await client.delete_policy(pid)
    assert await client.query_rule({"x": 21}, "extra.probe", "answer") == {}


async def test_syntax_error_is_rejected(client: AsyncOpaClient) -> None:
    with pytest.raises(Exception):  # noqa: B017 - the client raises its own parse error types
        await client.update_policy_from_string("package broken\n\nimport rego.v1\n\np if {\n", "broken")
    assert (await client.query_rule(example_input(), "appliance.main", "decision"))["result"]["allow"] is True


async def test_decide_stage_with_opa_engine(client: AsyncOpaClient, opa_url: str) -> None:
    stage = DecideStage(load_config(overrides={"policy": {"engine": "opa", "opa_url": opa_url}}))
    await stage.start()
    try:
        ctx = Context(
            request_id="r1", route="chat.completions", api_key=None,
            body={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
            principal=Principal("k1", "acme", "alice", "interns"),
            requested_model="gpt-4o-mini", model="gpt-4o-mini", provider="openai", provider_region="eu",
        )
        v = await stage.run(ctx)
        assert v.outcome == "deny"
        assert isinstance(v.findings, PolicyFindings) and "access_model" in v.findings.rules
    finally:
        await stage.aclose()
