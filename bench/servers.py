"""The servers under test: start one as a subprocess on its own core, watch it, stop it.

Three targets speak the benchmark's frames (``bench.pairing`` explains the
baselines' subset):

``chatserver``   ``python -m chatserver.cli serve`` (SQLite seeded first)
``ws-relay``     ``python -m bench.baseline_ws`` (bare websockets relay)
``socketio``     ``python -m bench.baseline_sio`` (python-socketio + uvicorn)
``ws-relay-durable``  the bare relay with a durable append per send (``--durable``)
``ws-relay-log``      the same into a plain file (``--durable DIR --file``)
``ingest-floor``      ``python -m bench.baseline_ingest`` (the ``ingest`` scenario's floor)

chatserver also runs on Redis alone and on PostgreSQL + Redis, one process
or two (``BACKEND_TARGETS``; ``bench.backing`` starts the databases and the
processes).

``ServerProcess`` pins the server with ``taskset -c CORE`` when taskset and a
second core exist, and reads its memory (RSS) and CPU time from ``/proc``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
# chatserver's abuse limits (docs/operations.md#abuse-limits) are off in the
# benchmarks: thousands of clients come from one address, and a benchmark
# measures the relay, not the limiter.
UNLIMITED = (
    *("--hellos-per-address", "0", "--hellos-per-site", "0"),
    *("--uploads-per-address", "0", "--uploads-per-site", "0"),
    *("--site-new-visitors", "0"),
)
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class Target:
    name: str
    wire: str  # "msgpack" or "socketio"
    label: str
    backend: str | None = None  # chatserver's record: "sqlite", "redis", "postgres+redis"
    processes: int = 1  # chatserver processes sharing the backend
    flags: tuple[str, ...] = ()  # more chatserver options
    module: str = ""  # a baseline's module (default: by ``wire``)
    data_flag: str = ""  # the baseline's option naming its data directory, if it has one

    @property
    def chatserver(self) -> bool:
        return self.backend is not None

    def command(self, port: int, data: Path, extra: tuple[str, ...] = ()) -> list[str]:
        """The server's command line (chatserver's abuse limits off: every client is local)."""
        if self.chatserver:
            args = ["-m", "chatserver.cli", "serve", "--port", str(port), "--data", str(data)]
            flags = (*UNLIMITED, *self.flags, *extra)
            return [sys.executable, *args, "--log-level", "warning", *flags]
        module = self.module or (
            "bench.baseline_sio" if self.wire == "socketio" else "bench.baseline_ws"
        )
        where = (self.data_flag, str(data)) if self.data_flag else ()
        return [sys.executable, "-m", module, "--port", str(port), *self.flags, *where]

    def url(self, port: int) -> str:
        if self.chatserver:
            return f"ws://127.0.0.1:{port}/ws"
        if self.name.startswith("ws-relay"):
            return f"ws://127.0.0.1:{port}/"
        return f"ws://127.0.0.1:{port}"

    def subprotocol(self) -> str | None:
        return "chatserver.msgpack" if self.chatserver else None


TARGETS = {
    "chatserver": Target("chatserver", "msgpack", "chatserver", "sqlite"),
    "ws-relay": Target("ws-relay", "msgpack", "bare websockets relay"),
    "socketio": Target("socketio", "socketio", "python-socketio + uvicorn"),
}
# chatserver on each backend (``python -m bench --backends``); "chatserver" is SQLite.
BACKEND_TARGETS = {
    "redis": Target("redis", "msgpack", "chatserver on Redis", "redis"),
    "redis-x2": Target("redis-x2", "msgpack", "chatserver on Redis, 2 processes", "redis", 2),
    "pg+redis": Target("pg+redis", "msgpack", "chatserver on PostgreSQL + Redis", "postgres+redis"),
    "pg+redis-x2": Target(
        "pg+redis-x2",
        "msgpack",
        "chatserver on PostgreSQL + Redis, 2 processes",
        "postgres+redis",
        processes=2,
    ),
}
# The pairs scenario beside "chatserver" (full and quick runs): the same server with
# the WAL synced at checkpoints only, which shows what the disk's fsync tail costs.
SYNC_NORMAL = Target(
    "chatserver-normal",
    "msgpack",
    "chatserver, --sqlite-sync normal",
    "sqlite",
    flags=("--sqlite-sync", "normal"),
)
# The event loop apart (``python -m bench --targets ...``, not in any plan):
# chatserver runs on uvloop where it is installed (``--loop auto``) and the
# bare relay on asyncio's own loop, so these two show what the loop alone does.
LOOP_TARGETS = {
    "chatserver-asyncio": Target(
        "chatserver-asyncio",
        "msgpack",
        "chatserver, --loop asyncio",
        "sqlite",
        flags=("--loop", "asyncio"),
    ),
    "ws-relay-uvloop": Target(
        "ws-relay-uvloop", "msgpack", "bare websockets relay on uvloop", flags=("--loop", "uvloop")
    ),
}
# The bare relay made durable (``bench.baseline_durable``): each send appended to
# SQLite (synchronous=FULL, group commit on a writer thread) before its frames
# leave, and nothing else.  The floor of any durable design in Python.
DURABLE_RELAY = Target(
    "ws-relay-durable",
    "msgpack",
    "bare websockets relay + durable SQLite append",
    data_flag="--durable",
)
# The same with a plain file (one write and one fdatasync per group): durability's floor.
LOG_RELAY = Target(
    "ws-relay-log",
    "msgpack",
    "bare websockets relay + durable file append",
    flags=("--file",),
    data_flag="--durable",
)
# The ``ingest`` scenario's floor (``bench.baseline_ingest``): read, compress, append
# to one file with group fdatasync, reply.  Nothing else.
INGEST_FLOOR = Target(
    "ingest-floor",
    "json",
    "bare websockets ingest: zstd + durable file append",
    module="bench.baseline_ingest",
    data_flag="--data",
)
ALL_TARGETS = {
    **TARGETS,
    DURABLE_RELAY.name: DURABLE_RELAY,
    LOG_RELAY.name: LOG_RELAY,
    INGEST_FLOOR.name: INGEST_FLOOR,
    **BACKEND_TARGETS,
    SYNC_NORMAL.name: SYNC_NORMAL,
    **LOOP_TARGETS,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cores:
    """Which cores the server and the generator get."""

    server: list[int] | None
    generator: list[int] | None
    taskset: bool

    @classmethod
    def plan(cls) -> Cores:
        try:
            cores = sorted(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            return cls(None, None, False)
        if len(cores) < 2:
            return cls(None, None, False)
        return cls([cores[0]], cores[1:], shutil.which("taskset") is not None)

    def describe(self) -> str:
        if self.server is None:
            return "not pinned (one core, or no affinity support): results share a core"
        how = "taskset" if self.taskset else "sched_setaffinity"
        return f"server on core {self.server}, generator on cores {self.generator} ({how})"


def thread_stats(pid: int) -> list[tuple[int, str, list[str]]]:
    """Every thread of ``pid`` by id: the name it gave the OS (``comm``;
    chatserver names its threads, ``chatserver/threads.py``) and its
    ``/proc/<pid>/task/<tid>/stat`` fields after that name.  A thread that
    ends meanwhile is left out."""
    out = []
    for tid in sorted(int(task.name) for task in Path(f"/proc/{pid}/task").iterdir()):
        task = Path(f"/proc/{pid}/task/{tid}")
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out.append((tid, name, fields))
    return out


class ServerProcess:
    """One server under test.

    ``root`` is the directory the server runs from (``chatserver`` is imported
    from there: ``bench.probe`` points it at another checkout for A/B runs);
    ``instrument`` runs it under ``bench.instrument`` with these environment
    variables; ``prefix`` under another command (``bench.probe`` uses valgrind).
    """

    def __init__(
        self,
        target: Target,
        data: Path,
        cores: Cores,
        root: Path | None = None,
        instrument: dict[str, str] | None = None,
        prefix: list[str] | None = None,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.target = target
        self.data = data
        self.cores = cores
        self.root = root or ROOT
        self.instrument = instrument
        self.prefix = prefix or []  # a command the server runs under (valgrind)
        self.extra = extra  # more options for chatserver (--redis, --database, --blobs)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data / f"{target.name}.log"

    @property
    def url(self) -> str:
        return self.target.url(self.port)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        self.data.mkdir(parents=True, exist_ok=True)
        cmd = self.target.command(self.port, self.data, self.extra)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if self.instrument is not None:
            assert cmd[1] == "-m"
            cmd = [cmd[0], "-m", "bench.instrument", *cmd[2:]]
            env.update(self.instrument)
        if self.root != ROOT:  # bench itself still comes from this checkout
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        cmd = [*self.prefix, *cmd]
        preexec = None
        if self.cores.server is not None:
            if self.cores.taskset:
                cmd = ["taskset", "-c", ",".join(map(str, self.cores.server)), *cmd]
            else:
                server_cores = set(self.cores.server)

                def preexec() -> None:
                    os.sched_setaffinity(0, server_cores)

        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                env=env,
                preexec_fn=preexec,
                start_new_session=True,
            )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + (600 if self.prefix else 30)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.target.name} exited: {self.log.read_text()[-2000:]}")
            try:
                if self.target.chatserver:
                    if httpx.get(f"{self.http}/healthz", timeout=1).status_code == 200:
                        return
                else:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                        return
            except (httpx.HTTPError, OSError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.target.name} did not come up")

    @property
    def urls(self) -> list[str]:
        return [self.url]

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def rss(self) -> int:
        """Resident memory in bytes (VmRSS)."""
        with open(f"/proc/{self.pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process (all its threads)."""
        with open(f"/proc/{self.pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def loop_cpu_seconds(self) -> float:
        """User + system CPU time of the main thread alone (a Python server's
        event loop; the rest is its worker threads: SQLite's, blob writes...)."""
        with open(f"/proc/{self.pid}/task/{self.pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def threads_cpu_seconds(self) -> dict[str, float]:
        """User + system CPU time by thread name (``thread_stats``): ``loop`` for
        the main thread; the blob threads (``blobs_0``, ...) together as ``blobs``."""
        out: dict[str, float] = {}
        for tid, name, fields in thread_stats(self.pid):
            if tid == self.pid:
                name = "loop"
            elif name.startswith("blobs_"):
                name = "blobs"
            out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / CLK_TCK
        return out

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
