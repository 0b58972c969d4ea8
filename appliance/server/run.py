"""Running the server: TLS (and mutual TLS), one or several worker processes.

With ``workers > 1`` every process binds the same port with SO_REUSEPORT and the kernel
spreads connections; each process owns its resources (and its own audit segment).
Prometheus metrics are the exception: the workers write them to one per-run directory
(see :mod:`appliance.metering.metrics`), so any worker's ``/metrics`` shows the sum.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import signal
import socket
import ssl
import sys
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, cast

from aiohttp import web

from appliance.config import Config

log = logging.getLogger(__name__)


def ssl_context(config: Config) -> ssl.SSLContext | None:
    server = config.server
    if server.tls_cert is None or server.tls_key is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(server.tls_cert), str(server.tls_key))
    if server.tls_client_ca is not None:
        ctx.load_verify_locations(cafile=str(server.tls_client_ca))
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _prepare_models(config: Config) -> None:
    """Build every model the config needs that is missing (offline, concurrently, with
    progress), before any worker starts: the PII workers and the risk model then load
    what is there instead of each building in turn (:mod:`appliance.first_start`)."""
    from appliance.first_start import prepare
    from appliance.progress import BuildProgress

    with BuildProgress() as progress:
        prepare(config, progress)


#: Seconds a worker takes from fork to listening on two cores (PII workers, risk model,
#: policies and the audit writer load side by side), for the start-up line's estimate.
_LOAD_EXPECTED_S = 15.0


def _run_worker(config: Config, sock: socket.socket, announce: bool = True) -> None:
    from appliance.blas import one_blas_thread
    from appliance.server.app import create_app

    one_blas_thread()
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    scheme = "https" if config.server.tls_cert else "http"
    host, port = sock.getsockname()[:2]
    loading = _Loading(announce)

    def listening(*_: Any) -> None:
        _freeze_startup_objects()
        loading.done()
        print(f"appliance listening on {scheme}://{host}:{port} (pid {os.getpid()})",
              file=sys.stderr, flush=True)

    from appliance.server.lifecycle import install_drain

    app = create_app(config)
    install_drain(app, config)
    try:
        web.run_app(
            app,
            sock=sock,
            ssl_context=ssl_context(config),
            print=listening,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=config.fleet.drain_timeout_s,
            # Also the bound on a new connection's first request head (slowloris).
            keepalive_timeout=config.server.client_timeout_s,
        )
    finally:
        loading.done()


def _freeze_startup_objects() -> None:
    """Take what the worker loaded before serving (libraries, config, policies, models'
    Python objects) out of the garbage collector's sight; it lives as long as the worker.
    Without this every full collection walks it all again (about 460,000 objects with every
    stage on: 330-410 ms on a busy 2-core host, 0 ms frozen), a pause that every request
    in flight waits out."""
    gc.collect()
    gc.freeze()


class _Loading:
    """The progress step from a worker's start to its first ``listening`` line: the PII
    workers, the risk model and the policies load meanwhile (seconds, not silent)."""

    def __init__(self, announce: bool) -> None:
        from appliance.progress import BuildProgress

        self._progress: BuildProgress | None = None
        if announce:
            self._progress = BuildProgress().__enter__()
            self._step = self._progress.step(
                "start", "loading the PII workers, risk model, policies and audit log",
                _LOAD_EXPECTED_S)

    def done(self) -> None:
        progress, self._progress = self._progress, None
        if progress is not None:
            self._step.done("loaded")
            progress.__exit__(None, None, None)


def check_state(config: Config) -> None:
    """Refuse to start on a control-plane schema this release does not know (a fleet's
    PostgreSQL is migrated by ``appliance db upgrade``, never by a starting replica)."""
    from appliance.errors import ConfigError, EngineUnavailable
    from appliance.keys.migrations import SchemaMismatch
    from appliance.keys.store import open_control_plane

    try:
        open_control_plane(config).close()
    except SchemaMismatch as e:
        raise ConfigError(f"refusing to start: {e}") from None
    except EngineUnavailable:
        raise ConfigError("refusing to start: the control-plane database cannot be reached") from None


def serve(config: Config) -> int:
    check_state(config)
    _prepare_models(config)
    workers = config.server.workers
    sock = _socket(config.server.host, config.server.port, reuse_port=workers > 1)
    if workers == 1:
        _run_worker(config, sock)
        return 0
    from appliance.metering.metrics import disable_multiprocess, enable_multiprocess

    run_dir = enable_multiprocess(config.storage.data_dir)
    try:
        return _supervise(config, sock, run_dir)
    finally:
        disable_multiprocess(run_dir)


def _supervise(config: Config, sock: socket.socket, run_dir: Path) -> int:
    """Fork the workers, relay SIGTERM/SIGINT to them, return once all have exited."""
    from appliance.metering.metrics import worker_exited

    procs: list[Any] = []
    mp = multiprocessing.get_context("fork")
    host, port = sock.getsockname()[:2]
    for n in range(config.server.workers):
        # A listening socket of its own per worker, on the same port (SO_REUSEPORT): the
        # kernel spreads new connections over them. With one shared socket, whichever
        # worker was idle took a burst of keep-alive connections whole (32 clients all
        # on one of two workers in the soak) and kept them. Only its own worker holds
        # a socket (the parent closes its copy before the next fork): a worker that
        # dies takes its socket along, and the kernel sends new connections to the
        # others instead of to a queue nobody accepts from.
        own = sock if n == 0 else _socket(host, port, reuse_port=True)
        # One worker announces its loading; N progress bars on one terminal would garble.
        p = mp.Process(target=_run_worker, args=(config, own, not procs), daemon=False)
        p.start()
        own.close()
        procs.append(p)

    def stop(*_: Any) -> None:
        for p in procs:
            if p.is_alive():
                os.kill(p.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    running = {p.sentinel: p for p in procs}
    while running:
        for sentinel in wait(list(running)):
            p = running.pop(cast(int, sentinel))
            p.join()
            worker_exited(run_dir, p.pid)  # the live-worker gauge stops counting it
    return 0
