"""``appliance policy serve``: the embedded engine behind OPA's REST API.

Teams without an OPA binary get a policy decision point any OPA client can use. The
subset served is what clients use for decisions and policy management:

- ``POST /v1/data/{path}`` ``{"input": ...}`` -> ``{"result": value}``, or ``{}`` when
  undefined (as OPA answers); ``GET /v1/data/{path}`` the same without input;
  ``PUT /v1/data/{path}`` replaces a base document.
- ``PUT /v1/policies/{id}`` (Rego text), ``GET /v1/policies``, ``GET|DELETE
  /v1/policies/{id}``.
- ``GET /health`` -> ``{}``.

Policies come from ``--dir`` (hot-reloaded like the appliance's own engine) plus any
uploaded through the API (kept in memory). The decision entrypoint of the directory's
set is answered from the compiled bundle; other paths by an ad-hoc query.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from regopy import RegoError

from appliance.config.policy import PolicyConfig
from appliance.policy.engine import EmbeddedEngine, entrypoint_path
from appliance.policy.rego import UNDEFINED, RegoEvalError, RegoSession, error_text, new_interpreter
from appliance.policy.rego_source import parse_module, with_keyword_line


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _opa_error(status: int, code: str, message: str, errors: list[dict[str, Any]] | None = None) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if errors:
        body["errors"] = errors
    return _json(body, status)


class PolicyServer:
    def __init__(self, config: PolicyConfig, root: Path | None) -> None:
        self._engine = EmbeddedEngine(config, root) if root is not None else None
        self._entrypoint = entrypoint_path(config)
        self._uploads: dict[str, str] = {}
        self._data_overlay: dict[str, Any] = {}
        self._session: RegoSession | None = None
        self._session_key: tuple[str, int] | None = None
        self._generation = 0

    async def start(self) -> None:
        if self._engine is not None:
            await self._engine.start()

    async def aclose(self) -> None:
        if self._engine is not None:
            await self._engine.aclose()

    def _modules(self) -> dict[str, str]:
        base = dict(self._engine.source.modules) if self._engine and self._engine.source else {}
        base.update(self._uploads)
        return base

    def _data(self) -> dict[str, Any]:
        data = copy.deepcopy(self._engine.source.data) if self._engine and self._engine.source else {}
        data.update(copy.deepcopy(self._data_overlay))
        return data

    def _current_session(self) -> RegoSession:
        key = (self._engine.revision if self._engine else "", self._generation)
        if self._session is None or self._session_key != key:
            self._session = RegoSession(self._modules(), self._data())
            self._session_key = key
        return self._session

    def evaluate(self, path: str, input_doc: Any) -> Any:
        path = path.strip("/")
        if path == self._entrypoint and self._engine and not self._uploads and not self._data_overlay:
            return self._engine.evaluate_raw(input_doc if input_doc is not None else {})
        ref = "data" + "".join(f'["{seg}"]' for seg in path.split("/") if seg)
        return self._current_session().query(ref, input_doc)

    def put_policy(self, policy_id: str, text: str) -> None:
        """Compile the new set first: a broken upload changes nothing (RegoError)."""
        line = with_keyword_line(text)
        if line is not None:
            raise ValueError(f"{policy_id}:{line}: `with` cannot be compiled by the embedded engine")
        modules = self._modules()
        modules[policy_id] = text
        new_interpreter(modules, {})
        self._uploads[policy_id] = text
        self._generation += 1

    def delete_policy(self, policy_id: str) -> bool:
        if self._uploads.pop(policy_id, None) is None:
            return False
        self._generation += 1
        return True

    def policies(self) -> dict[str, str]:
        return self._modules()

    def put_data(self, path: str, value: Any) -> None:
        segs = [s for s in path.strip("/").split("/") if s]
        if not segs:
            if not isinstance(value, dict):
                raise ValueError("the data root must be an object")
            self._data_overlay = dict(value)
        else:
            node = self._data_overlay
            for s in segs[:-1]:
                nxt = node.get(s)
                if not isinstance(nxt, dict):
                    nxt = {}
                    node[s] = nxt
                node = nxt
            node[segs[-1]] = value
        self._generation += 1


_STATE: web.AppKey[PolicyServer] = web.AppKey("policy_server", PolicyServer)


def _policy_doc(policy_id: str, text: str) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": policy_id, "raw": text}
    try:
        mod = parse_module(policy_id, text)
    except (ValueError, IndexError):  # the listing must not fail on a module it cannot read
        return doc
    doc["ast"] = {"package": {"path": mod.package}, "rules": sorted({r.name for r in mod.rules})}
    return doc


async def _read_input(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise web.HTTPBadRequest(
            body=orjson.dumps({"code": "invalid_parameter", "message": "body is not valid JSON"}),
            content_type="application/json",
        ) from None
    return body.get("input") if isinstance(body, dict) else None


async def post_data(request: web.Request) -> web.Response:
    server = request.app[_STATE]
    input_doc = await _read_input(request)
    try:
        value = server.evaluate(request.match_info.get("path", ""), input_doc)
    except (RegoEvalError, TypeError) as e:
        return _opa_error(500, "internal_error", f"evaluation failed: {e}")
    return _json({} if value is UNDEFINED else {"result": value})


async def get_data(request: web.Request) -> web.Response:
    server = request.app[_STATE]
    try:
        value = server.evaluate(request.match_info.get("path", ""), None)
    except (RegoEvalError, TypeError) as e:
        return _opa_error(500, "internal_error", f"evaluation failed: {e}")
    return _json({} if value is UNDEFINED else {"result": value})


async def put_data(request: web.Request) -> web.Response:
    server = request.app[_STATE]
    try:
        value = orjson.loads(await request.read())
        server.put_data(request.match_info.get("path", ""), value)
    except (orjson.JSONDecodeError, ValueError) as e:
        return _opa_error(400, "invalid_parameter", str(e))
    return web.Response(status=204)


async def put_policy(request: web.Request) -> web.Response:
    server = request.app[_STATE]
    policy_id = request.match_info["id"]
    text = (await request.read()).decode("utf-8", "replace")
    try:
        server.put_policy(policy_id, text)
    except ValueError as e:
        return _opa_error(400, "invalid_parameter", str(e))
    except RegoError as e:
        msg = error_text(e, {policy_id: text})
        return _opa_error(
            400,
            "invalid_parameter",
            "error(s) occurred while compiling module(s)",
            [{"code": "rego_parse_error", "message": msg, "location": {"file": policy_id}}],
        )
    return _json({})


async def list_policies(request: web.Request) -> web.Response:
    server = request.app[_STATE]
    return _json({"result": [_policy_doc(i, t) for i, t in sorted(server.policies().items())]})


async def get_policy(request: web.Request) -> web.Response:
    server = request.app[_STATE]
    policy_id = request.match_info["id"]
    text = server.policies().get(policy_id)
    if text is None:
        return _opa_error(404, "resource_not_found", f"storage_not_found_error: policy id {policy_id!r}")
    return _json({"result": _policy_doc(policy_id, text)})


async def delete_policy(request: web.Request) -> web.Response:
    server = request.app[_STATE]
    policy_id = request.match_info["id"]
    if not server.delete_policy(policy_id):
        return _opa_error(404, "resource_not_found", f"storage_not_found_error: policy id {policy_id!r}")
    return _json({})


async def health(request: web.Request) -> web.Response:
    return _json({})


def create_app(config: PolicyConfig, root: Path | None) -> web.Application:
    """The OPA-compatible app; ``root`` None serves only policies uploaded over the API."""
    app = web.Application(client_max_size=16 * 1024 * 1024)
    server = PolicyServer(config, root)
    app[_STATE] = server

    async def lifecycle(_: web.Application) -> Any:
        await server.start()
        yield
        await server.aclose()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/health", health)
    app.router.add_post("/v1/data", post_data)
    app.router.add_post("/v1/data/{path:.*}", post_data)
    app.router.add_get("/v1/data/{path:.*}", get_data)
    app.router.add_put("/v1/data/{path:.*}", put_data)
    app.router.add_get("/v1/policies", list_policies)
    app.router.add_get("/v1/policies/", list_policies)
    app.router.add_put("/v1/policies/{id:.+}", put_policy)
    app.router.add_get("/v1/policies/{id:.+}", get_policy)
    app.router.add_delete("/v1/policies/{id:.+}", delete_policy)
    return app
