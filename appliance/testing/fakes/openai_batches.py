"""The fake OpenAI's Files and Batch APIs: ``POST /v1/files`` (multipart), ``GET
/v1/files/{id}/content``, ``POST /v1/batches``, ``GET /v1/batches/{id}`` and ``POST
/v1/batches/{id}/cancel``, in OpenAI's shapes.

A batch is answered line by line by the fake's own echo model when it is created; its
first retrieval still says ``in_progress`` (so a client's polling is exercised), the next
``completed``, with an output file of the answered lines and an error file of the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import BodyPartReader, web

#: kind of answer ("chat", "embeddings", ...) and model, body -> the serialised answer.
Build = Callable[[str, str, dict[str, Any]], bytes | list[bytes]]

_KINDS = {"/v1/chat/completions": "chat", "/v1/embeddings": "embeddings",
          "/v1/completions": "completions", "/v1/responses": "responses"}


@dataclass
class FakeBatches:
    build: Build
    files: dict[str, bytes] = field(default_factory=dict)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: How often each batch was retrieved (the first retrieval says in_progress).
    polls: dict[str, int] = field(default_factory=dict)

    def _file(self, content: bytes, purpose: str) -> dict[str, Any]:
        file_id = f"file-fake{len(self.files) + 1}"
        self.files[file_id] = content
        return {"id": file_id, "object": "file", "bytes": len(content), "created_at": int(time.time()),
                "filename": f"{file_id}.jsonl", "purpose": purpose, "status": "processed"}

    async def upload(self, request: web.BaseRequest) -> web.Response:
        reader = await request.multipart()
        content, purpose = b"", ""
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "file":
                content = await part.read()
            elif part.name == "purpose":
                purpose = await part.text()
        if not content or purpose != "batch":
            return web.json_response({"error": {"message": "file and purpose=batch required"}},
                                     status=400)
        return web.json_response(self._file(bytes(content), purpose))

    async def content(self, request: web.BaseRequest, file_id: str) -> web.Response:
        content = self.files.get(file_id)
        if content is None:
            return web.json_response({"error": {"message": "No such file"}}, status=404)
        return web.Response(body=content, content_type="application/octet-stream")

    def _answer(self, line: dict[str, Any], kind: str) -> tuple[int, dict[str, Any]]:
        body = line["body"]
        try:
            built = self.build(kind, str(body.get("model", "")), body)
        except (KeyError, TypeError, ValueError) as e:
            return 400, {"error": {"message": f"invalid request: {type(e).__name__}"}}
        if not isinstance(built, bytes):
            return 400, {"error": {"message": "streaming is not supported in batches"}}
        return 200, orjson.loads(built)

    async def create(self, request: web.BaseRequest) -> web.Response:
        spec = await request.json()
        content = self.files.get(spec.get("input_file_id", ""))
        kind = _KINDS.get(spec.get("endpoint", ""))
        if content is None or kind is None:
            return web.json_response({"error": {"message": "bad input_file_id or endpoint"}},
                                     status=400)
        ok, failed = [], []
        for n, raw in enumerate(content.splitlines()):
            line = orjson.loads(raw)
            status, body = self._answer(line, kind)
            out = {"id": f"batch_req_fake{n}", "custom_id": line["custom_id"],
                   "response": {"status_code": status, "request_id": f"req_fake{n}", "body": body},
                   "error": None}
            (ok if status == 200 else failed).append(orjson.dumps(out))
        batch_id = f"batch_fake{len(self.batches) + 1}"
        batch = {"id": batch_id, "object": "batch", "endpoint": spec["endpoint"],
                 "input_file_id": spec["input_file_id"], "completion_window": "24h",
                 "status": "in_progress", "created_at": int(time.time()),
                 "output_file_id": self._file(b"\n".join(ok) + b"\n", "batch_output")["id"]
                 if ok else None,
                 "error_file_id": self._file(b"\n".join(failed) + b"\n", "batch_output")["id"]
                 if failed else None,
                 "request_counts": {"total": len(ok) + len(failed), "completed": len(ok),
                                    "failed": len(failed)}}
        self.batches[batch_id] = batch
        return web.json_response({**batch, "output_file_id": None, "error_file_id": None})

    async def retrieve(self, request: web.BaseRequest, batch_id: str) -> web.Response:
        batch = self.batches.get(batch_id)
        if batch is None:
            return web.json_response({"error": {"message": "No such batch"}}, status=404)
        polls = self.polls[batch["id"]] = self.polls.get(batch["id"], 0) + 1
        if polls == 1 and batch["status"] == "in_progress":
            return web.json_response({**batch, "output_file_id": None, "error_file_id": None})
        if batch["status"] == "in_progress":
            batch["status"] = "completed"
        return web.json_response(batch)

    async def cancel(self, request: web.BaseRequest, batch_id: str) -> web.Response:
        batch = self.batches.get(batch_id)
        if batch is None:
            return web.json_response({"error": {"message": "No such batch"}}, status=404)
        batch.update(status="cancelled", output_file_id=None, error_file_id=None)
        return web.json_response(batch)

    async def dispatch(self, request: web.BaseRequest) -> web.Response | None:
        """The handler of ``request`` by method and path (None: not one of these routes)."""
        parts = request.path.strip("/").split("/")  # ["v1", "files", ...]
        method = request.method
        if parts[1:] == ["files"] and method == "POST":
            return await self.upload(request)
        if len(parts) == 4 and parts[1] == "files" and parts[3] == "content" and method == "GET":
            return await self.content(request, parts[2])
        if parts[1:] == ["batches"] and method == "POST":
            return await self.create(request)
        if len(parts) == 3 and parts[1] == "batches" and method == "GET":
            return await self.retrieve(request, parts[2])
        if len(parts) == 4 and parts[1] == "batches" and parts[3] == "cancel" and method == "POST":
            return await self.cancel(request, parts[2])
        return None

    def routes(self) -> list[web.RouteDef]:
        async def handle(request: web.Request) -> web.StreamResponse:
            found = await self.dispatch(request)
            return found if found is not None else web.json_response(
                {"error": {"message": "not found"}}, status=404)

        return [web.route("*", "/v1/files{tail:.*}", handle),
                web.route("*", "/v1/batches{tail:.*}", handle)]
