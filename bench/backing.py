"""chatserver on its other backends: the databases behind it and the processes in front.

``Backing`` starts, once per ``python -m bench`` run and only when a target
needs them, a ``redis-server`` (AOF on, ``appendfsync always``: an ``ack``
is on disk, as docs/scaling.md asks of production) and a PostgreSQL cluster
(``bench.pgserver``, ``fsync=on``).  Both are pinned to the server's core,
so every backend gets the same CPU for the whole server side: SQLite's
writer thread runs inside chatserver on that core, Redis and PostgreSQL run
beside it there.  Each stage (one scenario on one target) starts from an
empty record: Redis is flushed, PostgreSQL gets a new schema (the URL's
``search_path``) and the previous one is dropped.

``ServerGroup`` is one target's chatserver processes (one or two), each
with its own ``--data`` and all with one ``--blobs`` directory, and quacks
like a ``ServerProcess`` for the scenarios: CPU time and memory are summed
over the processes, ``urls`` lists them (the generator spreads visitors and
agents over them, so about half of the chats cross processes), and
``backing_cpu_seconds`` is what Redis and PostgreSQL spent meanwhile.

``start_chatserver`` seeds a stage's record and starts its processes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import redis

from .pgserver import PostgresServer, free_port, pg_bin
from .servers import CLK_TCK, Cores, ServerProcess, Target


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Backing:
    """The Redis and PostgreSQL servers of one run (see the module docstring)."""

    def __init__(self, tmp: Path, cores: Cores) -> None:
        self.tmp = tmp
        self.cores = cores
        self.redis_port = 0
        self.redis_proc: subprocess.Popen[bytes] | None = None
        self.pg: PostgresServer | None = None
        self.schemas = 0

    # -- redis ---------------------------------------------------------------

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def _pin(self, pids: list[int]) -> None:
        if self.cores.server is None or not hasattr(os, "sched_setaffinity"):
            return
        for pid in pids:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(pid, set(self.cores.server))

    def redis(self) -> str:
        """A running, empty Redis; its URL."""
        if self.redis_proc is None:
            binary = shutil.which("redis-server")
            if binary is None:
                raise RuntimeError("redis-server is not installed: run scripts/setup --system")
            workdir = self.tmp / "redis"
            workdir.mkdir(parents=True, exist_ok=True)
            self.redis_port = free_port()
            self.redis_proc = subprocess.Popen(
                [
                    binary,
                    *("--port", str(self.redis_port), "--bind", "127.0.0.1"),
                    *("--dir", str(workdir), "--appendonly", "yes", "--appendfsync", "always"),
                    *("--save", "", "--daemonize", "no", "--protected-mode", "no"),
                    *("--loglevel", "warning"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
            )
            self._pin([self.redis_proc.pid])
        client = redis.Redis(port=self.redis_port)
        deadline = time.monotonic() + 10
        try:
            while True:
                try:
                    client.flushall()
                    return self.redis_url
                except redis.ConnectionError:
                    if time.monotonic() > deadline or self.redis_proc.poll() is not None:
                        raise RuntimeError("redis-server did not start") from None
                    time.sleep(0.05)
        finally:
            client.close()

    # -- postgres ------------------------------------------------------------

    def postgres(self) -> str:
        """A new, empty schema on the run's PostgreSQL (started at first use); its URL."""
        if self.pg is None:
            bindir = pg_bin()
            if bindir is None:
                raise RuntimeError("no PostgreSQL initdb binary: run scripts/setup --system")
            server = PostgresServer(bindir, fsync=True)
            try:
                server.start()
                server.wait_ready()
            except BaseException:
                server.stop()
                raise
            self.pg = server
            self._pin(server.pids())  # backends forked later inherit the postmaster's
        if self.schemas:
            self.pg.psql(f"DROP SCHEMA IF EXISTS bench{self.schemas} CASCADE")
        self.schemas += 1
        schema = f"bench{self.schemas}"
        self.pg.psql(f"CREATE SCHEMA {schema}")
        return self.pg.url(search_path=schema)

    # -- accounting ----------------------------------------------------------

    def cpu_seconds(self) -> float:
        """CPU time Redis and PostgreSQL have used so far (all their processes)."""
        total = 0.0
        if self.redis_proc is not None:
            total += proc_cpu_seconds(self.redis_proc.pid)
        if self.pg is not None:
            total += sum(proc_cpu_seconds(pid) for pid in self.pg.pids())
        return total

    def close(self) -> None:
        if self.redis_proc is not None and self.redis_proc.poll() is None:
            self.redis_proc.terminate()
            try:
                self.redis_proc.wait(10)
            except subprocess.TimeoutExpired:
                self.redis_proc.kill()
                self.redis_proc.wait()
        if self.pg is not None:
            self.pg.stop()


def backing_versions() -> dict[str, str]:
    """The versions of redis-server and PostgreSQL a ``--backends`` run uses."""
    out = {}
    bindir = pg_bin()
    for name, cmd in (
        ("redis", [shutil.which("redis-server") or "redis-server", "--version"]),
        ("postgresql", [str(bindir / "postgres") if bindir else "postgres", "--version"]),
    ):
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            out[name] = done.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out[name] = "not installed"
    return out


class ServerGroup:
    """A target's chatserver processes on a shared backend (see the module docstring)."""

    def __init__(self, procs: list[ServerProcess], backing: Backing) -> None:
        self.procs = procs
        self.backing = backing

    @property
    def url(self) -> str:
        return self.procs[0].url

    @property
    def urls(self) -> list[str]:
        return [p.url for p in self.procs]

    @property
    def http(self) -> str:
        return self.procs[0].http

    @property
    def pid(self) -> int:
        """The first process's (the probes and the profiler run one process)."""
        return self.procs[0].pid

    @property
    def https(self) -> list[str]:
        return [p.http for p in self.procs]

    def rss(self) -> int:
        return sum(p.rss() for p in self.procs)

    def cpu_seconds(self) -> float:
        return sum(p.cpu_seconds() for p in self.procs)

    def loop_cpu_seconds(self) -> float:
        return sum(p.loop_cpu_seconds() for p in self.procs)

    def backing_cpu_seconds(self) -> float:
        return self.backing.cpu_seconds()

    def alive(self) -> bool:
        return all(p.alive() for p in self.procs)

    def stop(self) -> None:
        for p in self.procs:
            p.stop()


def backing_cpu(server: Any) -> float | None:
    """CPU seconds the databases behind ``server`` used so far; ``None`` without any."""
    fn = getattr(server, "backing_cpu_seconds", None)
    return float(fn()) if fn is not None else None


def process_health(server: ServerProcess | ServerGroup) -> list[dict[str, Any]]:
    """Each chatserver process's backend and connection counts (``/healthz``)."""
    out = []
    for http in server.https if isinstance(server, ServerGroup) else [server.http]:
        h = httpx.get(f"{http}/healthz", timeout=10).json()
        out.append({k: h.get(k) for k in ("backend", "connections", "agents_connected")})
    return out


def store_urls(target: Target, backing: Backing | None) -> dict[str, str]:
    """A fresh record for one stage: ``{"redis_url": ..., "database_url": ...}`` as needed."""
    if target.backend in (None, "sqlite"):
        return {}
    if backing is None:
        raise RuntimeError(f"target {target.name} needs databases: no Backing in the Env")
    urls = {"redis_url": backing.redis()}
    if target.backend == "postgres+redis":
        urls["database_url"] = backing.postgres()
    return urls


def start_chatserver(
    env: Any, target: Target, data: Path, urls: dict[str, str]
) -> ServerProcess | ServerGroup:
    """Start ``target`` on the record ``urls`` names (seeded already)."""
    if not urls:
        return ServerProcess(
            target, data, env.cores, env.server_root, env.instrument, env.server_prefix
        ).start()
    extra: tuple[str, ...] = ("--redis", urls["redis_url"], "--blobs", str(data / "blobs"))
    if "database_url" in urls:
        extra += ("--database", urls["database_url"])
    procs: list[ServerProcess] = []
    try:
        for i in range(target.processes):
            procs.append(
                ServerProcess(
                    target,
                    data / f"p{i}",
                    env.cores,
                    env.server_root,
                    env.instrument,
                    env.server_prefix,
                    extra=extra,
                ).start()
            )
    except BaseException:
        for p in procs:
            p.stop()
        raise
    return ServerGroup(procs, env.backing)
