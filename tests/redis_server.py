"""A real ``redis-server`` for tests: free port, temporary directory, AOF on.

``RedisServer`` starts Debian's ``redis-server`` binary (``scripts/setup
--system`` installs it) and can be killed or restarted to test durability.
The ``redis_url`` fixture gives each test its own key prefix on one server
per session, so tests never see each other's keys.
"""

from __future__ import annotations

import itertools
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

# Ports handed out by ``free_port``: below Linux's ephemeral range (32768-60999
# by default, where client sockets get theirs), a band of its own per
# pytest-xdist worker.
_FIRST_PORT = 12000
_BAND = 4000
_given: set[int] = set()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now, from this test process's own band.

    ``bind(("127.0.0.1", 0))`` gave ports from the ephemeral range, shared with
    every other worker: two workers could get the same port between one's
    probe and its server's bind.  The second server then failed to bind and
    exited, while its harness's health check was answered by the first, so
    that module's tests talked to another worker's server (a CI run saw it).
    A band per worker (``PYTEST_XDIST_WORKER`` gw0, gw1, ...) below the
    ephemeral range rules that out, and no port is handed out twice in a row.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker[2:]) + 1 if worker[:2] == "gw" and worker[2:].isdigit() else 0
    low = _FIRST_PORT + (index % 5) * _BAND
    if len(_given) > _BAND // 2:
        _given.clear()
    for _ in range(500):
        port = random.randrange(low, low + _BAND)
        if port in _given:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _given.add(port)
        return port
    raise RuntimeError(f"no free port in {low}-{low + _BAND - 1}")


class RedisServer:
    def __init__(self, workdir: Path, fsync: str = "always", *extra: str) -> None:
        self.dir = workdir
        self.fsync = fsync
        self.extra = extra  # more redis-server options (``--replicaof HOST PORT``)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run scripts/setup --system")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--appendonly",
                "yes",
                "--appendfsync",
                self.fsync,
                "--save",
                "",
                "--daemonize",
                "no",
                "--protected-mode",
                "no",
                "--loglevel",
                "warning",
                *self.extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        try:
            while time.monotonic() < deadline:
                try:
                    if client.ping():
                        return self
                except redis.ConnectionError:
                    time.sleep(0.02)
            raise RuntimeError("redis-server did not start")
        finally:
            client.close()

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


_prefixes = itertools.count(1)


@pytest.fixture(name="redis")
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of the test's own: for tests that stop, kill or restart
    it, or run server processes on it (``redis_server`` is shared)."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix of this test's own."""
    return f"t{next(_prefixes)}:{time.monotonic_ns() % 10**8}:"
