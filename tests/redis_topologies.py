"""Real Redis topologies for the coordination seams' tests.

* ``ClusterNodes``: three ``redis-server --cluster-enabled yes`` primaries on
  free ports (client and cluster-bus ports both picked free) in a temporary
  directory, joined by ``redis-cli --cluster create ... --cluster-yes``;
  ready when every node says ``cluster_state:ok``.
* ``SentinelGroup``: a primary (``RedisServer``) and one ``redis-server
  --sentinel`` watching it under a master name.

The ``redis_cluster`` fixture is one cluster per test session (tests keep
apart by key prefix, as with ``redis_server``).  Import the fixtures into a
test module: ``from .redis_topologies import redis_cluster  # noqa: F401``.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from chatserver.redis_client import RedisTarget

from .redis_server import RedisServer, free_port


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed: run scripts/setup --system")
    return found


def _ask(port: int, *command: str) -> object:
    """One command to the server on ``port`` (a client of its own, closed after)."""
    with redis.Redis(port=port, decode_responses=True, socket_timeout=5) as client:
        return client.execute_command(*command)


def _wait(check: object, what: str, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if callable(check) and check():
                return
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not happen within {seconds} s")


class ClusterNodes:
    def __init__(self, workdir: Path, count: int = 3) -> None:
        self.dir = workdir
        self.ports = [free_port() for _ in range(count)]
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def target(self) -> RedisTarget:
        """The seams' target: the URL names one node; the client finds the others."""
        return RedisTarget(f"redis://127.0.0.1:{self.ports[0]}", cluster=True)

    def start(self) -> ClusterNodes:
        server = _binary("redis-server")
        for port in self.ports:
            node_dir = self.dir / str(port)
            node_dir.mkdir(parents=True, exist_ok=True)
            args = [
                server,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(node_dir),
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-port",
                str(free_port()),
                "--cluster-node-timeout",
                "2000",
                "--appendonly",
                "no",
                "--save",
                "",
                "--protected-mode",
                "no",
                "--loglevel",
                "warning",
            ]
            self.procs.append(
                subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
            )
        for port in self.ports:
            _wait(lambda p=port: _ask(p, "PING"), f"cluster node {port} start")
        subprocess.run(
            [
                _binary("redis-cli"),
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in self.ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            timeout=30,
            stdout=subprocess.DEVNULL,
        )

        def ready() -> bool:
            for port in self.ports:
                if "cluster_state:ok" not in str(_ask(port, "CLUSTER", "INFO")):
                    return False
            return True

        _wait(ready, "cluster_state:ok on every node", 30)
        return self

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class SentinelGroup:
    MASTER = "chatmain"

    def __init__(self, workdir: Path, replica: bool = False) -> None:
        self.dir = workdir
        self.primary = RedisServer(workdir / "primary")
        self.replica = (
            RedisServer(
                workdir / "replica", "always", "--replicaof", "127.0.0.1", str(self.primary.port)
            )
            if replica
            else None
        )
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def target(self) -> RedisTarget:
        # The URL's host is never used: Sentinel names the primary.
        return RedisTarget(
            "redis://unused/0", sentinels=(("127.0.0.1", self.port),), master=self.MASTER
        )

    def start(self) -> SentinelGroup:
        self.primary.start()
        if self.replica is not None:
            self.replica.start()
        self.dir.mkdir(parents=True, exist_ok=True)
        conf = self.dir / "sentinel.conf"
        conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\nprotected-mode no\ndir {self.dir}\n"
            f"sentinel monitor {self.MASTER} 127.0.0.1 {self.primary.port} 1\n"
            f"sentinel down-after-milliseconds {self.MASTER} 2000\n"
        )
        self.proc = subprocess.Popen(
            [_binary("redis-server"), str(conf), "--sentinel", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )

        def knows() -> bool:
            return bool(_ask(self.port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.MASTER))

        _wait(knows, "sentinel knowing the primary")
        if self.replica is not None:
            # Sentinel learns of replicas from the primary's INFO (every 10 s at first).
            _wait(lambda: self.replica_known(), "sentinel knowing the replica", 30)
        return self

    def replica_known(self) -> bool:
        replicas = _ask(self.port, "SENTINEL", "REPLICAS", self.MASTER)
        return isinstance(replicas, list) and len(replicas) > 0

    def primary_port(self) -> int:
        """The port of the primary Sentinel names now."""
        addr = _ask(self.port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.MASTER)
        assert isinstance(addr, list)
        return int(addr[1])

    def failover(self) -> int:
        """Promote the replica (``SENTINEL FAILOVER``); the new primary's port."""
        assert self.replica is not None
        _ask(self.port, "SENTINEL", "FAILOVER", self.MASTER)
        _wait(lambda: self.primary_port() == self.replica.port, "the failover", 30)  # type: ignore[union-attr]
        return self.replica.port

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.replica is not None:
            self.replica.stop()
        self.primary.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterNodes]:
    nodes = ClusterNodes(tmp_path_factory.mktemp("redis-cluster")).start()
    yield nodes
    nodes.stop()


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    group = SentinelGroup(tmp_path_factory.mktemp("redis-sentinel")).start()
    yield group
    group.stop()
