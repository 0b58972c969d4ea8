"""The admin API (guarded by the admin key) and the WebSocket stream."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from openai import AsyncOpenAI

from tests.conftest import Running, StartAppliance

ADMIN = "admin-secret-for-tests"


@pytest.fixture
async def running(
    start_appliance: StartAppliance, openai_models: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> Running:
    monkeypatch.setenv("APPLIANCE_ADMIN_KEY", ADMIN)
    return await start_appliance(openai_models)


async def test_admin_keys_lifecycle(running: Running) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    async with aiohttp.ClientSession(running.url) as http:
        async with http.get("/admin/keys") as r:
            assert r.status == 401
        async with http.get("/admin/keys", headers={"Authorization": f"Bearer {running.key}"}) as r:
            assert r.status == 401  # an ordinary key is no admin key
        body = {"tenant": "acme", "user": "carol", "department": "legal", "roles": ["auditor"]}
        async with http.post("/admin/keys", json=body, headers=admin) as r:
            assert r.status == 201
            created = await r.json()
        async with http.post("/admin/keys", json={"tenant": "acme"}, headers=admin) as r:
            assert r.status == 400
        async with AsyncOpenAI(base_url=running.base_url, api_key=created["key"]) as c:
            ids = [m.id async for m in c.models.list()]
            assert "gpt-4o" in ids
        async with http.get("/admin/keys", headers=admin) as r:
            listed = (await r.json())["data"]
            assert any(k["id"] == created["id"] and k["department"] == "legal" for k in listed)
            assert created["key"] not in await r.text()
        async with http.delete(f"/admin/keys/{created['id']}", headers=admin) as r:
            assert r.status == 200
        async with http.delete("/admin/keys/0000000000000000", headers=admin) as r:
            assert r.status == 404


async def test_admin_registers_an_application_with_its_art9_bases(running: Running) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    app = {"tenant": "acme", "name": "sick-notes", "purpose": "Files employees' sick notes"}
    async with aiohttp.ClientSession(running.url) as http:
        body = {**app, "art9_basis": {"health": "employment"}}
        async with http.post("/admin/apps", json=body, headers=admin) as r:
            assert r.status == 201, await r.text()
            assert (await r.json())["art9_basis"] == {"HEALTH": "employment"}
        for bad in ({"HEALTH": "because"}, {"HOBBIES": "employment"}, ["HEALTH"]):
            async with http.post("/admin/apps", json={**app, "art9_basis": bad}, headers=admin) as r:
                assert r.status == 400
                assert "error" in await r.json()
        async with http.post("/admin/apps", json=app, headers=admin) as r:
            assert (await r.json())["art9_basis"] == {"HEALTH": "employment"}  # kept
        async with http.get("/admin/apps", headers=admin) as r:
            listed = (await r.json())["data"]
            assert [a["art9_basis"] for a in listed if a["name"] == "sick-notes"] == [
                {"HEALTH": "employment"}]


async def test_admin_disabled_without_env(
    start_appliance: StartAppliance, openai_models: dict[str, Any]
) -> None:
    running = await start_appliance(openai_models)
    async with aiohttp.ClientSession(running.url) as http:
        async with http.get("/admin/keys", headers={"Authorization": "Bearer x"}) as r:
            assert r.status == 403


async def test_realtime_websocket_stream(running: Running) -> None:
    headers = {"Authorization": f"Bearer {running.key}"}
    async with aiohttp.ClientSession(running.url) as http:
        async with http.ws_connect("/v1/realtime/chat", headers=headers) as ws:
            await ws.send_json({"model": "gpt-4o", "messages": [{"role": "user", "content": "a b c"}]})
            messages = [m.json() async for m in ws]
    assert messages[0]["type"] == "start"
    assert messages[0]["headers"]["x-request-id"].startswith("req_")
    text = "".join(m["chunk"]["choices"][0]["delta"].get("content") or "" for m in messages if m["type"] == "chunk")
    assert text == "echo: a b c"
    assert messages[-1]["type"] == "done" and messages[-1]["usage"]["total_tokens"] > 0


async def test_realtime_websocket_errors(running: Running) -> None:
    async with aiohttp.ClientSession(running.url) as http:
        async with http.ws_connect("/v1/realtime/chat") as ws:
            await ws.send_json({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]})
            messages = [m.json() async for m in ws]
        assert messages[-1]["type"] == "error" and messages[-1]["status"] == 401
        headers = {"Authorization": f"Bearer {running.key}"}
        async with http.ws_connect("/v1/realtime/chat", headers=headers) as ws:
            await ws.send_str("not json")
            messages = [m.json() async for m in ws]
        assert messages[-1]["type"] == "error" and messages[-1]["status"] == 400
