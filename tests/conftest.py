"""Shared fixtures: a real chatserver process, seeded data, real WebSocket clients.

``Server`` runs ``python -m chatserver serve`` as a subprocess on a free
127.0.0.1 port, so integration tests go through uvicorn, the real socket and
the real SQLite file, and can kill -9 it.  ``Client`` is a thin JSON or
msgpack WebSocket client that records every frame it receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgpack
import pytest
import websockets

from chatserver.security import hash_password
from chatserver.store import Store
from chatserver.store_sqlite import SQLiteStore
from chatserver.tasks import stop
from chatserver.types import Role, Site, SiteSettings

from . import wire_check
from .redis_server import free_port

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"
_PASSWORD_HASH = hash_password(PASSWORD)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Server:
    """A chatserver process on a free port with its own data directory."""

    def __init__(
        self, data: Path, *extra: str, grace: float = 1.0, env: dict[str, str] | None = None
    ) -> None:
        self.data = data
        self.extra = extra
        self.env = env  # added to the test's environment (a secret such as an S3 key)
        self.grace = grace
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self) -> Server:
        self.data.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "chatserver.cli",
            "serve",
            "--port",
            str(self.port),
            "--data",
            str(self.data),
            "--grace",
            str(self.grace),
            "--log-level",
            "warning",
            # Every test connects from 127.0.0.1: the per-address limits are
            # tested on their own (test_anonymous_limits.py, which sets them);
            # a test's own options come after these and win.
            "--hellos-per-address",
            "0",
            "--uploads-per-address",
            "0",
            *self.extra,
        ]
        with open(self.log, "ab") as log:
            env = {**os.environ, **self.env} if self.env else None
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("server did not come up")

    def kill(self) -> None:
        """kill -9: no shutdown code runs."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> Server:
        self.stop()
        return self.start()


@dataclass
class Shop:
    """A seeded site with agents (all with password ``PASSWORD``)."""

    site: Site
    agents: dict[str, str]  # email -> agent id

    @property
    def key(self) -> str:
        return self.site.key


async def seed(
    data: Path,
    agents: int = 1,
    capacity: int = 5,
    settings: SiteSettings | None = None,
    departments: tuple[str, ...] = (),
    agent_departments: dict[int, tuple[str, ...]] | None = None,
    origins: tuple[str, ...] = (),
    redis_url: str | None = None,
    roles: dict[int, Role] | None = None,
) -> Shop:
    """Create a site and ``agents`` agents directly in the server's store.

    That is the SQLite file in ``data``, or the Redis at ``redis_url``.
    ``roles`` gives agent ``i`` another role than ``agent``.
    """
    store: Store
    if redis_url is not None:
        from chatserver.store_redis import RedisStore

        store = RedisStore(redis_url)
    else:
        store = SQLiteStore(data / "chatserver.db")
    await store.start()
    try:
        return await seed_store(
            store, agents, capacity, settings, departments, agent_departments, origins, roles
        )
    finally:
        await store.close()


async def seed_store(
    store: Store,
    agents: int = 1,
    capacity: int = 5,
    settings: SiteSettings | None = None,
    departments: tuple[str, ...] = (),
    agent_departments: dict[int, tuple[str, ...]] | None = None,
    origins: tuple[str, ...] = (),
    roles: dict[int, Role] | None = None,
) -> Shop:
    """``seed`` into a started ``store`` (the in-process node's, ``tests/node.py``)."""
    site = await store.create_site("Test shop", origins, settings, departments)
    made = {}
    for i in range(agents):
        email = f"agent{i}-{site.id}@test.shop"
        depts = (agent_departments or {}).get(i, departments)
        agent = await store.create_agent(
            site.id,
            email,
            f"Agent {i}",
            _PASSWORD_HASH,
            (roles or {}).get(i, Role.AGENT),
            capacity,
            depts,
        )
        made[email] = agent.id
    return Shop(site, made)


# Request ids of ``Client.request``: far above the small ids tests write by
# hand (``{"id": 1000 + i}``), so a reply to one of those is never taken for
# the reply to a request, however many requests earlier tests made.
_rid = itertools.count(1_000_000_000)


class Client:
    """A real WebSocket client that keeps every frame it received."""

    live: list[Client] = []  # closed by the ``close_clients`` fixture

    def __init__(self, ws: Any, codec: str) -> None:
        Client.live.append(self)
        self.ws = ws
        self.codec = codec
        self.frames: list[dict[str, Any]] = []
        self._new = asyncio.Condition()
        self._reader = asyncio.ensure_future(self._read())
        self.closed: asyncio.Future[tuple[int | None, str]] = (
            asyncio.get_running_loop().create_future()
        )
        self.welcome: dict[str, Any] = {}

    @classmethod
    async def connect(cls, server: Server, codec: str = "json", **kw: Any) -> Client:
        ws = await websockets.connect(
            server.ws_url, subprotocols=[f"chatserver.{codec}"], compression=None, **kw
        )
        return cls(ws, codec)

    @classmethod
    async def visitor(
        cls,
        server: Server,
        site_key: str,
        token: str | None = None,
        codec: str = "json",
        **hello: Any,
    ) -> Client:
        client = await cls.connect(server, codec)
        frame = {"t": "hello", "v": 1, "kind": "visitor", "site": site_key, **hello}
        if token:
            frame["token"] = token
        await client.send(frame)
        client.welcome = await client.expect("welcome")
        return client

    @classmethod
    async def agent(
        cls, server: Server, email: str, codec: str = "json", status: str | None = None
    ) -> Client:
        token = await agent_token(server, email)
        client = await cls.connect(server, codec)
        frame = {"t": "hello", "v": 1, "kind": "agent", "token": token}
        if status:
            frame["status"] = status
        await client.send(frame)
        client.welcome = await client.expect("welcome")
        return client

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                frame = msgpack.unpackb(raw) if isinstance(raw, bytes) else json.loads(raw)
                wire_check.check(frame)
                async with self._new:
                    self.frames.append(frame)
                    self._new.notify_all()
        except websockets.ConnectionClosed:
            pass
        finally:
            if not self.closed.done():
                self.closed.set_result((self.ws.close_code, self.ws.close_reason or ""))
            async with self._new:
                self._new.notify_all()

    async def send(self, frame: dict[str, Any]) -> None:
        if self.codec == "json":
            await self.ws.send(json.dumps(frame))
        else:
            await self.ws.send(msgpack.packb(frame))

    async def send_raw(self, data: bytes | str) -> None:
        await self.ws.send(data)

    async def expect(
        self,
        t: str,
        where: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float = 5.0,
        after: int = 0,
    ) -> dict[str, Any]:
        """The first frame of type ``t`` (matching ``where``) at index >= ``after``."""
        deadline = asyncio.get_running_loop().time() + timeout
        async with self._new:
            while True:
                for frame in self.frames[after:]:
                    if frame.get("t") == t and (where is None or where(frame)):
                        return frame
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0 or self.closed.done():
                    got = [f.get("t") for f in self.frames[after:]]
                    raise AssertionError(f"no {t!r} frame; got {got}; closed={self.closed.done()}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._new.wait(), remaining)

    async def request(self, frame: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
        """Send with a fresh request id; return the reply (or error) carrying it."""
        rid = next(_rid)
        start = len(self.frames)  # the reply comes after the request
        await self.send({**frame, "id": rid})
        deadline = asyncio.get_running_loop().time() + timeout
        async with self._new:
            while True:
                for f in self.frames[start:]:
                    if f.get("re") == rid:
                        return f
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0 or self.closed.done():
                    raise AssertionError(f"no reply to {frame.get('t')} #{rid}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._new.wait(), remaining)

    def of(self, t: str, conv: str | None = None) -> list[dict[str, Any]]:
        return [
            f for f in self.frames if f.get("t") == t and (conv is None or f.get("conv") == conv)
        ]

    def texts(self, conv: str | None = None) -> list[str]:
        return [f["body"] for f in self.of("msg", conv) if f["kind"] == "text"]

    async def quiet(self, seconds: float = 0.3) -> None:
        await asyncio.sleep(seconds)

    async def close(self) -> None:
        await self.ws.close()
        await stop(self._reader)


@pytest.fixture(autouse=True)
def wire_frames_declared() -> Iterator[None]:
    """Fail a test whose clients received a frame unlike its declaration
    (``chatserver/protocol/wire.py``; tests/wire_check.py)."""
    wire_check.take()
    yield
    found = wire_check.take()
    assert not found, "server frames unlike chatserver/protocol/wire.py:\n" + "\n".join(found)


@pytest.fixture
async def close_clients() -> AsyncIterator[None]:
    """Close every client the test opened (use with anyio tests)."""
    yield
    while Client.live:
        await Client.live.pop().close()


async def agent_token(server: Server, email: str) -> str:
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{server.url}/api/login", json={"email": email, "password": PASSWORD})
        r.raise_for_status()
        return str(r.json()["token"])


_CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token a console page carries in its forms."""
    found = _CSRF_FIELD.search(html)
    assert found, "no csrf field in the page"
    return found.group(1)


async def console_login(
    http: httpx.AsyncClient, email: str, password: str = PASSWORD
) -> httpx.Response:
    """Sign ``http`` (with ``base_url`` set to the server) into the console like a browser."""
    page = await http.get("/console/login")
    return await http.post(
        "/console/login",
        data={"email": email, "password": password, "csrf": csrf_of(page.text)},
        headers={"Origin": str(http.base_url).rstrip("/")},
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server per test module; tests isolate themselves with their own site."""
    srv = Server(tmp_path_factory.mktemp("server")).start()
    yield srv
    srv.stop()


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Server]:
    """A server of the test's own, for tests that kill or restart it."""
    srv = Server(tmp_path / "server")
    yield srv
    srv.stop()


from .node import node, two_nodes  # noqa: E402, F401  (the in-process node fixtures)
from .postgres_server import postgres_server, postgres_url  # noqa: E402, F401  (fixtures)
from .redis_server import own_redis, redis_prefix, redis_server  # noqa: E402, F401  (fixtures)
from .s3_server import s3_prefix, s3_server  # noqa: E402, F401  (fixtures)
