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
import socket
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, cast

import orjson
from aiohttp import web


#: Frames of a stream sent so far (for ``break_stream_after``).
_FRAMES_SENT = web.RequestKey("frames_sent", int)


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
    #: Sent as Retry-After (seconds) when set.
    retry_after_s: float | None = None


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
        #: End the next stream cleanly after this many frames, before its end marker.
        self.truncate_stream_after: int | None = None
        #: Send a frame that is not JSON after this many frames of the next stream.
        self.malform_stream_after: int | None = None
        #: Send the stream's headers, then stay silent this long before the first frame.
        self.stall_first_frame_s = 0.0
        #: Go silent (for a minute) after this many frames of the next stream.
        self.stall_after_frames: int | None = None
        #: Streams whose caller went away before their last frame (the upstream saw the
        #: request cancelled), and streams sent to their end.
        self.streams_cut = 0
        self.streams_done = 0
        self._failures: deque[Failure] = deque()
        self._runner: web.BaseRunner | None = None
        self._port = 0
        self._host = "127.0.0.1"

    # ----------------------------------------------------------------- control

    def fail_next(
        self,
        status: int = 503,
        times: int = 1,
        message: str = "injected failure",
        retry_after_s: float | None = None,
    ) -> None:
        """Answer the next ``times`` requests with ``status`` in the provider's error shape
        (a 429 or 5xx storm when ``times`` is large), with Retry-After when given."""
        self._failures.extend(Failure(status, message, retry_after_s) for _ in range(times))

    def reset(self) -> None:
        self.requests.clear()
        self._failures.clear()
        self.delay_s = 0.0
        self.chunk_delay_s = 0.0
        self.break_stream_after = None
        self.truncate_stream_after = None
        self.malform_stream_after = None
        self.stall_first_frame_s = 0.0
        self.stall_after_frames = None
        self.streams_cut = self.streams_done = 0

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
            resp = self.error_response(failure.status, failure.message)
            if failure.retry_after_s is not None:
                resp.headers["Retry-After"] = f"{failure.retry_after_s:g}"
            return body, resp
        return body, None

    async def send_frames(
        self, request: web.Request, resp: web.StreamResponse, frames: list[bytes]
    ) -> web.StreamResponse:
        """Write a stream's frames with the fault modes that are set: a stall before the
        first frame, a frame that is not JSON, a clean end before the end marker, a broken
        connection, a delay between frames. Counts the streams whose caller went away."""
        try:
            if self.stall_first_frame_s:
                await asyncio.sleep(self.stall_first_frame_s)
            for sent, frame in enumerate(frames, start=1):
                await resp.write(frame)
                if self.malform_stream_after == sent:
                    self.malform_stream_after = None
                    await resp.write(b'data: {"id": "chatcmpl-broken", "choices": [\n\n')
                if self.truncate_stream_after == sent:
                    self.truncate_stream_after = None
                    await resp.write_eof()
                    return resp
                if self.stall_after_frames == sent:
                    self.stall_after_frames = None
                    await asyncio.sleep(60)
                await self.pause_between_chunks(request)
            await resp.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            self.streams_cut += 1
            raise
        self.streams_done += 1
        return resp

    async def pause_between_chunks(self, request: web.BaseRequest) -> None:
        """Called after each stream frame: sleeps ``chunk_delay_s``, or breaks the connection."""
        if self.break_stream_after is not None:
            frames = request.get(_FRAMES_SENT, 0) + 1
            request[_FRAMES_SENT] = frames
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


@contextmanager
def stalled_listener(host: str = "127.0.0.1") -> Iterator[str]:
    """An origin (``http://host:port``) whose TCP connects hang: a socket that listens
    with a backlog of one and never accepts, its queue filled first, so the kernel drops
    the next SYNs (what a firewall that drops packets, or a dead host, looks like)."""
    server = socket.socket()
    fillers: list[socket.socket] = []
    try:
        server.bind((host, 0))
        server.listen(0)
        port = server.getsockname()[1]
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            try:
                filler.connect((host, port))
            except BlockingIOError:
                pass
            fillers.append(filler)
        yield f"http://{host}:{port}"
    finally:
        for filler in fillers:
            filler.close()
        server.close()
