"""``GET /openapi.json``: an OpenAPI 3.1 document of the appliance's own API.

Written by hand from the routes' behaviour, not generated from the handlers: the document
is a contract that Schemathesis holds the live server to (no 5xx, every response inside
its schema), and ``tests/server/test_openapi.py`` compares its paths with the router's,
so a route added without a schema fails the suite. Request schemas follow the checks of
:mod:`appliance.server.validate` (unknown fields are allowed, as there); response
schemas name what a client may rely on and leave the rest open. The configured model
names are listed, so that a generated request can reach a model at all.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from appliance import __version__
from appliance.config import Config
from appliance.server.services import SERVICES

Schema = dict[str, Any]

_OPENAI_ERROR = "#/components/schemas/OpenAIError"
_ANTHROPIC_ERROR = "#/components/schemas/AnthropicError"
_JSONRPC = "#/components/schemas/JsonRpcReply"


def _ref(target: str) -> Schema:
    return {"$ref": target}


def _json(schema: Schema, description: str = "OK") -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(codes: tuple[int, ...], target: str = _OPENAI_ERROR) -> dict[str, Schema]:
    return {str(code): _json(_ref(target), "An error in the caller's API format") for code in codes}


#: What a request through the compliance pipeline may end with besides its answer.
_PIPELINE_ERRORS = (400, 401, 403, 404, 413, 429, 431, 502, 503, 504)
#: The state routes (files, batches, stored responses): no upstream is called.
_STATE_ERRORS = (400, 401, 404, 413, 431, 503)
_ADMIN_ERRORS = (400, 401, 403, 404, 413, 431)

_NULLABLE_STRING: Schema = {"type": ["string", "null"]}
_OBJECT: Schema = {"type": "object"}

_CONTENT_PART: Schema = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "type": {"enum": ["text", "image_url", "input_audio", "file", "refusal"]},
        "text": {"type": "string"},
        "image_url": {"type": "object", "properties": {"url": {"type": "string"}},
                      "required": ["url"]},
    },
}

_MESSAGE: Schema = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {
        "role": {"enum": ["system", "developer", "user", "assistant"]},
        "content": {"anyOf": [{"type": "string"},
                              {"type": "array", "items": _CONTENT_PART}]},
        "name": {"type": "string"},
    },
}

_SAMPLING: dict[str, Schema] = {
    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
    "top_p": {"type": "number", "minimum": 0, "maximum": 1},
    "max_tokens": {"type": "integer", "minimum": 1},
    "stream": {"type": "boolean"},
    "user": {"type": "string"},
    "stop": {"anyOf": [{"type": "string"},
                       {"type": "array", "items": {"type": "string"}, "maxItems": 4}]},
}

_USAGE: Schema = {
    "type": "object",
    "properties": {k: {"type": "integer"}
                   for k in ("prompt_tokens", "completion_tokens", "total_tokens")},
}

_LIST: Schema = {
    "type": "object",
    "required": ["object", "data"],
    "properties": {"object": {"const": "list"}, "data": {"type": "array"}},
}


def _components() -> Schema:
    return {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "An appliance API key (ak-…), or the admin key on /admin"},
            "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "x-api-key"},
        },
        "schemas": {
            "OpenAIError": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {
                    "type": "object",
                    "required": ["message", "type", "param", "code"],
                    "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                                   "param": _NULLABLE_STRING, "code": _NULLABLE_STRING},
                }},
            },
            "AnthropicError": {
                "type": "object",
                "required": ["type", "error"],
                "properties": {"type": {"const": "error"}, "error": {
                    "type": "object",
                    "required": ["type", "message"],
                    "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
                }},
            },
            "JsonRpcReply": {
                "description": "A JSON-RPC 2.0 reply, or a batch of them",
                "anyOf": [
                    {"type": "object", "required": ["jsonrpc"],
                     "properties": {"jsonrpc": {"const": "2.0"}}},
                    {"type": "array", "items": {"type": "object"}},
                ],
            },
            "ChatCompletion": {
                "type": "object",
                "required": ["id", "object", "choices"],
                "properties": {"id": {"type": "string"}, "object": {"const": "chat.completion"},
                               "choices": {"type": "array"}, "usage": _USAGE},
            },
            "Completion": {
                "type": "object",
                "required": ["id", "object", "choices"],
                "properties": {"id": {"type": "string"}, "object": {"const": "text_completion"},
                               "choices": {"type": "array"}},
            },
            "Embeddings": {
                **_LIST,
                "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": {
                    "type": "object", "required": ["embedding", "index"],
                    "properties": {"embedding": {"anyOf": [
                        {"type": "array", "items": {"type": "number"}}, {"type": "string"}]},
                        "index": {"type": "integer"}},
                }}},
            },
            "Message": {
                "type": "object",
                "required": ["id", "type", "role", "content"],
                "properties": {"type": {"const": "message"}, "role": {"const": "assistant"},
                               "content": {"type": "array"}},
            },
            "Response": {
                "type": "object",
                "required": ["id", "object", "output"],
                "properties": {"id": {"type": "string"}, "object": {"const": "response"},
                               "output": {"type": "array"}},
            },
            "Deleted": {
                "type": "object",
                "required": ["id", "deleted"],
                "properties": {"id": {"type": "string"}, "deleted": {"const": True}},
            },
            "Model": {
                "type": "object",
                "required": ["id", "object"],
                "properties": {"id": {"type": "string"}, "object": {"const": "model"}},
            },
            "File": {
                "type": "object",
                "required": ["id", "object", "bytes", "filename", "purpose"],
                "properties": {"id": {"type": "string"}, "object": {"const": "file"},
                               "bytes": {"type": "integer"}, "filename": {"type": "string"},
                               "purpose": {"type": "string"}},
            },
            "Batch": {
                "type": "object",
                "required": ["id", "object", "status", "endpoint", "input_file_id"],
                "properties": {"id": {"type": "string"}, "object": {"const": "batch"},
                               "status": {"type": "string"}},
            },
            "Key": {
                "type": "object",
                "required": ["id", "tenant", "user", "revoked"],
                "properties": {"id": {"type": "string"}, "tenant": {"type": "string"},
                               "revoked": {"type": "boolean"}},
            },
            "List": _LIST,
        },
    }


def _op(summary: str, responses: dict[str, Schema], *, body: Schema | None = None,
        public: bool = False, params: list[Schema] | None = None,
        media: str = "application/json") -> Schema:
    op: Schema = {"summary": summary, "responses": responses}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {media: {"schema": body}}}
    if public:
        op["security"] = []
    if params:
        op["parameters"] = params
    return op


def _path_param(name: str) -> Schema:
    return {"name": name, "in": "path", "required": True,
            "schema": {"type": "string", "minLength": 1}}


def _query(name: str, schema: Schema) -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def _pipeline_op(summary: str, body: Schema, answer: str,
                 error: str = _OPENAI_ERROR) -> Schema:
    ok = {"description": "The answer, or a stream of server-sent events when stream is true",
          "content": {"application/json": {"schema": _ref(answer)}, "text/event-stream": {}}}
    return _op(summary, {"200": ok, **_errors(_PIPELINE_ERRORS, error)}, body=body)


def _paths(models: list[str]) -> Schema:
    model: Schema = {"type": "string", "enum": models} if models else {"type": "string"}
    chat = {"type": "object", "required": ["model", "messages"], "properties": {
        "model": model, "messages": {"type": "array", "minItems": 1, "items": _MESSAGE},
        **_SAMPLING}}
    completion = {"type": "object", "required": ["model", "prompt"], "properties": {
        "model": model, "prompt": {"anyOf": [
            {"type": "string"}, {"type": "array", "minItems": 1, "items": {"type": "string"}}]},
        **_SAMPLING}}
    embedding = {"type": "object", "required": ["model", "input"], "properties": {
        "model": model, "input": {"anyOf": [
            {"type": "string"},
            {"type": "array", "minItems": 1, "maxItems": 2048, "items": {"type": "string"}}]},
        "encoding_format": {"enum": ["float", "base64"]}}}
    messages = {"type": "object", "required": ["model", "max_tokens", "messages"], "properties": {
        "model": model, "max_tokens": {"type": "integer", "minimum": 1},
        "system": {"type": "string"}, "stream": {"type": "boolean"},
        "messages": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["role", "content"], "properties": {
                "role": {"enum": ["user", "assistant"]},
                "content": {"anyOf": [{"type": "string"}, {"type": "array", "items": {
                    "type": "object", "required": ["type", "text"], "properties": {
                        "type": {"const": "text"}, "text": {"type": "string"}}}}]}}}}}}
    responses = {"type": "object", "required": ["model", "input"], "properties": {
        "model": model, "input": {"anyOf": [{"type": "string"},
                                            {"type": "array", "items": _MESSAGE}]},
        "instructions": {"type": "string"}, "store": {"type": "boolean"},
        "stream": {"type": "boolean"}, "max_output_tokens": {"type": "integer", "minimum": 1}}}
    batch = {"type": "object", "required": ["endpoint", "input_file_id", "completion_window"],
             "properties": {
                 "endpoint": {"enum": ["/v1/chat/completions", "/v1/completions",
                                       "/v1/embeddings", "/v1/responses"]},
                 "input_file_id": {"type": "string"}, "completion_window": {"const": "24h"},
                 "metadata": {"type": "object", "additionalProperties": {"type": "string"}}}}
    upload = {"type": "object", "required": ["file", "purpose"], "properties": {
        "file": {"type": "string", "format": "binary"},
        "purpose": {"enum": ["batch", "user_data", "assistants", "evals"]}}}
    new_key = {"type": "object", "required": ["tenant", "user"], "properties": {
        "tenant": {"type": "string", "minLength": 1}, "user": {"type": "string", "minLength": 1},
        "department": {"type": "string"}, "application": {"type": "string"},
        "roles": {"type": "array", "items": {"type": "string"}},
        "expires_at": {"type": "number",
                       "description": "Unix time after which the key is refused"},
        "limits": {"type": "object"}}}
    new_app = {"type": "object", "required": ["tenant", "name", "purpose"], "properties": {
        "tenant": {"type": "string", "minLength": 1}, "name": {"type": "string", "minLength": 1},
        "purpose": {"type": "string", "minLength": 1}, "annex_iii": {"type": "string"},
        "art9_basis": {"type": "object", "additionalProperties": {"type": "string"}}}}
    jsonrpc = {"type": "object", "required": ["jsonrpc", "method"], "properties": {
        "jsonrpc": {"const": "2.0"}, "id": {"type": ["integer", "string"]},
        "method": {"type": "string"}, "params": {"type": "object"}}}
    page = [_query("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
            _query("order", {"enum": ["asc", "desc"]}), _query("after", {"type": "string"})]
    ok_list = _json(_ref("#/components/schemas/List"))
    status = _json({"type": "object", "required": ["status"],
                    "properties": {"status": {"type": "string"}}})
    rpc_errors = {str(c): _json(_ref(_JSONRPC), "A JSON-RPC error") for c in (400, 401, 404, 413)}
    return {
        "/healthz": {"get": _op("Liveness", {"200": status}, public=True)},
        "/readyz": {"get": _op("Readiness", {"200": status, "503": status}, public=True)},
        "/openapi.json": {"get": _op("This document", {"200": _json(_OBJECT)}, public=True)},
        "/metrics": {"get": _op("Prometheus metrics (the admin key where configured)", {
            "200": {"description": "Prometheus text format", "content": {"text/plain": {}}},
            **_errors((401,))})},
        "/v1/chat/completions": {"post": _pipeline_op(
            "Chat completion", chat, "#/components/schemas/ChatCompletion")},
        "/v1/completions": {"post": _pipeline_op(
            "Text completion", completion, "#/components/schemas/Completion")},
        "/v1/embeddings": {"post": _pipeline_op(
            "Embeddings", embedding, "#/components/schemas/Embeddings")},
        "/v1/messages": {"post": _pipeline_op(
            "Anthropic Messages", messages, "#/components/schemas/Message", _ANTHROPIC_ERROR)},
        "/v1/responses": {"post": _pipeline_op(
            "Responses API", responses, "#/components/schemas/Response")},
        "/v1/moderations": {"post": _op("Moderation", {
            "200": _json({"type": "object", "required": ["results"]}),
            **_errors(_PIPELINE_ERRORS)}, body={
                "type": "object", "required": ["input"],
                "properties": {"input": {"type": "string"}, "model": {"type": "string"}}})},
        "/v1/models": {"get": _op("Models offered", {"200": ok_list, **_errors((401, 431))})},
        "/v1/models/{model}": {"get": _op(
            "One model", {"200": _json(_ref("#/components/schemas/Model")),
                          **_errors((401, 404, 431))}, params=[_path_param("model")])},
        "/v1/responses/{response_id}": {
            "get": _op("A stored response", {"200": _json(_ref("#/components/schemas/Response")),
                                             **_errors(_STATE_ERRORS)},
                       params=[_path_param("response_id")]),
            "delete": _op("Delete a stored response",
                          {"200": _json(_ref("#/components/schemas/Deleted")),
                           **_errors(_STATE_ERRORS)}, params=[_path_param("response_id")]),
        },
        "/v1/responses/{response_id}/input_items": {"get": _op(
            "A stored response's input items", {"200": ok_list, **_errors(_STATE_ERRORS)},
            params=[_path_param("response_id"), *page])},
        "/v1/files": {
            "get": _op("The tenant's files", {"200": ok_list, **_errors(_STATE_ERRORS)}),
            "post": _op("Upload a file", {"200": _json(_ref("#/components/schemas/File")),
                                          **_errors(_STATE_ERRORS)},
                        body=upload, media="multipart/form-data"),
        },
        "/v1/files/{file_id}": {
            "get": _op("A file object", {"200": _json(_ref("#/components/schemas/File")),
                                         **_errors(_STATE_ERRORS)},
                       params=[_path_param("file_id")]),
            "delete": _op("Delete a file", {"200": _json(_ref("#/components/schemas/Deleted")),
                                            **_errors(_STATE_ERRORS)},
                          params=[_path_param("file_id")]),
        },
        "/v1/files/{file_id}/content": {"get": _op("A file's content", {
            "200": {"description": "The file", "content": {"application/octet-stream": {}}},
            **_errors(_STATE_ERRORS)}, params=[_path_param("file_id")])},
        "/v1/batches": {
            "get": _op("The tenant's batches", {"200": ok_list, **_errors(_STATE_ERRORS)}),
            "post": _op("Start a batch", {"200": _json(_ref("#/components/schemas/Batch")),
                                          **_errors(_STATE_ERRORS)}, body=batch),
        },
        "/v1/batches/{batch_id}": {"get": _op(
            "A batch", {"200": _json(_ref("#/components/schemas/Batch")),
                        **_errors(_STATE_ERRORS)}, params=[_path_param("batch_id")])},
        "/v1/batches/{batch_id}/cancel": {"post": _op(
            "Cancel a batch", {"200": _json(_ref("#/components/schemas/Batch")),
                               **_errors(_STATE_ERRORS)}, params=[_path_param("batch_id")])},
        "/v1/realtime/chat": {"get": _op(
            "WebSocket streaming of one chat request (upgrade required)",
            {"101": {"description": "Switching to WebSocket"}, **_errors((400, 431))})},
        "/mcp/{server}": {
            "post": _op("MCP gateway (streamable HTTP, JSON replies)", {
                "200": _json(_ref(_JSONRPC)), "202": {"description": "A notification"},
                **rpc_errors}, body=jsonrpc, params=[_path_param("server")]),
            "get": _op("No server-initiated stream", {
                "405": {"description": "Not offered"}, **_errors((431,))},
                params=[_path_param("server")]),
            "delete": _op("End a session (none is kept)", {
                "200": {"description": "Ended"}, **_errors((431,))},
                params=[_path_param("server")]),
        },
        "/admin/keys": {
            "get": _op("API keys (admin)", {"200": ok_list, **_errors(_ADMIN_ERRORS)},
                       params=[_query("tenant", {"type": "string"})]),
            "post": _op("Create an API key (admin)", {
                "201": _json({"allOf": [_ref("#/components/schemas/Key"),
                                        {"type": "object", "required": ["key"]}]}),
                **_errors(_ADMIN_ERRORS)}, body=new_key),
        },
        "/admin/keys/{key_id}": {"delete": _op("Revoke an API key (admin)", {
            "200": _json({"type": "object", "required": ["id", "revoked"]}),
            **_errors(_ADMIN_ERRORS)}, params=[_path_param("key_id")])},
        "/admin/apps": {
            "get": _op("Applications (admin)", {"200": ok_list, **_errors(_ADMIN_ERRORS)},
                       params=[_query("tenant", {"type": "string"})]),
            "post": _op("Register an application (admin)",
                        {"201": _json(_OBJECT), **_errors(_ADMIN_ERRORS)}, body=new_app),
        },
    }


def openapi_document(config: Config) -> Schema:
    """The OpenAPI 3.1 document of this appliance, with its configured model names."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "appliance",
            "version": __version__,
            "description": "On-premises compliance proxy for LLMs: OpenAI- and "
                           "Anthropic-compatible routes, the admin API and the MCP gateway.",
        },
        "security": [{"bearer": []}, {"apiKeyHeader": []}],
        "paths": _paths(sorted(config.models)),
        "components": _components(),
    }


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(request.app[SERVICES].config))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/openapi.json", openapi_json)
