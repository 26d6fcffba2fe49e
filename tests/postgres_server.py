"""A real PostgreSQL server for tests: free port, temporary directory, a password.

``PostgresServer`` runs Debian's ``initdb`` and ``pg_ctl`` (the ``postgresql``
package; ``scripts/setup --system`` installs it) as the unprivileged
``postgres`` system user when the tests run as root (PostgreSQL refuses to
run as root), in a temporary directory that user owns.  It listens on
127.0.0.1 only, on a free port, and asks for a password over TCP
(scram-sha-256), so the URLs the tests use carry one, as a deployment's
would.

The launcher itself is ``bench/pgserver.py`` (the benchmarks start one
too, and ``bench`` does not import ``tests``); this module re-exports it.
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

import itertools
import secrets
from collections.abc import Iterator

import pytest

from bench.pgserver import PostgresServer, pg_bin

__all__ = ["PostgresServer", "pg_bin", "postgres_server", "postgres_url"]


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
    server.wait_ready()  # pg_ctl -w waited; the TCP port answers too
    yield server
    server.stop()


_schemas = itertools.count(1)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A URL whose ``search_path`` is a new, empty schema of this test's own."""
    schema = f"t{next(_schemas)}_{secrets.token_hex(3)}"
    postgres_server.psql(f"CREATE SCHEMA {schema}")
    return postgres_server.url(search_path=schema)
