"""Local faults: slow clients (slowloris, a slow body, a reader that stops reading a
stream) are cut off with bounded memory, and an audit disk that fills up or turns
read-only refuses new requests with a 503 before anything goes upstream, while every
request that was acknowledged is in the log."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

from appliance.testing.fakes import FakeOpenAI
from appliance.testing.models import TestModels
from appliance.testing.harness import (
    PASS_THROUGH,
    UPSTREAM_KEY_ENV,
    create_key,
    merge,
    openai_upstream,
    serve_subprocess,
    to_toml,
)
from tests.conftest import FAKE_KEY, Running, StartAppliance
from tests.server.test_upstream_faults import RECORDED, records

MSG: Any = [{"role": "user", "content": "hello there"}]


# -------------------------------------------------------------------- slow clients


@pytest.fixture
def served(tmp_path: Path, test_models: TestModels) -> Iterator[str]:
    """``appliance serve`` as a real process (the production server set-up), with a
    one-second bound on slow clients; its origin."""
    cfg = tmp_path / "slow.toml"
    cfg.write_text(to_toml(merge(
        openai_upstream("openai", "http://127.0.0.1:9", {"gpt-4o": "gpt-4o"}),
        {"providers": {"local": {"models_dir": str(test_models.models_dir)}}},
        {"server": {"client_timeout_s": 1.0}},
        PASS_THROUGH,
    )))
    data = tmp_path / "data"
    create_key(data)
    with serve_subprocess(cfg, data, env={UPSTREAM_KEY_ENV: FAKE_KEY}) as server:
        yield server.url


def _closed_within(sock: socket.socket, seconds: float, trickle: bytes = b"") -> bytes | None:
    """Trickle ``trickle`` a byte every 0.2 s until the server answers or closes; what it
    sent back (b"" when it just closed), or None if it still holds the connection."""
    sock.settimeout(0.2)
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        if i < len(trickle):
            try:
                sock.sendall(trickle[i:i + 1])
            except OSError:
                return b""
            i += 1
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            return b""
        return data
    return None


def test_slowloris_and_a_slow_body_are_cut_off(served: str) -> None:
    host, port = served.removeprefix("http://").split(":")
    # A request head that never ends: one header byte every 0.2 s.
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
        answer = _closed_within(sock, 6.0, trickle=b"X-Slow: " + b"a" * 100)
        assert answer is not None, "a slowloris connection was held open"
    # A head that arrives, then a body that trickles: 408 in the API's error shape.
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ak-x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
        )
        answer = _closed_within(sock, 6.0, trickle=b' "model": "gpt-4o"' * 50)
        assert answer is not None, "a slow body was waited for"
    # The server still serves everyone else.
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(5)
        assert sock.recv(1000).startswith(b"HTTP/1.1 200")


async def test_a_slow_body_gets_a_408(start_appliance: StartAppliance, fake_openai: FakeOpenAI) -> None:
    running = await start_appliance(
        openai_upstream("openai", fake_openai.base_url, {"gpt-4o": "gpt-4o"}),
        {"server": {"client_timeout_s": 0.5}}, PASS_THROUGH,
    )

    async def trickle() -> Any:
        yield b'{"model": "gpt-4o", '
        await asyncio.sleep(2)
        yield b'"messages": []}'

    async with aiohttp.ClientSession() as http:
        async with http.post(
            running.base_url + "/chat/completions", data=trickle(),
            headers={"Authorization": f"Bearer {running.key}", "Content-Type": "application/json"},
        ) as resp:
            assert resp.status == 408
            assert (await resp.json())["error"]["code"] == "request_timeout"
    assert not fake_openai.requests


async def test_a_reader_that_stops_reading_a_stream_is_cut_off(
    start_appliance: StartAppliance, fake_openai: FakeOpenAI
) -> None:
    """The answer (5 MB) is larger than every buffer between the appliance and a caller
    that reads nothing: the appliance waits client_timeout_s on a full socket, then cuts
    the caller off and cancels the upstream, instead of holding the rest in memory."""
    running = await start_appliance(
        openai_upstream("openai", fake_openai.base_url, {"gpt-4o": "gpt-4o"}, max_retries=0),
        {"server": {"client_timeout_s": 0.5}},
        RECORDED,
    )
    words = " ".join("x" * 2000 for _ in range(2500))
    body = json.dumps({"model": "gpt-4o", "stream": True,
                       "messages": [{"role": "user", "content": words}]}).encode()
    fake_openai.chunk_delay_s = 0.0005  # a real upstream's pace: the answer is not all sent at once
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", running.server.port))
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {running.key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    await loop.sock_sendall(sock, head + body)
    try:
        async with asyncio.timeout(60):  # never read: the appliance must give up on us
            while fake_openai.streams_cut == 0 and fake_openai.streams_done == 0:
                await asyncio.sleep(0.1)
    finally:
        sock.close()
    assert (fake_openai.streams_cut, fake_openai.streams_done) == (1, 0)
    async with asyncio.timeout(20):
        while not (rows := await records(running)):
            await asyncio.sleep(0.3)
    (row,) = rows.values()
    assert (row["status"], row["error"]) == (499, "client_too_slow")


# ---------------------------------------------------------------- the audit disk


@pytest.fixture
def audit_disk(tmp_path: Path) -> Iterator[Path]:
    """A small file system of its own (tmpfs, 64 MiB) for the audit log, linked in as
    ``<data_dir>/audit``: it can be filled and made read-only for real."""
    mount = tmp_path / "audit-fs"
    mount.mkdir()
    if shutil.which("mount") is None or subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], capture_output=True
    ).returncode != 0:
        pytest.skip("needs to mount a tmpfs (root, as in CI)")
    data = tmp_path / "data"
    data.mkdir()
    (data / "audit").symlink_to(mount)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(mount: Path) -> Path:
    """Fill the file system to the last byte."""
    filler = mount / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass
        try:
            while True:
                f.write(b"\0")
        except OSError:
            pass
    return filler


async def _chat(client: openai.AsyncOpenAI) -> tuple[int, str | None, str]:
    """(status, error code, request id) of one chat request."""
    try:
        raw = await client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MSG)
    except openai.APIStatusError as e:
        code = e.body.get("code") if isinstance(e.body, dict) else None
        return e.status_code, code, e.response.headers.get("x-request-id", "")
    return 200, None, raw.headers["x-request-id"]


async def _remount_read_only(running: Running, mount: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "appliance", "audit", "checkpoint", "--data-dir",
        str(running.data_dir), stdout=asyncio.subprocess.DEVNULL,
    )
    assert await proc.wait() == 0
    async with asyncio.timeout(15):
        while subprocess.run(["mount", "-o", "remount,ro", str(mount)],
                             capture_output=True).returncode != 0:
            await asyncio.sleep(0.2)


async def _readyz(running: Running) -> int:
    async with aiohttp.ClientSession() as http, http.get(running.url + "/readyz") as resp:
        return resp.status


async def test_an_audit_disk_that_fills_up_or_turns_read_only_refuses_requests_first(
    start_appliance: StartAppliance, fake_openai: FakeOpenAI, audit_disk: Path
) -> None:
    running = await start_appliance(
        openai_upstream("openai", fake_openai.base_url, {"gpt-4o": "gpt-4o"}),
        {"audit": {"min_free_mb": 1}},
        RECORDED,
    )
    acknowledged: list[str] = []
    async with openai.AsyncOpenAI(base_url=running.base_url, api_key=running.key, max_retries=0) as c:
        status, _, rid = await _chat(c)
        assert status == 200
        acknowledged.append(rid)

        # Full: refused with a 503 before the upstream is called; /readyz says so.
        filler = _fill(audit_disk)
        await asyncio.sleep(0.6)  # the readiness answer is reused for half a second
        sent = len(fake_openai.requests)
        for _ in range(3):
            assert (await _chat(c))[:2] == (503, "audit_unavailable")
        assert len(fake_openai.requests) == sent
        assert await _readyz(running) == 503

        # Space again: served again.
        filler.unlink()
        await asyncio.sleep(0.6)
        status, _, rid = await _chat(c)
        assert status == 200
        acknowledged.append(rid)
        assert await _readyz(running) == 200

        # Read-only: refused before the upstream, as full. (The writer seals its segment
        # first, as `appliance audit checkpoint` asks: a file system with files open for
        # writing cannot be remounted read-only from outside.)
        await _remount_read_only(running, audit_disk)
        try:
            await asyncio.sleep(0.6)
            sent = len(fake_openai.requests)
            assert (await _chat(c))[:2] == (503, "audit_unavailable")
            assert len(fake_openai.requests) == sent
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(audit_disk)], check=True)
        await asyncio.sleep(0.6)
        status, _, rid = await _chat(c)
        assert status == 200
        acknowledged.append(rid)
    rows = await records(running)
    assert set(acknowledged) <= set(rows)


async def test_a_disk_that_fills_unnoticed_loses_nothing_acknowledged(
    start_appliance: StartAppliance, fake_openai: FakeOpenAI, audit_disk: Path
) -> None:
    """No free-space margin: the disk fills between the check and a commit. The request
    whose record fails is not acknowledged (503); the failed commit makes the next ones
    refused before the upstream, until a test write goes through again."""
    running = await start_appliance(
        openai_upstream("openai", fake_openai.base_url, {"gpt-4o": "gpt-4o"}),
        {"audit": {"min_free_mb": 0}},
        RECORDED,
    )
    acknowledged: list[str] = []
    async with openai.AsyncOpenAI(base_url=running.base_url, api_key=running.key, max_retries=0) as c:
        assert (await _chat(c))[0] == 200
        filler = _fill(audit_disk)
        outcomes = []
        for _ in range(40):  # the journal's last page may still take a few records
            status, code, rid = await _chat(c)
            outcomes.append((status, code))
            if status == 200:
                acknowledged.append(rid)
            if code == "audit_unavailable":
                break
        assert (503, "stage_failed") in outcomes, outcomes  # the one the disk failed
        sent = len(fake_openai.requests)
        assert (await _chat(c))[:2] == (503, "audit_unavailable")
        assert len(fake_openai.requests) == sent  # refused before going upstream
        filler.unlink()
        await asyncio.sleep(0.6)
        status, _, rid = await _chat(c)
        assert status == 200
        acknowledged.append(rid)
    rows = await records(running)
    assert set(acknowledged) <= set(rows)
    assert os.path.exists(audit_disk)


# ------------------------------------------------------------------------ SIGTERM


@pytest.mark.parametrize("workers", [2])
def test_sigterm_drains_in_flight_streams(
    tmp_path: Path, test_models: TestModels, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """SIGTERM while a stream is half sent: the server stops taking connections, the
    stream runs to its end, its record is written, then the process exits 0."""
    monkeypatch.setenv(UPSTREAM_KEY_ENV, FAKE_KEY)
    prompt = " ".join(f"w{i}" for i in range(30))
    with FakeOpenAI(api_key=FAKE_KEY).running() as fake:
        fake.chunk_delay_s = 0.1  # about three seconds of stream
        cfg = tmp_path / "drain.toml"
        cfg.write_text(to_toml(merge(
            openai_upstream("openai", fake.base_url, {"gpt-4o": "gpt-4o"}, max_retries=0),
            {"providers": {"local": {"models_dir": str(test_models.models_dir)}}},
            {"server": {"workers": workers}},
            PASS_THROUGH, {"pipeline": {"record": True}},
        )))
        data = tmp_path / "data"
        key = create_key(data)
        with serve_subprocess(cfg, data) as server:
            client = openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0)
            raw = client.chat.completions.with_raw_response.create(
                model="gpt-4o", messages=[{"role": "user", "content": prompt}], stream=True
            )
            text, stopped_at = [], None
            for chunk in raw.parse():
                if chunk.choices and chunk.choices[0].delta.content:
                    text.append(chunk.choices[0].delta.content)
                    if stopped_at is None:
                        server.process.send_signal(signal.SIGTERM)
                        stopped_at = time.monotonic()
            assert "".join(text) == "echo: " + prompt  # the whole answer, after SIGTERM
            assert time.monotonic() - (stopped_at or 0) > 1.0  # it really was mid-stream
            assert server.process.wait(30) == 0
            with pytest.raises(OSError):  # no longer listening
                socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
    search = subprocess.run(
        [sys.executable, "-m", "appliance", "audit", "search", "--data-dir", str(data),
         "--request-id", raw.headers["x-request-id"], "--json"],
        capture_output=True, text=True, check=True,
    )
    (row,) = [json.loads(line) for line in search.stdout.splitlines() if line.strip()]
    assert (row["status"], row["error"]) == (200, None)
