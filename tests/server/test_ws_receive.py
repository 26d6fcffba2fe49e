"""The receive path of ``uvicorn_ws.ChatWebSocketProtocol``, frame by frame.

Each scenario writes raw bytes (handshake, then hand-built client frames,
whole, several per write or byte by byte) to a real uvicorn server on a
real socket, and records what comes back on the wire and what the
application saw.  It runs once with chatserver's protocol and once with
uvicorn's stock ``websockets-sansio`` protocol, and the two must agree;
each test also states the expected result, so a shared mistake fails too.
The application echoes every message and records the disconnect code.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import msgpack
import pytest
import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from chatserver.web.uvicorn_ws import ChatWebSocketProtocol

from ..conftest import Server, seed

pytestmark = [pytest.mark.anyio]

MAX_SIZE = 100_000  # ws_max_size of the test servers
TEXT, BINARY, CLOSE, PING, PONG, CONT = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0


class Chat(ChatWebSocketProtocol):
    """chatserver's protocol, remembering its instances to read ``fast_frames``."""

    made: list[ChatWebSocketProtocol] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        Chat.made.append(self)


def client_frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bool = True,
    wide: int = 0,
    key: bytes | None = None,
) -> bytes:
    """A client frame; ``wide`` forces the 2- or 8-byte length form (RFC 6455 §5.2)."""
    head = (0x80 if fin else 0) | rsv << 4 | opcode
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126 and not wide:
        out = bytes((head, bit | n))
    elif n < 65536 and wide != 8:
        out = struct.pack("!BBH", head, bit | 126, n)
    else:
        out = struct.pack("!BBQ", head, bit | 127, n)
    if not mask:
        return out + payload
    key = os.urandom(4) if key is None else key
    return out + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def text(s: str | bytes, **kw: Any) -> bytes:
    return client_frame(TEXT, s.encode() if isinstance(s, str) else s, **kw)


def binary(b: bytes, **kw: Any) -> bytes:
    return client_frame(BINARY, b, **kw)


def close(code: int = 1000) -> bytes:
    return client_frame(CLOSE, struct.pack("!H", code))


@dataclass
class Split:
    """Write these bytes one at a time."""

    data: bytes


@dataclass
class Echoes:
    """Wait until this many frames came back in all."""

    count: int


@dataclass
class Pause:
    """Let the server read what was written so far before writing on."""

    seconds: float = 0.05


@dataclass
class Outcome:
    wire: list[tuple[int, bytes]]  # (opcode, payload) of every frame the server sent
    app: list[Any]  # what the application received
    fast: int = field(default=-1, compare=False)  # frames the fast path read (chat only)


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "websocket"
    log: list[Any] = scope["state"]["log"]
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        event = await receive()
        if event["type"] == "websocket.disconnect":
            log.append(("disconnect", event["code"]))
            return
        if event.get("text") is not None:
            log.append(("text", event["text"]))
            if event["text"] == "close-me":
                await send({"type": "websocket.close", "code": 4001})
                continue
            with contextlib.suppress(Exception):
                await send({"type": "websocket.send", "text": event["text"]})
        else:
            log.append(("bytes", event["bytes"]))
            with contextlib.suppress(Exception):
                await send({"type": "websocket.send", "bytes": event["bytes"]})


@contextlib.asynccontextmanager
async def serving(
    protocol: type[Any], log: list[Any], max_size: int, app: Any = None
) -> AsyncIterator[int]:
    async def lifespan_state_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope["state"]["log"] = log
        await echo_app(scope, receive, send)

    config = uvicorn.Config(
        app or lifespan_state_app,
        host="127.0.0.1",
        port=0,
        ws=protocol,
        ws_max_size=max_size,
        ws_per_message_deflate=False,
        ws_ping_interval=None,
        lifespan="off",
        log_level="critical",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.01)
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await task


def parse_server_frames(buf: bytearray) -> list[tuple[int, bytes]]:
    """Take every complete (unmasked) server frame off the front of ``buf``."""
    out = []
    while len(buf) >= 2:
        n, at = buf[1] & 0x7F, 2
        if n == 126:
            if len(buf) < 4:
                break
            n, at = struct.unpack("!H", buf[2:4])[0], 4
        elif n == 127:
            if len(buf) < 10:
                break
            n, at = struct.unpack("!Q", buf[2:10])[0], 10
        if len(buf) < at + n:
            break
        out.append((buf[0] & 0x0F, bytes(buf[at : at + n])))
        del buf[: at + n]
    return out


async def talk(
    port: int, steps: list[bytes | Split | Echoes | Pause], path: str = "/", headers: str = ""
) -> list[tuple[int, bytes]]:
    """Open a WebSocket by hand, run ``steps``, read until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            f"{headers}\r\n".encode()
        )
        response = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert response.startswith(b"HTTP/1.1 101"), response
        wire: list[tuple[int, bytes]] = []
        buf = bytearray()

        async def read_more() -> bool:
            chunk = await reader.read(1 << 16)
            buf.extend(chunk)
            wire.extend(parse_server_frames(buf))
            return bool(chunk)

        for step in steps:
            if isinstance(step, Pause):
                await asyncio.sleep(step.seconds)
            elif isinstance(step, Echoes):
                async with asyncio.timeout(5):
                    while len(wire) < step.count:
                        assert await read_more(), f"closed early: {wire}"
            elif isinstance(step, Split):
                for i in range(len(step.data)):
                    writer.write(step.data[i : i + 1])
                    await writer.drain()
                    await asyncio.sleep(0.001 if i < 200 else 0)
            else:
                writer.write(step)
                await writer.drain()
        async with asyncio.timeout(5):
            while await read_more():
                pass
        assert not buf, f"trailing bytes {bytes(buf)!r}"
        return wire
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def exchange(
    protocol: type[Any], steps: list[bytes | Split | Echoes | Pause], max_size: int = MAX_SIZE
) -> Outcome:
    """Run ``steps`` against a fresh echo server."""
    log: list[Any] = []
    Chat.made.clear()
    async with serving(protocol, log, max_size) as port:
        wire = await talk(port, steps)
        async with asyncio.timeout(5):  # the application has seen the end
            while not log or log[-1][0] != "disconnect":
                await asyncio.sleep(0.01)
    fast = Chat.made[0].fast_frames if Chat.made else -1
    return Outcome(wire, log, fast)


async def both(steps: list[bytes | Split | Echoes | Pause], max_size: int = MAX_SIZE) -> Outcome:
    """The chat protocol's outcome, after checking the stock one is the same."""
    chat = await exchange(Chat, steps, max_size)
    stock = await exchange(WebSocketsSansIOProtocol, steps, max_size)
    assert chat == stock
    return chat


def close_code(wire: list[tuple[int, bytes]]) -> int:
    opcode, payload = wire[-1]
    assert opcode == CLOSE, wire
    return int(struct.unpack("!H", payload[:2])[0])


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, MAX_SIZE])
async def test_every_length_class_is_read(size: int) -> None:
    data = os.urandom(size)
    out = await both([binary(data), text("é" * (size // 2)), Echoes(2), close()])
    assert out.wire[:2] == [(BINARY, data), (TEXT, ("é" * (size // 2)).encode())]
    assert close_code(out.wire) == 1000
    assert out.app == [("bytes", data), ("text", "é" * (size // 2)), ("disconnect", 1000)]
    if size <= 125:
        assert out.fast == 2  # one small write is one read


async def test_several_frames_in_one_write_keep_their_order() -> None:
    frames = [text(f"m{i}") if i % 2 else binary(b"b%d" % i) for i in range(40)]
    out = await both([b"".join(frames), Echoes(40), close()])
    expect = [(TEXT, b"m%d" % i) if i % 2 else (BINARY, b"b%d" % i) for i in range(40)]
    assert out.wire[:40] == expect
    assert out.fast == 40


async def test_non_minimal_lengths_are_accepted_as_websockets_does() -> None:
    out = await both([text("short", wide=2), binary(b"x" * 200, wide=8), Echoes(2), close()])
    assert out.wire[:2] == [(TEXT, b"short"), (BINARY, b"x" * 200)]


async def test_frames_split_byte_by_byte() -> None:
    long = binary(b"z" * 70_000)
    steps: list[bytes | Split | Echoes | Pause] = [
        Split(text("hello")),
        Echoes(1),
        Split(binary(b"y" * 300)),  # 2-byte length
        Echoes(2),
        Split(long[:40]),  # 8-byte length: a header and a little payload,
        long[40:],  # then the rest in one write
        text("after"),
        Echoes(4),
        close(),
    ]
    out = await both(steps)
    assert [p for _, p in out.wire[:4]] == [b"hello", b"y" * 300, b"z" * 70_000, b"after"]
    assert close_code(out.wire) == 1000


async def test_a_frame_split_across_writes_then_whole_frames() -> None:
    frame = text("split in two")
    out = await both(
        [frame[:3], Pause(), frame[3:] + text("whole"), Echoes(2), text("next"), Echoes(3), close()]
    )
    assert [p for _, p in out.wire[:3]] == [b"split in two", b"whole", b"next"]
    assert out.fast >= 1  # "next" arrived alone, with websockets' parser idle


@pytest.mark.parametrize("cut", [1, 2, 6, 10])
async def test_the_rest_of_a_frame_never_takes_the_fast_path(cut: int) -> None:
    # With a zero mask the payload is plain on the wire; it holds what
    # looks like a whole client frame, and the outer frame is cut before it.
    inner = text("inner")
    outer = client_frame(BINARY, b"A" * (10 - cut) + inner + b"B" * 10, key=bytes(4))
    out = await both([outer[: 6 + 10 - cut], Pause(), outer[6 + 10 - cut :], Echoes(1), close()])
    assert out.app[0] == ("bytes", b"A" * (10 - cut) + inner + b"B" * 10)
    assert out.wire[0] == (BINARY, b"A" * (10 - cut) + inner + b"B" * 10)


async def test_a_data_frame_after_a_fragment_in_another_read_closes_1002() -> None:
    first = client_frame(TEXT, b"a", fin=False)
    out = await both([first, Pause(), text("not a continuation")])
    assert close_code(out.wire) == 1002


async def test_ping_mid_stream_is_answered_in_order() -> None:
    ping = client_frame(PING, b"are you there")
    out = await both([text("a") + ping + binary(b"b") + text("c"), Echoes(4), close()])
    assert out.wire[0] == (PONG, b"are you there")  # written while the read is handled
    assert out.wire[1:4] == [(TEXT, b"a"), (BINARY, b"b"), (TEXT, b"c")]
    assert out.app[:3] == [("text", "a"), ("bytes", b"b"), ("text", "c")]


async def test_unsolicited_pong_is_ignored() -> None:
    out = await both([client_frame(PONG, b"hi") + text("a"), Echoes(1), close()])
    assert out.wire[0] == (TEXT, b"a")


async def test_fragmented_message_is_reassembled() -> None:
    first = client_frame(TEXT, b"frag", fin=False)
    ping = client_frame(PING, b"p")
    rest = client_frame(CONT, "mént".encode(), fin=False) + client_frame(CONT, b"ed")
    out = await both([first, Pause(), ping + rest + binary(b"then"), Echoes(3), close()])
    assert out.wire[:3] == [(PONG, b"p"), (TEXT, "fragménted".encode()), (BINARY, b"then")]


@pytest.mark.parametrize(
    "bad",
    [
        text("unmasked", mask=False),
        binary(b"rsv1", rsv=4),
        binary(b"rsv2", rsv=2),
        text("rsv3", rsv=1),
        client_frame(0x3, b"reserved opcode"),
        client_frame(CONT, b"continuation without a start"),
        client_frame(PING, b"p", fin=False),
        client_frame(PING, b"p" * 126),
        client_frame(TEXT, b"a", fin=False) + text("a data frame inside a fragmented message"),
    ],
    # Fixed ids: the frames carry random masks, and pytest-xdist's workers must agree.
    ids=[
        "unmasked",
        "rsv1",
        "rsv2",
        "rsv3",
        "reserved-opcode",
        "lone-continuation",
        "fragmented-ping",
        "long-ping",
        "data-inside-fragments",
    ],
)
async def test_protocol_errors_close_1002(bad: bytes) -> None:
    # More bytes follow, so a fast path that misread the frame would have them.
    out = await both([text("ok"), Echoes(1), bad + text("x" * 40)])
    assert out.wire[0] == (TEXT, b"ok")
    assert close_code(out.wire) == 1002
    assert out.app[-1] == ("disconnect", 1002)


@pytest.mark.parametrize("size", [126, 1000, 70_000])
async def test_oversized_frame_closes_1009(size: int) -> None:
    # A frame one byte over the limit, then more; the whole of it when the
    # limit is small (a server that closes with bytes unread resets the
    # connection, and the client could lose the close frame).
    big = binary(b"x" * (size + 1))
    data = big if size < 70_000 else big[:5000]
    out = await both([text("ok"), Echoes(1), data + text("more")], max_size=size)
    assert close_code(out.wire) == 1009
    assert out.app == [("text", "ok"), ("disconnect", 1009)]


async def test_frame_at_the_limit_is_read() -> None:
    out = await both([binary(b"x" * 1000) + text("more"), Echoes(2), close()], max_size=1000)
    assert out.wire[:2] == [(BINARY, b"x" * 1000), (TEXT, b"more")]
    assert out.fast == 2


async def test_oversized_fragmented_message_closes_1009() -> None:
    half = b"x" * (MAX_SIZE // 2 + 1)
    first = client_frame(BINARY, half, fin=False)
    out = await both([first, Pause(), client_frame(CONT, half)])
    assert close_code(out.wire) == 1009


@pytest.mark.parametrize("payload", [b"\xff", b"ok \xc3", b"\xed\xa0\x80", b"\xe2\x82"])
async def test_invalid_utf8_text_closes_1007(payload: bytes) -> None:
    out = await both([text("ok"), Echoes(1), text(payload)])
    assert close_code(out.wire) == 1007
    assert out.app == [("text", "ok"), ("disconnect", 1007)]


async def test_invalid_utf8_in_binary_is_just_bytes() -> None:
    out = await both([binary(b"\xff\xfe"), Echoes(1), close()])
    assert out.wire[0] == (BINARY, b"\xff\xfe")


async def test_client_close_codes_reach_the_application() -> None:
    out = await both([text("bye"), Echoes(1), close(4321)])
    assert out.wire[-1] == (CLOSE, struct.pack("!H", 4321))
    assert out.app == [("text", "bye"), ("disconnect", 4321)]


async def test_server_close_then_client_frames_are_discarded() -> None:
    out = await both([text("close-me"), Echoes(1), text("late") + binary(b"later"), close(4001)])
    assert out.wire == [(CLOSE, struct.pack("!H", 4001))]
    assert out.app == [("text", "close-me"), ("disconnect", 4001)]


async def test_frames_after_the_client_close_are_ignored() -> None:
    out = await both([text("a"), Echoes(1), close(1000) + text("after close")])
    assert out.app == [("text", "a"), ("disconnect", 1000)]
    assert out.wire == [(TEXT, b"a"), (CLOSE, struct.pack("!H", 1000))]


async def test_a_good_frame_before_a_bad_one_in_the_same_read() -> None:
    """The one place the two protocols differ, on purpose.

    uvicorn's stock protocol drops every frame of a read in which
    websockets' parser fails; the fast path has already delivered the
    frames before the bad one.  Both close with 1002.
    """
    out = await exchange(Chat, [text("kept") + text("unmasked", mask=False)])
    assert out.app == [("text", "kept"), ("disconnect", 1002)]
    assert close_code(out.wire) == 1002


async def test_chatserver_reads_split_and_batched_frames(server: Server) -> None:
    """The real server: a hello byte by byte, then frames several to a write."""
    shop = await seed(server.data)
    hello = json.dumps({"t": "hello", "v": 1, "kind": "visitor", "site": shop.key})
    pings = [text(json.dumps({"t": "ping", "id": i})) for i in range(1, 4)]
    wire = await talk(
        server.port,
        [
            Split(text(hello)),
            Echoes(1),
            pings[0] + client_frame(PING, b"ctl") + pings[1] + binary(msgpack.packb({"t": "ping"})),
            Echoes(5),
            Split(pings[2][:3]),
            pings[2][3:],
            Echoes(6),
            close(),
        ],
        path="/ws",
        headers="Sec-WebSocket-Protocol: chatserver.json\r\n",
    )
    assert json.loads(wire[0][1])["t"] == "welcome"
    assert wire[1] == (PONG, b"ctl")
    replies = [json.loads(p) for op, p in wire[2:] if op == TEXT]
    # The binary frame is a msgpack ping without an id: its pong has none.
    assert [f.get("re") for f in replies if f["t"] == "pong"] == [1, 2, None, 3]
    assert wire[-1] == (CLOSE, struct.pack("!H", 1000))
