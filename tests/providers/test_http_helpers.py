"""The shared HTTP helpers: SSE framing over a real socket, error bodies, secret scrubbing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from appliance.errors import UpstreamTimeout
from appliance.providers._http import (
    Upstream,
    iter_sse,
    status_error,
    transport_error,
    upstream_message,
)


@pytest.fixture
async def sse_server() -> AsyncIterator[tuple[str, list[bytes]]]:
    """Serves whatever byte pieces the test puts in the list, one write per piece."""
    pieces: list[bytes] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for piece in pieces:
            await resp.write(piece)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/", pieces
    await runner.cleanup()


async def events(url: str) -> list[tuple[str | None, str]]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return [e async for e in iter_sse(resp)]


BIG = "x" * 300_000

FRAMINGS = [
    ([b"data: a\n\n", b"data: b\n\n"], [(None, "a"), (None, "b")]),
    ([b"event: ping\r\ndata: {}\r\n\r\n"], [("ping", "{}")]),
    ([b": keep-alive comment\n\ndata: x\n\n"], [(None, "x")]),
    ([b"data: line1\ndata: line2\n\n"], [(None, "line1\nline2")]),
    ([b"da", b"ta: spl", b"it\n", b"\n"], [(None, "split")]),
    ([b"data:nospace\n\n"], [(None, "nospace")]),
    ([b"data: last without blank line"], [(None, "last without blank line")]),
    ([f"data: {BIG}\n\n".encode()[i : i + 1000] for i in range(0, 300_008, 1000)], [(None, BIG)]),
    (
        ["data: caf\u00e9 \u00fc\n\n".encode()[:10], "data: caf\u00e9 \u00fc\n\n".encode()[10:]],
        [(None, "caf\u00e9 \u00fc")],
    ),
]


@pytest.mark.parametrize(("pieces", "expected"), FRAMINGS)
async def test_sse_framing(
    sse_server: tuple[str, list[bytes]], pieces: list[bytes], expected: list[tuple[str | None, str]]
) -> None:
    url, served = sse_server
    served.extend(pieces)
    assert await events(url) == expected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"error": {"message": "openai style", "type": "x"}}', "openai style"),
        (
            b'{"type": "error", "error": {"type": "overloaded_error", "message": "anthropic style"}}',
            "anthropic style",
        ),
        (b'{"message": "aws style"}', "aws style"),
        (b'{"Message": "aws upper"}', "aws upper"),
        (
            b'{"error": {"code": 429, "message": "google style", "status": "RESOURCE_EXHAUSTED"}}',
            "google style",
        ),
        (b'{"error": "hf style"}', "hf style"),
        (b"<html>Bad Gateway</html>", "<html>Bad Gateway</html>"),
    ],
)
def test_upstream_message_of_every_error_shape(body: bytes, message: str) -> None:
    assert upstream_message(body) == message


def test_status_error_scrubs_secrets_and_truncates() -> None:
    up = Upstream("p", 1.0, 1.0, secrets=("sk-live-123",))
    err = status_error(
        up, 401, b'{"error": {"message": "key sk-live-123 is wrong' + b"!" * 1000 + b'"}}'
    )
    assert "sk-live-123" not in err.message and "***" in err.message
    assert len(err.message) < 600 and err.upstream_status == 401 and not err.retryable


def test_transport_errors() -> None:
    up = Upstream("p", 1.0, 1.0)
    assert isinstance(transport_error(up, TimeoutError()), UpstreamTimeout)
    refused = transport_error(up, aiohttp.ClientConnectionError("refused"))
    assert refused.retryable and not isinstance(refused, UpstreamTimeout)
