"""The WebSocket path: how frames reach the socket, backpressure, the outbox bound.

The unit tests drive ``Session`` and the endpoint's drain with a stand-in
for the socket (a ``write`` that can refuse, an ASGI ``send`` that records);
the integration tests use a real server and real clients that stop reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import termios
from typing import Any

import httpx
import pytest
import websockets

from chatserver.errors import CloseCode
from chatserver.protocol.codec import Codec, Connection
from chatserver.protocol.frames import Limits
from chatserver.session import Session
from chatserver.types import ClientKind
from chatserver.web.uvicorn_ws import Gate, Inbox, frame
from chatserver.web.ws import _drain

from ..conftest import Client, Server, agent_token, seed

pytestmark = [pytest.mark.anyio]


class Socket:
    """A socket stand-in: ``write`` takes frames while ``open``; ``send`` is ASGI."""

    def __init__(self) -> None:
        self.open = True
        self.wire: list[Any] = []  # what reached the client, in order
        self.flushes = 0

    def write(self, data: bytes | str) -> bool:
        if self.open:
            self.wire.append(data)
        return self.open

    async def send(self, message: dict[str, Any]) -> None:
        await asyncio.sleep(0)  # a real send may suspend
        if message["type"] == "websocket.send":
            self.wire.append(message.get("bytes", message.get("text")))
        else:
            self.wire.append(("close", message["code"]))


def session(sock: Socket, max_outbox: int = 1000) -> tuple[Session, list[asyncio.Task[None]]]:
    conn = Connection(Codec.JSON, Limits(), 0.0)
    conn.accept(ClientKind.VISITOR)
    s = Session(conn, max_outbox)
    s.write = sock.write
    drains: list[asyncio.Task[None]] = []

    def flush() -> None:
        sock.flushes += 1
        drains.append(asyncio.ensure_future(_drain(sock.send, s)))

    s.flush = flush
    return s, drains


async def test_frames_go_straight_to_a_writable_socket() -> None:
    sock = Socket()
    s, drains = session(sock)
    for i in range(5):
        s.push(f"f{i}")
    assert sock.wire == ["f0", "f1", "f2", "f3", "f4"]
    assert s.outbox is None and not drains  # no outbox, no task


async def test_backlog_keeps_order_while_it_drains() -> None:
    sock = Socket()
    s, drains = session(sock)
    s.push("a")
    sock.open = False  # the socket's buffer is full
    s.push("b")
    s.push("c")
    assert sock.wire == ["a"] and sock.flushes == 1
    sock.open = True  # writable again, but "b" and "c" wait in the outbox
    s.push("d")  # must queue behind them, not overtake them
    assert sock.wire == ["a"]
    await asyncio.gather(*drains)
    assert sock.wire == ["a", "b", "c", "d"]
    assert not s.draining and s.outbox_bytes == 0
    s.push("e")  # drained: straight to the socket again
    assert sock.wire[-1] == "e" and sock.flushes == 1


async def test_outbox_bound_closes_slow_consumer_after_queued_frames() -> None:
    sock = Socket()
    s, drains = session(sock, max_outbox=10)
    sock.open = False
    s.push("12345")
    s.push("67890")
    assert s.close_code is None
    s.push("x")  # 11 bytes queued: over the bound
    assert s.close_code is CloseCode.SLOW_CONSUMER
    assert not s.outbox and s.outbox_bytes == 0
    s.push("late")  # nothing after the close
    await asyncio.gather(*drains)
    assert sock.wire == [("close", int(CloseCode.SLOW_CONSUMER))]


async def test_slow_consumer_close_goes_ahead_of_the_outbox_through_abort() -> None:
    """With an owner's ``abort`` the outbox is dropped and the close is not drained."""
    sock = Socket()
    s, drains = session(sock, max_outbox=10)
    aborts: list[tuple[int, str]] = []

    def abort(code: int, reason: str) -> bool:
        aborts.append((code, reason))
        return True

    s.abort = abort
    sock.open = False
    s.push("12345")  # waits in the outbox, a drain is under way
    s.push("678901")  # over the bound
    assert aborts == [(int(CloseCode.SLOW_CONSUMER), "client is not reading")]
    assert not s.outbox and s.outbox_bytes == 0 and s.draining
    s.push("late")
    assert aborts == [(int(CloseCode.SLOW_CONSUMER), "client is not reading")]
    # An owner that could not abort (the socket is gone) falls back to the drain.
    sock = Socket()
    s, drains = session(sock, max_outbox=10)
    s.abort = lambda code, reason: False
    s.close(CloseCode.SLOW_CONSUMER, "client is not reading", now=True)
    await asyncio.gather(*drains)
    assert sock.wire == [("close", int(CloseCode.SLOW_CONSUMER))]


async def test_close_sends_what_is_queued_then_the_close_frame() -> None:
    sock = Socket()
    s, drains = session(sock)
    s.close(CloseCode.INTERNAL, "bye")  # nothing queued: a drain only to close
    await asyncio.gather(*drains)
    assert sock.wire == [("close", int(CloseCode.INTERNAL))]

    sock = Socket()
    s, drains = session(sock)
    sock.open = False
    s.push("a")
    s.close(CloseCode.INTERNAL, "bye")
    await asyncio.gather(*drains)
    assert sock.wire == ["a", ("close", int(CloseCode.INTERNAL))]
    assert sock.flushes == 1


async def test_without_a_write_every_frame_is_drained_in_order() -> None:
    sock = Socket()
    s, drains = session(sock)
    s.write = None  # an ASGI server without the chatserver.write extension
    for i in range(3):
        s.push(f"f{i}")
    await asyncio.gather(*drains)
    s.push("f3")
    await asyncio.gather(*drains)
    assert sock.wire == ["f0", "f1", "f2", "f3"]


async def test_inbox_and_gate() -> None:
    inbox = Inbox()
    assert inbox.empty() and inbox.qsize() == 0
    getter = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    inbox.put_nowait(1)
    inbox.put_nowait(2)
    assert await getter == 1
    assert inbox.qsize() == 1 and await inbox.get() == 2

    gate = Gate()
    assert not gate.is_set()
    waiters = [asyncio.ensure_future(gate.wait()) for _ in range(2)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    gate.set()
    assert await asyncio.gather(*waiters) == [True, True]
    gate.clear()
    assert not gate.is_set()


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_frames_match_websockets_serialization(size: int) -> None:
    from websockets.frames import Frame, Opcode

    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert frame(data) == Frame(Opcode.BINARY, data).serialize(mask=False)
    text = ("é" * size)[: max(0, size // 2)]
    assert frame(text) == Frame(Opcode.TEXT, text.encode()).serialize(mask=False)
    assert frame(text) is frame(text)  # a fan-out frames a message once


# -- a real server -------------------------------------------------------------


@pytest.mark.usefixtures("close_clients")
async def test_agent_that_stops_reading_is_closed_4003(server: Server) -> None:
    """A stalled agent is closed with slow_consumer; nobody else notices."""
    shop = await seed(server.data)
    (email,) = shop.agents
    agent = await Client.agent(server, email)
    visitor = await Client.visitor(server, shop.key)
    body = "é" * 4000  # about 8 KB of UTF-8 per message
    ack = await visitor.request({"t": "send", "cid": "c0", "body": body})
    conv = ack["conv"]
    for i in range(1, 40):
        await visitor.send({"t": "send", "id": 1000 + i, "cid": f"c{i}", "body": body})
    await visitor.expect("ack", lambda f: f["cid"] == "c39")
    await agent.expect("msg", lambda f: f.get("cid") == "c39")

    # The agent stops reading and asks for the 320 KB history 60 times: far more
    # than the kernel's buffers, the transport's and the 1 MiB outbox hold.
    agent.ws.transport.pause_reading()
    for i in range(60):
        await agent.send({"t": "history", "id": 5000 + i, "conv": conv, "limit": 200})

    # Everyone else is served meanwhile.
    reply = await visitor.request({"t": "ping"})
    assert reply["t"] == "pong"
    # Wait until the server stops writing to the agent (its receive queue is stable).
    sock = agent.ws.transport.get_extra_info("socket")
    queued, stable_since = -1, 0.0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while loop.time() < deadline:
        now = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
        if now != queued:
            queued, stable_since = now, loop.time()
        elif loop.time() - stable_since > 1.0:
            break
        await asyncio.sleep(0.1)
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{server.url}/healthz")).status_code == 200
    agent.ws.transport.resume_reading()
    code, reason = await asyncio.wait_for(agent.closed, 30)
    assert code == int(CloseCode.SLOW_CONSUMER), (code, reason)
    assert reason == "client is not reading"
    # Everything the agent did get before the close was in order and whole.
    offsets = [f["offset"] for f in agent.of("msg")]
    assert offsets == sorted(offsets)


@pytest.mark.usefixtures("close_clients")
async def test_healthz_counts_connections_past_hello(own_server: Server) -> None:
    server = own_server
    shop = await seed(server.data)
    server.start()

    async def stats() -> dict[str, Any]:
        async with httpx.AsyncClient() as http:
            return dict((await http.get(f"{server.url}/healthz")).json())

    async def until(connections: int, agents: int) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            s = await stats()
            if (s["connections"], s["agents_connected"]) == (connections, agents):
                return s
            assert asyncio.get_running_loop().time() < deadline, s
            await asyncio.sleep(0.05)

    assert (await stats())["connections"] == 0
    (email,) = shop.agents
    agent = await Client.agent(server, email)
    v1 = await Client.visitor(server, shop.key)
    v2 = await Client.visitor(server, shop.key)
    silent = await Client.connect(server)  # no hello yet: not counted
    await until(3, 1)
    await v1.request({"t": "send", "cid": "c1", "body": "hi"})  # follows a conversation
    s = await until(3, 1)
    assert s["channels"] > 0
    await v1.close()
    await until(2, 1)
    await agent.close()
    await v2.close()
    await silent.close()
    s = await until(0, 0)
    assert s["channels"] == 0


@pytest.mark.usefixtures("close_clients")
async def test_client_that_stops_reading_then_reads_again_gets_4003(server: Server) -> None:
    """The close frame of a slow consumer is not stuck behind the frames it never read.

    A real websockets client with a one-message queue and a small receive
    buffer stops reading, makes the server overflow its outbox, waits well
    past the moment the server gave up on it, then reads: it gets the frames
    that were already on their way, then the close ``4003 slow_consumer``
    (not a lost connection, ``1006``).
    """
    shop = await seed(server.data)
    (email,) = shop.agents
    visitor = await Client.visitor(server, shop.key)
    body = "é" * 4000  # about 8 KB of UTF-8 per message
    conv = (await visitor.request({"t": "send", "cid": "c0", "body": body}))["conv"]
    for i in range(1, 40):
        await visitor.send({"t": "send", "id": 1000 + i, "cid": f"c{i}", "body": body})
    await visitor.expect("ack", lambda f: f["cid"] == "c39")

    token = await agent_token(server, email)
    ws = await websockets.connect(
        server.ws_url, subprotocols=["chatserver.json"], compression=None, max_queue=1
    )
    try:
        await ws.send(json.dumps({"t": "hello", "v": 1, "kind": "agent", "token": token}))
        assert json.loads(await ws.recv())["t"] == "welcome"
        # From here on the client does not read: its queue fills at one message
        # and websockets stops reading the socket.
        for i in range(60):
            await ws.send(json.dumps({"t": "history", "id": i, "conv": conv, "limit": 200}))

        async def closed_4003() -> bool:
            async with httpx.AsyncClient() as http:
                text = (await http.get(f"{server.url}/metrics")).text
            return 'chatserver_connections_closed_total{code="4003"' in text

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while not await closed_4003():
            assert loop.time() < deadline, "the server never closed the slow consumer"
            await asyncio.sleep(0.1)
        # The client comes back to its socket later than the server's former
        # 2 s wait for the stuck frame (within its close timeout of 10 s).
        await asyncio.sleep(4)
        got = 0
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                json.loads(await asyncio.wait_for(ws.recv(), 30))
                got += 1
        assert ws.close_code == int(CloseCode.SLOW_CONSUMER), (ws.close_code, got)
        assert ws.close_reason == "client is not reading"
    finally:
        await ws.close()
    # Everyone else is still served.
    assert (await visitor.request({"t": "ping"}))["t"] == "pong"
