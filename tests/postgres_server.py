"""A real PostgreSQL server for tests: free port, temporary directory, a password.

``PostgresServer`` runs Debian's ``initdb`` and ``pg_ctl`` (the ``postgresql``
package; ``scripts/setup --system`` installs it) as the unprivileged
``postgres`` system user when the tests run as root (PostgreSQL refuses to
run as root), in a temporary directory that user owns.  It listens on
127.0.0.1 only, on a free port, and asks for a password over TCP
(scram-sha-256), so the URLs the tests use carry one, as a deployment's
would.

The ``postgres_server`` fixture starts one server per session, with
``fsync=off``: what the tests check is what chatserver does (a write returns
after its ``COMMIT``), not that PostgreSQL's own flush reaches the disk, and
with the flushes a test's schema (one migration) costs three times as long on
a slow disk.  ``PostgresServer(bindir)`` alone keeps ``fsync=on`` (the
throughput figures in docs/scaling.md were measured so).  The
``postgres_url`` fixture gives each test a schema of its own on the server
(``?search_path=...``), so tests never see each other's rows and need no
database of their own (a schema is made in milliseconds).  Tests are skipped,
with the reason, only when no ``initdb`` binary exists.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .redis_server import free_port

USER = "chat"


def pg_bin() -> Path | None:
    """The directory of Debian's newest PostgreSQL binaries, or ``None``."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name),
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _as_owner() -> list[str]:
    """The command prefix that runs a PostgreSQL binary as a user it accepts."""
    if os.getuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory (see the module docstring)."""

    def __init__(self, bindir: Path, *, fsync: bool = True) -> None:
        self.bin = bindir
        self.fsync = fsync
        self.dir = Path(tempfile.mkdtemp(prefix="chatserver-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.password = secrets.token_urlsafe(12)
        self.started = False

    def url(self, database: str = "postgres", **params: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        tail = f"?{query}" if query else ""
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{database}{tail}"

    def _run(self, *cmd: str) -> None:
        subprocess.run(
            [*_as_owner(), *cmd], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def start(self) -> PostgresServer:
        if os.getuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        pwfile = self.dir / "pw"
        pwfile.write_text(self.password + "\n")
        if os.getuid() == 0:
            shutil.chown(pwfile, "postgres", "postgres")
        pwfile.chmod(0o600)
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            USER,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )
        pwfile.unlink()
        self._pg_start()
        self.started = True
        return self

    def _pg_start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1"
            f" -c unix_socket_directories={self.dir} -c max_connections=200"
            f" -c shared_buffers=32MB -c fsync={'on' if self.fsync else 'off'}"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.dir / "server.log"),
            "-o",
            options,
            "-w",
            "-t",
            "30",
            "start",
        )

    def crash_restart(self) -> float:
        """Stop as a crash would (``-m immediate``: no checkpoint, crash
        recovery at start) and start again on the same data directory and
        port, without initdb; the seconds it was down."""
        began = time.monotonic()
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        self._pg_start()
        return time.monotonic() - began

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` as the superuser over the local socket; its output."""
        done = subprocess.run(
            [
                *_as_owner(),
                str(self.bin / "psql"),
                "-h",
                str(self.dir),
                "-p",
                str(self.port),
                "-U",
                USER,
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-qAtc",
                sql,
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        )
        return done.stdout

    def stop(self) -> None:
        if self.started:
            with contextlib.suppress(subprocess.CalledProcessError):
                self._run(
                    str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"
                )
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bindir = pg_bin()
    if bindir is None:
        pytest.skip("no PostgreSQL initdb binary: run scripts/setup --system")
    server = PostgresServer(bindir, fsync=False)
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # pg_ctl -w waited; the TCP port answers too
        with contextlib.suppress(subprocess.CalledProcessError):
            server.psql("SELECT 1")
            break
        time.sleep(0.05)
    yield server
    server.stop()


_schemas = itertools.count(1)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A URL whose ``search_path`` is a new, empty schema of this test's own."""
    schema = f"t{next(_schemas)}_{secrets.token_hex(3)}"
    postgres_server.psql(f"CREATE SCHEMA {schema}")
    return postgres_server.url(search_path=schema)
