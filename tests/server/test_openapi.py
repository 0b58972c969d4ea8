"""The OpenAPI document covers every route the server has, and is served at /openapi.json."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from appliance.config import load_config
from appliance.server.app import create_app
from appliance.server.openapi import openapi_document
from tests.conftest import Running, StartAppliance

_PARAM = re.compile(r"\{(\w+)(:[^}]*)?\}")
_METHODS = {"get", "post", "put", "patch", "delete"}


#: The compliance console's pages: HTML for people, signed in with a console session, not
#: API keys; who may open which is held by tests/console/test_role_matrix.py.
CONSOLE = "/console"


def router_operations(app: web.Application) -> set[tuple[str, str]]:
    """(path in OpenAPI's spelling, lower-case method) for every API route of the router."""
    ops = set()
    for route in app.router.routes():
        canonical = route.resource.canonical if route.resource is not None else ""
        if canonical == CONSOLE or canonical.startswith(CONSOLE + "/"):
            continue
        method = route.method.lower()
        if method in _METHODS:  # aiohttp adds HEAD beside every GET by itself
            ops.add((_PARAM.sub(r"{\1}", canonical), method))
    return ops


def document_operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, method) for path, item in doc["paths"].items() for method in item
            if method in _METHODS}


def test_the_document_describes_exactly_the_routes_of_the_router(tmp_path: Path) -> None:
    config = load_config(None, data_dir=tmp_path)
    app = create_app(config)
    routes, documented = router_operations(app), document_operations(openapi_document(config))
    assert routes - documented == set(), "routes without a schema in appliance/server/openapi.py"
    assert documented - routes == set(), "documented operations the server does not have"


def test_every_path_parameter_is_declared(tmp_path: Path) -> None:
    doc = openapi_document(load_config(None, data_dir=tmp_path))
    for path, item in doc["paths"].items():
        for method, op in item.items():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == {name for name, _ in _PARAM.findall(path)}, (path, method)


def test_the_document_is_valid_openapi_3_1(tmp_path: Path) -> None:
    import schemathesis
    from openapi_spec_validator import validate

    doc = openapi_document(load_config(None, data_dir=tmp_path))
    validate(doc)  # the OpenAPI 3.1 meta-schema
    schema = schemathesis.openapi.from_dict(doc)
    operations = [op.ok() for op in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) == len(document_operations(doc))


async def test_served_without_a_key_with_the_configured_models(
    start_appliance: StartAppliance, openai_models: dict[str, Any]
) -> None:
    running: Running = await start_appliance(openai_models)
    async with aiohttp.ClientSession(running.url) as http:
        async with http.get("/openapi.json") as r:
            assert r.status == 200
            doc = await r.json()
    assert doc["openapi"] == "3.1.0"
    chat = doc["paths"]["/v1/chat/completions"]["post"]["requestBody"]["content"]
    model = chat["application/json"]["schema"]["properties"]["model"]
    assert {"gpt-4o", "text-embedding-3-small"} <= set(model["enum"])
