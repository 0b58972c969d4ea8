"""OpenAI's Files API: ``/v1/files`` (upload, list, retrieve, content, delete).

Uploaded files, and the output and error files of batches, are kept sealed under the
tenant's data key in the state store (so shredding the tenant shreds them, and they
expire with its retention); the clear metadata is the file object (name, size, purpose,
times), never content. A caller sees only its own tenant's files (404 otherwise). The
upload is read as a stream, bounded by ``[batch] max_file_bytes``.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from appliance.audit.sealed_store import BlobInfo, SealedStore, new_id
from appliance.errors import ApplianceError, InvalidRequest, NotFound, PayloadTooLarge
from appliance.server.errors import error_response
from appliance.server.services import SERVICES
from appliance.server.state import caller, in_store

KIND = "file"
#: Purposes a caller may upload with; batch outputs are written as "batch_output".
PURPOSES = frozenset({"batch", "user_data", "assistants", "evals"})

Body = dict[str, Any]


def file_object(info: BlobInfo) -> Body:
    meta = info.meta
    return {
        "id": info.id,
        "object": "file",
        "bytes": int(meta.get("bytes", 0)),
        "created_at": int(info.created_at),
        "filename": str(meta.get("filename", "")),
        "purpose": str(meta.get("purpose", "")),
        "status": "processed",
        "expires_at": None,
        "status_details": None,
    }


async def store_file(
    app: web.Application, tenant: str, content: bytes, filename: str, purpose: str
) -> BlobInfo:
    """Seal and keep a file for ``tenant``; its file object's metadata in clear."""
    meta = {"filename": filename, "bytes": len(content), "purpose": purpose}
    return await in_store(app, SealedStore.put, KIND, new_id("file"), tenant, content, meta)


async def read_file(app: web.Application, tenant: str, file_id: str) -> bytes:
    content = await in_store(app, SealedStore.get, KIND, file_id, tenant)
    if content is None:
        raise NotFound(f"No such File object: {file_id}", param="file_id")
    return content


def _json(body: Body, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


async def _upload(request: web.Request) -> tuple[bytes, str, str]:
    if not request.content_type.startswith("multipart/"):
        raise InvalidRequest("upload the file as multipart/form-data with fields file and purpose")
    try:
        return await _read_upload(request)
    except (HttpProcessingError, ValueError) as e:  # a part's malformed headers (fuzzing found it)
        raise InvalidRequest(f"The multipart body could not be read ({type(e).__name__}).") from None


async def _read_upload(request: web.Request) -> tuple[bytes, str, str]:
    limit = request.app[SERVICES].config.batch.max_file_bytes
    reader = await request.multipart()
    content: bytes | None = None
    filename, purpose = "upload", ""
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader):
            continue
        if part.name == "purpose":
            purpose = (await part.text()).strip()
        elif part.name == "file":
            filename = part.filename or filename
            chunks: list[bytes] = []
            size = 0
            while chunk := await part.read_chunk(1 << 16):
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"The file exceeds the limit of {limit} bytes.")
                chunks.append(chunk)
            content = b"".join(chunks)
    if content is None:
        raise InvalidRequest("file: field required", param="file")
    if purpose not in PURPOSES:
        raise InvalidRequest(
            f"purpose: one of {', '.join(sorted(PURPOSES))} is required", param="purpose"
        )
    return content, filename, purpose


async def create_file(request: web.Request) -> web.Response:
    try:
        principal = await caller(request)
        content, filename, purpose = await _upload(request)
        info = await store_file(request.app, principal.tenant, content, filename, purpose)
    except ApplianceError as e:
        return error_response(e)
    return _json(file_object(info))


async def _info(request: web.Request) -> tuple[str, BlobInfo]:
    principal = await caller(request)
    file_id = request.match_info["file_id"]
    info = await in_store(request.app, SealedStore.info, KIND, file_id, principal.tenant)
    if info is None:
        raise NotFound(f"No such File object: {file_id}", param="file_id")
    return principal.tenant, info


async def retrieve_file(request: web.Request) -> web.Response:
    try:
        _, info = await _info(request)
    except ApplianceError as e:
        return error_response(e)
    return _json(file_object(info))


async def file_content(request: web.Request) -> web.Response:
    try:
        tenant, info = await _info(request)
        content = await read_file(request.app, tenant, info.id)
    except ApplianceError as e:
        return error_response(e)
    return web.Response(body=content, content_type="application/octet-stream")


async def delete_file(request: web.Request) -> web.Response:
    try:
        tenant, info = await _info(request)
        await in_store(request.app, SealedStore.delete, KIND, info.id, tenant)
    except ApplianceError as e:
        return error_response(e)
    return _json({"id": info.id, "object": "file", "deleted": True})


async def list_files(request: web.Request) -> web.Response:
    try:
        principal = await caller(request)
        limit = int(request.query.get("limit", "10000"))
        infos = await in_store(request.app, SealedStore.list, KIND, principal.tenant, limit)
    except ValueError:
        return error_response(InvalidRequest("limit: an integer", param="limit"))
    except ApplianceError as e:
        return error_response(e)
    purpose = request.query.get("purpose")
    data = [file_object(i) for i in infos if purpose in (None, i.meta.get("purpose"))]
    return _json({"object": "list", "data": data, "has_more": False,
                  "first_id": data[0]["id"] if data else None,
                  "last_id": data[-1]["id"] if data else None})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/files", create_file)
    app.router.add_get("/v1/files", list_files)
    app.router.add_get("/v1/files/{file_id}", retrieve_file)
    app.router.add_delete("/v1/files/{file_id}", delete_file)
    app.router.add_get("/v1/files/{file_id}/content", file_content)
