"""The authorization matrix: every route of the router against every kind of credential.

Credentials: none, malformed, a well-formed key with a wrong secret, a revoked key, an
expired key, the admin key on a tenant route, a tenant key on an admin route, another
tenant's valid key, and the owner's own. Every route must be classified below (public,
tenant, admin), so a route added without a decision on who may call it fails the first
test. A tenant reaching another tenant's stored responses, files or batches gets 404
(never 403: the ids of others are not confirmed), and its lists never show them.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from appliance.keys.store import ControlPlane, control_plane_path
from appliance.testing.harness import merge
from tests.conftest import Running, StartAppliance
from tests.server.test_openapi import router_operations
from appliance.testing.engines import free_port as _free_port

ADMIN = "admin-matrix-secret"
MSG = [{"role": "user", "content": "hello"}]

PUBLIC, TENANT, ADMIN_ONLY = "public", "tenant", "admin"

#: Who may call each route; a new route fails test_every_route_is_classified until listed.
ROUTES: dict[tuple[str, str], str] = {
    ("/healthz", "get"): PUBLIC,
    ("/readyz", "get"): PUBLIC,
    ("/openapi.json", "get"): PUBLIC,
    ("/metrics", "get"): ADMIN_ONLY,  # with [limits] metrics_require_admin_key, as here
    ("/v1/chat/completions", "post"): TENANT,
    ("/v1/completions", "post"): TENANT,
    ("/v1/embeddings", "post"): TENANT,
    ("/v1/moderations", "post"): TENANT,
    ("/v1/messages", "post"): TENANT,
    ("/v1/models", "get"): TENANT,
    ("/v1/models/{model}", "get"): TENANT,
    ("/v1/responses", "post"): TENANT,
    ("/v1/responses/{response_id}", "get"): TENANT,
    ("/v1/responses/{response_id}", "delete"): TENANT,
    ("/v1/responses/{response_id}/input_items", "get"): TENANT,
    ("/v1/files", "get"): TENANT,
    ("/v1/files", "post"): TENANT,
    ("/v1/files/{file_id}", "get"): TENANT,
    ("/v1/files/{file_id}", "delete"): TENANT,
    ("/v1/files/{file_id}/content", "get"): TENANT,
    ("/v1/batches", "get"): TENANT,
    ("/v1/batches", "post"): TENANT,
    ("/v1/batches/{batch_id}", "get"): TENANT,
    ("/v1/batches/{batch_id}/cancel", "post"): TENANT,
    ("/v1/realtime/chat", "get"): TENANT,  # checked over a real WebSocket below
    ("/mcp/{server}", "post"): TENANT,
    ("/mcp/{server}", "get"): PUBLIC,  # 405 to everyone: no stream is offered
    ("/mcp/{server}", "delete"): PUBLIC,  # no session is kept: nothing to end
    ("/admin/keys", "get"): ADMIN_ONLY,
    ("/admin/keys", "post"): ADMIN_ONLY,
    ("/admin/keys/{key_id}", "delete"): ADMIN_ONLY,
    ("/admin/apps", "get"): ADMIN_ONLY,
    ("/admin/apps", "post"): ADMIN_ONLY,
}

#: Credentials that must never get past authentication (Authorization header values).
REFUSED = {
    "none": None,
    "malformed": "Bearer not a key at all",
    "basic": "Basic Zm9vOmJhcg==",
    "wrong_secret": None,  # filled in per run: a real key id with another secret
    "revoked": None,
    "expired": None,
}


@dataclass
class World:
    running: Running
    keys: dict[str, str]  # credential name -> key
    ids: dict[str, str]  # path parameter -> an object of tenant A's


async def _json(r: aiohttp.ClientResponse) -> Any:
    return json.loads(await r.text())


async def _objects_of_tenant_a(http: aiohttp.ClientSession, key: str) -> dict[str, str]:
    auth = {"Authorization": f"Bearer {key}"}
    async with http.post("/v1/responses", json={"model": "gpt-4o", "input": "remember me"},
                         headers=auth) as r:
        assert r.status == 200, await r.text()
        response_id = (await _json(r))["id"]
    line = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o", "messages": MSG}}
    form = aiohttp.FormData()
    form.add_field("purpose", "batch")
    form.add_field("file", json.dumps(line).encode() + b"\n", filename="in.jsonl")
    async with http.post("/v1/files", data=form, headers=auth) as r:
        assert r.status == 200, await r.text()
        file_id = (await _json(r))["id"]
    async with http.post("/v1/batches", json={
        "input_file_id": file_id, "endpoint": "/v1/chat/completions",
        "completion_window": "24h"}, headers=auth) as r:
        assert r.status == 200, await r.text()
        batch_id = (await _json(r))["id"]
    return {"response_id": response_id, "file_id": file_id, "batch_id": batch_id}


@pytest.fixture
async def world(
    start_appliance: StartAppliance, openai_models: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[World]:
    monkeypatch.setenv("APPLIANCE_ADMIN_KEY", ADMIN)
    running = await start_appliance(merge(openai_models, {
        "limits": {"metrics_require_admin_key": True},
        "mcp": {"servers": {"gone": {"url": f"http://127.0.0.1:{_free_port()}/mcp",
                                     "timeout_s": 2}}},
    }), key_kw={"tenant": "tenant-a", "user": "alice"})
    keys = {"own": running.key,
            "other_tenant": running.new_key(tenant="tenant-b", user="bob"),
            "expired": running.new_key(tenant="tenant-a", user="old",
                                       expires_at=time.time() - 1),
            "admin_key": ADMIN}
    revoked = running.new_key(tenant="tenant-a", user="gone")
    control = ControlPlane.open(control_plane_path(running.data_dir))
    try:
        assert control.revoke_key(revoked.split("-")[1])
    finally:
        control.close()
    keys["revoked"] = revoked
    keys["wrong_secret"] = running.key.rsplit("-", 1)[0] + "-" + "A" * 43
    async with aiohttp.ClientSession(running.url) as http:
        ids = await _objects_of_tenant_a(http, running.key)
    yield World(running, keys, ids)


def _request(path: str, method: str, ids: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """The route's path with tenant A's objects in it, and a valid request for it."""
    url = path.format(model="gpt-4o", server="gone", key_id="0000000000000000", **ids)
    bodies: dict[str, Any] = {
        "/v1/chat/completions": {"model": "gpt-4o", "messages": MSG},
        "/v1/completions": {"model": "gpt-4o", "prompt": "hi"},
        "/v1/embeddings": {"model": "text-embedding-3-small", "input": "hi"},
        # An empty body: its 400 still shows the key got past authentication, and a
        # valid one would load the moderation model (half a minute on a busy machine).
        "/v1/moderations": b"",
        "/v1/messages": {"model": "gpt-4o", "max_tokens": 8, "messages": MSG},
        "/v1/responses": {"model": "gpt-4o", "input": "hi"},
        "/v1/batches": {"input_file_id": ids["file_id"], "endpoint": "/v1/chat/completions",
                        "completion_window": "24h"},
        "/mcp/{server}": {"jsonrpc": "2.0", "id": 1, "method": "ping"},
        "/admin/keys": {"tenant": "tenant-c", "user": "carol"},
        "/admin/apps": {"tenant": "tenant-c", "name": "app", "purpose": "Answers questions"},
    }
    kw: dict[str, Any] = {}
    if method == "post" and path == "/v1/files":
        form = aiohttp.FormData()
        form.add_field("purpose", "user_data")
        form.add_field("file", b"some notes", filename="notes.txt")
        kw["data"] = form
    elif method == "post" and isinstance(bodies.get(path), bytes):
        kw["data"] = bodies[path]
    elif method == "post":
        kw["json"] = bodies.get(path, {})
    return url, kw


def test_every_route_is_classified(tmp_path: Any) -> None:
    from appliance.config import load_config
    from appliance.server.app import create_app

    routes = router_operations(create_app(load_config(None, data_dir=tmp_path)))
    assert routes - set(ROUTES) == set(), "a new route: say in ROUTES who may call it"
    assert set(ROUTES) - routes == set(), "ROUTES lists a route the server no longer has"


def _authorization(world: World, credential: str) -> dict[str, str]:
    key = REFUSED.get(credential) if credential in ("none", "malformed", "basic") else (
        world.keys[credential])
    return {} if key is None else {
        "Authorization": key if " " in key else f"Bearer {key}"}


def _assert_refused(route: str, status: int, body: Any, text: str) -> None:
    assert status == 401, (route, status, text)
    if route.startswith("/v1/messages"):
        assert body["type"] == "error" and body["error"]["type"] == "authentication_error"
    elif route.startswith("/mcp/"):
        assert body["error"]["code"] == -32600  # JSON-RPC, the MCP caller's format
    else:
        assert body["error"]["type"] == "authentication_error", text


HTTP_ROUTES = sorted(r for r in ROUTES if r != ("/v1/realtime/chat", "get"))
BAD_FOR_TENANT_ROUTES = ["none", "malformed", "basic", "wrong_secret", "revoked", "expired",
                         "admin_key"]
BAD_FOR_ADMIN_ROUTES = ["none", "malformed", "basic", "wrong_secret", "revoked", "expired",
                        "own", "other_tenant"]


async def test_the_matrix(world: World) -> None:
    """Every route × every credential: refused ones 401 in the caller's format, accepted
    ones answered, another tenant's objects 404."""
    failures = []
    async with aiohttp.ClientSession(world.running.url) as http:
        for path, method in HTTP_ROUTES:
            who = ROUTES[(path, method)]
            refused = {TENANT: BAD_FOR_TENANT_ROUTES, ADMIN_ONLY: BAD_FOR_ADMIN_ROUTES,
                       PUBLIC: []}[who]
            allowed = {TENANT: ["own", "other_tenant"], ADMIN_ONLY: ["admin_key"],
                       PUBLIC: ["none", "malformed", "own", "admin_key"]}[who]
            for credential in refused + allowed:
                url, kw = _request(path, method, world.ids)
                async with http.request(method, url, headers=_authorization(world, credential),
                                        **kw) as r:
                    text = await r.text()
                    status = r.status
                body = json.loads(text) if text.startswith(("{", "[")) else None
                try:
                    if credential in refused:
                        _assert_refused(path, status, body, text)
                    elif credential == "other_tenant" and "{" in path and path != "/mcp/{server}" \
                            and path != "/v1/models/{model}":
                        assert status == 404, (status, text)  # tenant A's object, unseen
                    else:
                        assert status < 500 and status not in (401, 403), (status, text)
                except AssertionError as e:
                    failures.append(f"{method.upper()} {path} as {credential}: {e}")
    assert not failures, "\n".join(failures)


async def test_lists_never_show_another_tenants_objects(world: World) -> None:
    other = {"Authorization": f"Bearer {world.keys['other_tenant']}"}
    own = {"Authorization": f"Bearer {world.keys['own']}"}
    async with aiohttp.ClientSession(world.running.url) as http:
        for route, key in (("/v1/files", "file_id"), ("/v1/batches", "batch_id")):
            async with http.get(route, headers=other) as r:
                assert world.ids[key] not in await r.text()
            async with http.get(route, headers=own) as r:
                assert world.ids[key] in await r.text()


@pytest.mark.parametrize("credential", BAD_FOR_TENANT_ROUTES)
async def test_the_websocket_refuses_what_http_refuses(world: World, credential: str) -> None:
    async with aiohttp.ClientSession(world.running.url) as http:
        async with http.ws_connect("/v1/realtime/chat",
                                   headers=_authorization(world, credential)) as ws:
            await ws.send_json({"model": "gpt-4o", "messages": MSG})
            messages = [m.json() async for m in ws]
    assert messages[-1]["type"] == "error" and messages[-1]["status"] == 401


async def test_an_expired_key_stops_working_when_it_expires(world: World) -> None:
    """A key verified (and cached) before its expiry is refused after it."""
    key = world.running.new_key(tenant="tenant-a", user="brief", expires_at=time.time() + 1.5)
    auth = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(world.running.url) as http:
        async with http.get("/v1/models", headers=auth) as r:
            assert r.status == 200
        await _sleep(1.6)
        async with http.get("/v1/models", headers=auth) as r:
            assert r.status == 401


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)
