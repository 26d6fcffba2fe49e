"""An in-process chatserver node: the server's real parts, no process, no socket.

``Node`` builds the application with ``chatserver.web.app.create_app``, so its
parts are exactly the ones a server process makes (the ``Hub`` with its
trigger engine, the ``SQLiteStore`` in the test's directory, the memory
broker, router and presence of ``chatserver/backends.py``, ``DirectoryBlobs``,
the ``Signer`` and the recordings feature), and runs the app's own lifespan to
start and close them.

``NodeClient`` is ``tests/conftest.py``'s ``Client`` with the socket
replaced.  It is an ASGI WebSocket connection to that app: ``ChatApp`` hands
it to the real endpoint (``web.ws.websocket_endpoint``), which feeds the
client's encoded frames to the real ``protocol.Connection`` and the hub.  What
the session writes goes through the write extension the uvicorn server
offers (``uvicorn_ws.WRITE_EXTENSION``) into the client's buffer, where the
real codec (``protocol.decode``) reads it back.  So a test sees the frames a
socket would carry, in the same order, with the same close codes; only the
network, uvicorn and the server process are left out.

HTTP routes (uploads, ``/api/login``, the console) are reached on the same
app with ``Node.http`` (httpx's ASGI transport, client address 127.0.0.1).

Use the ``node`` fixture (registered in ``tests/conftest.py``)::

    async def test_chat(node: Node) -> None:
        shop = await node.seed(agents=1)
        agent = await node.agent(next(iter(shop.agents)))
        visitor = await node.visitor(shop.key)

Like ``Server``, the node allows every hello and upload from one address
(every client is 127.0.0.1) and gives agents one second of grace.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import msgpack
import pytest

from chatserver import logins
from chatserver.config import Config
from chatserver.hub import Hub
from chatserver.node import Node as ChatNode
from chatserver.protocol.codec import decode
from chatserver.quotas import QuotaConfig
from chatserver.store import Store
from chatserver.tasks import stop
from chatserver.types import JSON, Role, SiteSettings
from chatserver.web.app import create_app as _create_app
from chatserver.web.uvicorn_ws import CLOSE_EXTENSION, WRITE_EXTENSION
from chatserver.web.ws import ChatApp

from . import wire_check
from .conftest import Client, Shop, seed_store
from .redis_server import RedisServer

CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
_ports = itertools.count(40_000)  # each client its own (pretend) source port


def node_config(data: Path, **overrides: Any) -> Config:
    """The ``Config`` of a test node: ``Server``'s options (see tests/conftest.py).

    SQLite commits without an fsync each (``synchronous=normal``): surviving a
    power loss is not what in-process tests test, and an fsync per commit would
    be most of their time.  Pass ``sqlite_sync="full"`` for the server's default.
    """
    quotas = QuotaConfig(hellos_per_address=0, uploads_per_address=0)
    config = Config(data_dir=data, grace=1.0, quotas=quotas, sqlite_sync="normal")
    return replace(config, **overrides)


class Node:
    """The app of ``create_app(config)``, started in this event loop (see the module)."""

    def __init__(self, data: Path, **config: Any) -> None:
        self.config = node_config(data, **config)
        app = _create_app(self.config)
        assert isinstance(app, ChatApp)
        self.app = app
        self.parts: ChatNode = app.state.node  # chatserver's Node
        self.hub: Hub = self.parts.hub
        self.clients: list[NodeClient] = []
        self._lifespan: AbstractAsyncContextManager[Any] | None = None

    @property
    def store(self) -> Store:
        return self.hub.store

    async def start(self) -> Node:
        """Run the app's lifespan start-up (store, hub, recordings)."""
        self._lifespan = self.app.router.lifespan_context(self.app)
        await self._lifespan.__aenter__()
        return self

    async def close(self) -> None:
        """Close every client, then run the lifespan's shutdown."""
        while self.clients:
            await self.clients.pop().close()
        if self._lifespan is not None:
            lifespan, self._lifespan = self._lifespan, None
            try:
                await lifespan.__aexit__(None, None, None)
            finally:
                # The start-up froze every object alive (gc.freeze, for a server
                # process's lifetime); in a test process they must be freed again.
                gc.unfreeze()

    # -- data -------------------------------------------------------------------

    async def seed(
        self,
        agents: int = 1,
        capacity: int = 5,
        settings: SiteSettings | None = None,
        departments: tuple[str, ...] = (),
        agent_departments: dict[int, tuple[str, ...]] | None = None,
        origins: tuple[str, ...] = (),
        roles: dict[int, Role] | None = None,
    ) -> Shop:
        """A site and its agents in the node's store (``conftest.seed``'s data)."""
        return await seed_store(
            self.store, agents, capacity, settings, departments, agent_departments, origins, roles
        )

    async def agent_token(self, email: str) -> str:
        """A token of a new sign-in of the agent, made as ``POST /api/login`` makes it
        once the password is right (``logins.grant``, ``Hub.agent_token``)."""
        agent = await self.store.agent_by_email(email)
        assert agent is not None, f"no agent {email}"
        return self.hub.agent_token(await logins.grant(self.store, agent))

    # -- clients ----------------------------------------------------------------

    async def connect(
        self, codec: str = "json", origin: str | None = None, user_agent: str = CHROME
    ) -> NodeClient:
        """A connection that has not said hello yet."""
        client = NodeClient(self.app, codec, origin, user_agent)
        self.clients.append(client)
        await client.accepted
        return client

    async def visitor(
        self,
        site_key: str,
        token: str | None = None,
        codec: str = "json",
        origin: str | None = None,
        **hello: Any,
    ) -> NodeClient:
        """A visitor past its ``welcome`` (like ``Client.visitor``)."""
        client = await self.connect(codec, origin)
        frame = {"t": "hello", "v": 1, "kind": "visitor", "site": site_key, **hello}
        if token:
            frame["token"] = token
        await client.send(frame)
        client.welcome = await client.expect("welcome")
        return client

    async def agent(self, email: str, codec: str = "json", status: str | None = None) -> NodeClient:
        """An agent past its ``welcome``, with a token of a new sign-in (like ``Client.agent``)."""
        client = await self.connect(codec)
        frame = {"t": "hello", "v": 1, "kind": "agent", "token": await self.agent_token(email)}
        if status:
            frame["status"] = status
        await client.send(frame)
        client.welcome = await client.expect("welcome")
        return client

    def http(self) -> httpx.AsyncClient:
        """An HTTP client of the node's routes (close it, or use ``async with``)."""
        transport = httpx.ASGITransport(app=self.app)
        return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")


class NodeClient(Client):
    """``Client`` over an in-process ASGI WebSocket to a ``Node`` (see the module).

    ``frames``, ``expect``, ``request``, ``of``, ``texts`` and ``closed`` are
    ``Client``'s; ``send`` hands the encoded frame to the endpoint without
    waiting for it to be handled, as a socket would.
    """

    def __init__(self, app: ChatApp, codec: str, origin: str | None, user_agent: str) -> None:
        # Not Client.__init__: there is no websocket to read.
        self.ws = None
        self.codec = codec
        self.frames: list[dict[str, Any]] = []
        self._new = asyncio.Condition()
        loop = asyncio.get_running_loop()
        self.closed: asyncio.Future[tuple[int | None, str]] = loop.create_future()
        self.accepted: asyncio.Future[str | None] = loop.create_future()
        self.welcome: dict[str, Any] = {}
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()  # client -> endpoint
        self._wire: asyncio.Queue[bytes | str | tuple[int, str]] = asyncio.Queue()  # the other way
        self._shut = False  # the endpoint sent its close
        headers = [(b"host", b"127.0.0.1"), (b"user-agent", user_agent.encode())]
        if origin is not None:
            headers.append((b"origin", origin.encode()))
        scope: dict[str, Any] = {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "scheme": "ws",
            "path": "/ws",
            "raw_path": b"/ws",
            "root_path": "",
            "query_string": b"",
            "headers": headers,
            "client": ("127.0.0.1", next(_ports)),
            "server": ("127.0.0.1", 80),
            "subprotocols": [f"chatserver.{codec}"],
            "extensions": {WRITE_EXTENSION: self._write, CLOSE_EXTENSION: self._close_now},
        }
        self._reader = asyncio.ensure_future(self._read())
        self._inbox.put_nowait({"type": "websocket.connect"})
        self._endpoint = asyncio.ensure_future(app(scope, self._inbox.get, self._asgi_send))
        self._endpoint.add_done_callback(self._endpoint_done)

    # -- the endpoint's side of the "socket" --------------------------------------

    def _write(self, data: bytes | str) -> bool:
        """The write extension: the socket always takes the bytes (no backlog)."""
        if self._shut:
            return False
        self._wire.put_nowait(data)
        return True

    def _close_now(self, code: int, reason: str) -> bool:
        """The close extension: the close frame goes out at once."""
        self._server_closed(code, reason)
        return True

    async def _asgi_send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "websocket.accept":
            if not self.accepted.done():
                self.accepted.set_result(message.get("subprotocol"))
        elif kind == "websocket.send":  # the drain of an outbox (a refused write)
            data = message.get("bytes")
            self._wire.put_nowait(data if data is not None else message.get("text") or "")
        elif kind == "websocket.close":
            self._server_closed(int(message.get("code", 1000)), message.get("reason") or "")

    def _server_closed(self, code: int, reason: str) -> None:
        if self._shut:
            return
        self._shut = True
        self._wire.put_nowait((code, reason))
        # The peer answers a close frame with its own: the endpoint reads a disconnect.
        self._inbox.put_nowait({"type": "websocket.disconnect", "code": code})

    def _endpoint_done(self, task: asyncio.Future[None]) -> None:
        if not self.accepted.done():
            self.accepted.set_result(None)
        if not self._shut:  # ended without a close frame (the client left)
            self._shut = True
            self._wire.put_nowait((1000, ""))

    # -- the client's side --------------------------------------------------------

    async def _read(self) -> None:
        try:
            while True:
                data = await self._wire.get()
                if isinstance(data, tuple):
                    if not self.closed.done():
                        self.closed.set_result(data)
                    return
                frame = decode(data)
                wire_check.check(frame)
                async with self._new:
                    self.frames.append(frame)
                    self._new.notify_all()
        finally:
            if not self.closed.done():
                self.closed.set_result((None, ""))
            async with self._new:
                self._new.notify_all()

    async def send(self, frame: dict[str, Any]) -> None:
        if self.codec == "json":
            await self.send_raw(json.dumps(frame))
        else:
            await self.send_raw(msgpack.packb(frame))

    async def send_raw(self, data: bytes | str) -> None:
        if isinstance(data, bytes):
            self._inbox.put_nowait({"type": "websocket.receive", "bytes": data})
        else:
            self._inbox.put_nowait({"type": "websocket.receive", "text": data})

    async def close(self) -> None:
        """Close as a client does (code 1000); the endpoint ends as on a real close."""
        if not self._endpoint.done():
            self._inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._endpoint), 5.0)
            await stop(self._endpoint)
        await stop(self._reader)


class HeldRecord:
    """Holds the first publish of a ``conv`` record that ``pick`` chooses until
    ``released`` is set (as a loaded machine delays a task between reading a
    record and sending it); the node's real broker sends it then."""

    def __init__(
        self, node: Node, monkeypatch: pytest.MonkeyPatch, pick: Callable[[JSON], bool]
    ) -> None:
        self.reached = asyncio.Event()
        self.released = asyncio.Event()
        broker = node.parts.broker
        publish: Callable[[str, JSON], Awaitable[None]] = broker.publish

        async def held(channel: str, event: JSON) -> None:
            frame = event.get("frame") or {}
            if frame.get("t") == "conv" and pick(frame["conv"]) and not self.reached.is_set():
                self.reached.set()
                await asyncio.wait_for(self.released.wait(), 5)
            await publish(channel, event)

        monkeypatch.setattr(broker, "publish", held)


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    """A started in-process node with its data in ``tmp_path / "node"``."""
    started = await Node(tmp_path / "node").start()
    try:
        yield started
    finally:
        await started.close()


@pytest.fixture
async def two_nodes(tmp_path: Path, redis: RedisServer) -> AsyncIterator[tuple[Node, Node]]:
    """Two nodes sharing a redis-server (store, routing, fan-out): two processes' parts."""
    a = await Node(tmp_path / "a", redis_url=redis.url).start()
    try:
        b = await Node(tmp_path / "b", redis_url=redis.url).start()
        try:
            yield a, b
        finally:
            await b.close()
    finally:
        await a.close()
