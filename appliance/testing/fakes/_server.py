"""What every fake provider shares: a real aiohttp server on loopback port 0.

A fake records the requests it received, checks credentials like the real service, and
can be told to fail (a status for the next N requests) or to be slow (before answering,
between stream chunks) so retry, timeout and fallback paths can be tested for real.

Use it in async tests as ``async with FakeOpenAI() as fake: fake.base_url``; from sync
code (subprocess tests, benchmarks) as ``with FakeOpenAI().running() as fake: ...``, which
serves from a background thread with its own event loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, cast

import orjson
from aiohttp import web


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


@dataclass(frozen=True)
class Failure:
    status: int
    message: str


class FakeProvider:
    """Base of the fakes; subclasses add routes and their provider's error shape."""

    #: Used in error messages and the thread name.
    provider = "fake"

    def __init__(
        self, *, api_key: str = "test-key", record: bool = True, max_recorded: int = 10_000
    ) -> None:
        self.api_key = api_key
        self.record = record
        self.requests: deque[RecordedRequest] = deque(maxlen=max_recorded)
        self.delay_s = 0.0
        self.chunk_delay_s = 0.0
        #: Abort the TCP connection after this many frames of the next stream (then cleared).
        self.break_stream_after: int | None = None
        self._failures: deque[Failure] = deque()
        self._runner: web.BaseRunner | None = None
        self._port = 0
        self._host = "127.0.0.1"

    # ----------------------------------------------------------------- control

    def fail_next(
        self, status: int = 503, times: int = 1, message: str = "injected failure"
    ) -> None:
        """Answer the next ``times`` requests with ``status`` in the provider's error shape."""
        self._failures.extend(Failure(status, message) for _ in range(times))

    def reset(self) -> None:
        self.requests.clear()
        self._failures.clear()
        self.delay_s = 0.0
        self.chunk_delay_s = 0.0
        self.break_stream_after = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def origin(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def base_url(self) -> str:
        """What a client configures as the provider's base URL."""
        return self.origin

    # --------------------------------------------------------------- subclass API

    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    def error_response(self, status: int, message: str) -> web.Response:
        return web.json_response({"error": {"message": message}}, status=status)

    # ------------------------------------------------------------- in handlers

    async def intake(self, request: web.Request) -> tuple[bytes, web.Response | None]:
        """Read and record the body; return an injected failure if one is due."""
        body = await request.content.read()  # no client_max_size: fakes take any size
        if self.record:
            self.requests.append(
                RecordedRequest(
                    request.method, request.path, dict(request.query), dict(request.headers), body
                )
            )
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self._failures:
            failure = self._failures.popleft()
            return body, self.error_response(failure.status, failure.message)
        return body, None

    async def pause_between_chunks(self, request: web.BaseRequest) -> None:
        """Called after each stream frame: sleeps ``chunk_delay_s``, or breaks the connection."""
        if self.break_stream_after is not None:
            frames = request.get("frames_sent", 0) + 1
            request["frames_sent"] = frames
            if frames >= self.break_stream_after:
                self.break_stream_after = None
                if request.transport is not None:
                    request.transport.abort()
                raise ConnectionResetError("fake: connection broken mid-stream on purpose")
        if self.chunk_delay_s:
            await asyncio.sleep(self.chunk_delay_s)

    # --------------------------------------------------------------- lifecycle

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.add_routes(self.routes())
        return app

    def runner(self) -> web.BaseRunner:
        """An aiohttp application runner; fakes on a hot path may pick a leaner server."""
        return web.AppRunner(
            self.app(), access_log=None, handle_signals=False, shutdown_timeout=0.5
        )

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._runner = self.runner()
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = cast(asyncio.Server, site._server)
        self._host, self._port = host, int(server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @contextmanager
    def running(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[Self]:
        """Serve from a background thread with its own event loop (for sync callers)."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failed: list[BaseException] = []

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start(host, port))
            except Exception as e:  # noqa: BLE001 - re-raised in the caller's thread below
                failed.append(e)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        thread = threading.Thread(target=serve, name=f"fake-{self.provider}", daemon=True)
        thread.start()
        ready.wait(30)
        if failed:
            raise failed[0]
        try:
            yield self
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(30)


def sse_event(data: Any, event: str | None = None) -> bytes:
    """One Server-Sent Event frame."""
    payload = data if isinstance(data, bytes) else orjson.dumps(data)
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + payload + b"\n\n"


async def start_sse(
    request: web.Request, headers: Mapping[str, str] | None = None
) -> web.StreamResponse:
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            **(headers or {}),
        }
    )
    await resp.prepare(request)
    return resp
