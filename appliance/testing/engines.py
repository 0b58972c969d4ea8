"""Throwaway engines on loopback for fleet tests and benchmarks: PostgreSQL, Redis, an
S3-compatible endpoint (moto, a stand-in for real object storage) and HAProxy.

Each is started as a real server process from the system's packages (Debian's
``postgresql``, ``redis-server``, ``haproxy``; ``moto[server]`` from the registry), bound
to 127.0.0.1 on a free port, and stopped (its files removed) when the context exits.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(ready: object, proc: subprocess.Popen[bytes] | None, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if ready():  # type: ignore[operator]
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not start in {timeout_s:.0f} s")
        time.sleep(0.05)


# -- PostgreSQL -----------------------------------------------------------------------


@dataclass
class Postgres:
    dsn: str
    port: int
    directory: Path
    _as: tuple[str, ...]

    def _ctl(self, *args: str) -> None:
        subprocess.run([*self._as, str(PG_BIN / "pg_ctl"), "-D", str(self.directory / "db"), *args],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        """Stop the server now (a database outage); :meth:`start` brings it back."""
        self._ctl("-m", "immediate", "-w", "stop")

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._ctl("-w", "-l", str(self.directory / "pg.log"), "-o", opts, "start")


@contextmanager
def postgres() -> Iterator[Postgres]:
    """A throwaway PostgreSQL 15 cluster (trust auth, user ``appliance``) on loopback.

    As root the server runs as ``postgres`` (it refuses root); its directory sits
    directly under the system temp dir, which that user can reach.
    """
    if not (PG_BIN / "initdb").exists():
        raise FileNotFoundError("PostgreSQL 15 is not installed (Debian package: postgresql)")
    directory = Path(tempfile.mkdtemp(prefix="appliance-pg-"))
    run_as: tuple[str, ...] = ()
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(directory, pw.pw_uid, pw.pw_gid)
        run_as = ("runuser", "-u", "postgres", "--")
    try:
        subprocess.run([*run_as, str(PG_BIN / "initdb"), "-D", str(directory / "db"), "-A", "trust",
                        "-U", "appliance", "--no-sync"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = free_port()
        pg = Postgres(f"postgresql://appliance@127.0.0.1:{port}/postgres", port, directory, run_as)
        pg.start()
        try:
            yield pg
        finally:
            try:
                pg.stop()
            except subprocess.CalledProcessError:
                pass
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# -- Redis ------------------------------------------------------------------------------


@contextmanager
def redis_server() -> Iterator[str]:
    """A real redis-server on a loopback TCP port; yields its URL."""
    import redis

    exe = shutil.which("redis-server")
    if exe is None:
        raise FileNotFoundError("redis-server is not on PATH (Debian package: redis-server)")
    directory = Path(tempfile.mkdtemp(prefix="appliance-redis-"))
    port = free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(directory)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        _wait(lambda: redis.Redis.from_url(url).ping(), proc, "redis-server")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


# -- S3 (moto) --------------------------------------------------------------------------


@dataclass
class S3:
    endpoint: str
    env: dict[str, str]


@contextmanager
def s3_server(buckets: Sequence[str] = ("audit",)) -> Iterator[S3]:
    """moto's S3-compatible server on loopback with the given buckets (Object Lock enabled)."""
    import botocore.session

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "APPLIANCE_S3_ENDPOINT": endpoint}
    try:
        session = botocore.session.get_session()
        client = session.create_client("s3", endpoint_url=endpoint, region_name="us-east-1",
                                       aws_access_key_id="testing", aws_secret_access_key="testing")
        _wait(lambda: client.list_buckets() is not None, proc, "moto S3 server")
        for bucket in buckets:
            client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
        yield S3(endpoint, env)
    finally:
        proc.terminate()
        proc.wait(10)


# -- HAProxy ----------------------------------------------------------------------------


@contextmanager
def haproxy(config_template: Path, backends: Sequence[int], *, port: int | None = None) -> Iterator[int]:
    """HAProxy with the shipped config, its servers pointed at ``backends`` (loopback
    ports); yields the port it listens on."""
    exe = shutil.which("haproxy")
    if exe is None:
        raise FileNotFoundError("haproxy is not on PATH (Debian package: haproxy)")
    directory = Path(tempfile.mkdtemp(prefix="appliance-haproxy-"))
    port = port or free_port()
    servers = "\n".join(
        f"    server replica{i + 1} 127.0.0.1:{p} check" for i, p in enumerate(backends)
    )
    text = config_template.read_text("utf-8").replace("bind :8080", f"bind 127.0.0.1:{port}")
    text = text.replace("    server-template replica 3 appliance:8080 check\n", servers + "\n")
    cfg = directory / "haproxy.cfg"
    cfg.write_text(text, "utf-8")
    subprocess.run([exe, "-c", "-q", "-f", str(cfg)], check=True)
    proc = subprocess.Popen([exe, "-f", str(cfg), "-db"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def listening() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True

    try:
        _wait(listening, proc, "haproxy")
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(directory, ignore_errors=True)
