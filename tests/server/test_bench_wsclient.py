"""The load generator's lean WebSocket client (``bench/wsclient.py``) against websockets.

websockets is the reference: its ``Frame`` parses every frame the client
builds (every length class, text and binary), its ``ClientProtocol`` parses
the same server bytes the client's fast path parses (split at awkward
places), and a real ``ServerProtocol`` peer on loopback checks the handshake,
pings, fragmented messages and the closing handshake.  The last test drives
the bench's bare relay (``bench.baseline_ws``, a real ``websockets`` server)
with messages of every length class.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.streams import StreamReader
from websockets.uri import parse_uri

from bench.links import MsgpackLink
from bench.wsclient import WSClient, client_frame

from ..redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]
# Payload sizes around every boundary of the 7, 16 and 64-bit length fields.
SIZES = [0, 1, 125, 126, 127, 1000, 65535, 65536, 70000]


def parse_with_websockets(data: bytes, *, mask: bool) -> list[Frame]:
    """Every frame in ``data``, parsed by websockets' ``Frame.parse``; all bytes used."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    frames = []
    while reader.buffer:
        parser = Frame.parse(reader.read_exact, mask=mask)
        try:
            next(parser)
        except StopIteration as done:
            frames.append(done.value)
        else:
            raise AssertionError("incomplete frame")
    return frames


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("opcode", [Opcode.BINARY, Opcode.TEXT])
def test_client_frames_match_websockets(size: int, opcode: Opcode) -> None:
    payload = bytes(i % 251 for i in range(size)) if opcode is Opcode.BINARY else b"e" * size
    first = 0x80 | opcode.value
    ours = client_frame(first, payload)
    (frame,) = parse_with_websockets(ours, mask=True)
    assert (frame.opcode, frame.fin, frame.data) == (opcode, True, payload)
    assert not (frame.rsv1 or frame.rsv2 or frame.rsv3)
    # Byte for byte what websockets sends, up to the random mask.
    theirs = Frame(opcode, payload).serialize(mask=True)
    assert len(ours) == len(theirs)
    head = len(ours) - size - 4
    assert ours[:head] == theirs[:head]
    masks = {client_frame(first, payload)[head : head + 4] for _ in range(20)}
    assert len(masks) > 1  # a fresh mask per frame


def server_frames() -> list[Frame]:
    """What a server may send: data frames of every size, fragments, control frames."""
    frames = [Frame(Opcode.BINARY, bytes([n % 256]) * n) for n in SIZES]
    frames += [Frame(Opcode.TEXT, "é".encode() * n) for n in (0, 70, 40000)]
    frames += [
        Frame(Opcode.TEXT, b"frag", fin=False),
        Frame(Opcode.PING, b"in between"),
        Frame(Opcode.CONT, b"ment", fin=False),
        Frame(Opcode.CONT, b"ed" * 70000),
        Frame(Opcode.BINARY, b"\x00" * 130, fin=False),
        Frame(Opcode.CONT, b"\x01"),
        Frame(Opcode.PONG, b"unsolicited"),
        Frame(Opcode.BINARY, b"after"),
    ]
    return frames


def reference_messages(data: bytes) -> tuple[list[tuple[bytes, bool]], list[Frame]]:
    """Messages and replies websockets' own client makes of the server bytes ``data``."""
    proto = ClientProtocol(parse_uri("ws://x/"), state=State.OPEN, max_size=None)
    proto.receive_data(data)
    messages: list[tuple[bytes, bool]] = []
    parts: list[bytes] = []
    text = False
    for f in proto.events_received():
        if f.opcode in (Opcode.TEXT, Opcode.BINARY):
            parts, text = [f.data], f.opcode is Opcode.TEXT
        elif f.opcode is Opcode.CONT:
            parts.append(f.data)
        else:
            continue
        if f.fin:
            messages.append((b"".join(parts), text))
    replies = parse_with_websockets(b"".join(proto.data_to_send()), mask=True)
    return messages, replies


class Peer(asyncio.Protocol):
    """A websockets ``ServerProtocol`` on loopback: accepts, records frames, sends raw bytes."""

    def __init__(self) -> None:
        self.proto = ServerProtocol()
        self.transport: asyncio.Transport | None = None
        self.frames: list[Frame] = []
        self.open = asyncio.get_running_loop().create_future()
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.proto.receive_data(data)
        for event in self.proto.events_received():
            if isinstance(event, Request):
                self.proto.send_response(self.proto.accept(event))
                if not self.open.done():
                    self.open.set_result(None)
            else:
                self.frames.append(event)
        self.flush()

    def flush(self) -> None:
        assert self.transport is not None
        for chunk in self.proto.data_to_send():
            if chunk:
                self.transport.write(chunk)
            else:
                self.transport.write_eof()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)


async def peer_and_client() -> tuple[asyncio.Server, Peer, WSClient]:
    loop = asyncio.get_running_loop()
    peers: list[Peer] = []

    def make() -> Peer:
        peers.append(Peer())
        return peers[0]

    server = await loop.create_server(make, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = await WSClient.connect(f"ws://127.0.0.1:{port}/")
    await peers[0].open
    return server, peers[0], client


async def until(check: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


@pytest.mark.anyio
@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 129, 70001, None])
async def test_parsing_matches_websockets(anyio_backend: str, chunk: int | None) -> None:
    """Server bytes handed to the client in pieces of ``chunk`` bytes, as the loop does.

    ``None``: pieces as large as the client's receive buffer.
    """
    data = b"".join(f.serialize(mask=False) for f in server_frames())
    want, want_replies = reference_messages(data)
    assert len(want) == len(SIZES) + 3 + 3
    server, peer, client = await peer_and_client()
    got: list[tuple[bytes, bool]] = []
    client.on_message = lambda d, is_text, now: got.append((d, is_text))
    assert client._lean  # the fast path is on, not websockets' parser for everything
    try:
        step = chunk or len(client.get_buffer(-1))
        for i in range(0, len(data), step):
            piece = data[i : i + step]
            buf = client.get_buffer(-1)
            buf[: len(piece)] = piece
            client.buffer_updated(len(piece))
        assert got == want
        # The ping was answered with the same pong websockets would send.
        await until(lambda: len(peer.frames) >= len(want_replies))
        assert [(f.opcode, f.data) for f in peer.frames] == [
            (f.opcode, f.data) for f in want_replies
        ]
        assert client.open
    finally:
        client.abort()
        server.close()
        await server.wait_closed()


@pytest.mark.anyio
async def test_wire_fragments_ping_and_close(anyio_backend: str) -> None:
    """Over a real socket: the client's frames reach a websockets server, and close works."""
    server, peer, client = await peer_and_client()
    got: list[tuple[bytes, bool]] = []
    closed: list[int | None] = []
    client.on_message = lambda d, is_text, now: got.append((d, is_text))
    client.on_close = closed.append
    try:
        for n in SIZES:
            client.send_bytes(bytes([n % 256]) * n)
        client.send_text("héllo")
        await until(lambda: len(peer.frames) == len(SIZES) + 1)
        assert [(f.opcode, f.data) for f in peer.frames] == [
            (Opcode.BINARY, bytes([n % 256]) * n) for n in SIZES
        ] + [(Opcode.TEXT, "héllo".encode())]
        assert peer.transport is not None
        for f in server_frames():
            peer.transport.write(f.serialize(mask=False))
        want, _ = reference_messages(b"".join(f.serialize(mask=False) for f in server_frames()))
        await until(lambda: len(got) == len(want))
        assert got == want
        # The server closes with 4003: the client answers, then sees TCP close.
        peer.proto.send_close(4003, "stalled")
        peer.flush()
        await until(lambda: bool(closed))
        assert closed == [4003] and client.close_code == 4003 and not client.open
        assert isinstance(peer.frames[-1], Frame) and peer.frames[-1].opcode is Opcode.CLOSE
        assert Close.parse(peer.frames[-1].data).code == 4003
        client.send_bytes(b"late")  # once the connection is gone, sends are ignored
    finally:
        client.abort()
        server.close()
        await server.wait_closed()


@pytest.mark.anyio
async def test_client_initiated_close(anyio_backend: str) -> None:
    server, peer, client = await peer_and_client()
    closed: list[int | None] = []
    client.on_close = closed.append
    try:
        client.close(1000)
        await until(lambda: bool(closed))
        assert closed == [1000]
        assert peer.frames and peer.frames[-1].opcode is Opcode.CLOSE
    finally:
        client.abort()
        server.close()
        await server.wait_closed()


@pytest.fixture
def ws_relay() -> Iterator[str]:
    """The bench's bare ``websockets`` relay on a free port."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.baseline_ws", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert proc.stdout is not None
        assert b"listening" in proc.stdout.readline()
        yield f"ws://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.anyio
async def test_real_relay_accepts_lean_frames(anyio_backend: str, ws_relay: str) -> None:
    """Visitor and agent on ``bench.baseline_ws``: bodies of every length class arrive whole."""
    links = []
    try:
        inbox: dict[str, list[dict[str, Any]]] = {"visitor": [], "agent": []}
        for kind, hello in (
            ("agent", {"kind": "agent", "site": "s", "name": "a", "capacity": 5}),
            ("visitor", {"kind": "visitor", "site": "s"}),
        ):
            link = await MsgpackLink.connect(ws_relay, None)
            links.append(link)
            link.on_frame = lambda f, now, box=inbox[kind]: box.append(f)
            link.send({"t": "hello", "v": 1, "id": 1, **hello})
            await until(lambda box=inbox[kind]: any(f["t"] == "welcome" for f in box))
        visitor = links[1]
        bodies = ["x" * n for n in (1, 100, 130, 70000)]
        for i, body in enumerate(bodies):
            visitor.send({"t": "send", "id": 2 + i, "cid": f"c{i}", "body": body})
        await until(lambda: sum(f["t"] == "msg" for f in inbox["agent"]) == len(bodies))
        assert [f["body"] for f in inbox["agent"] if f["t"] == "msg"] == bodies
        assert sum(f["t"] == "ack" for f in inbox["visitor"]) == len(bodies)
    finally:
        for link in links:
            link.ws.close()
        await until(lambda: all(link.ws.closed for link in links))
