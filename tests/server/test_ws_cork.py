"""Frames written with ``chatserver.write`` leave once per loop iteration
(``uvicorn_ws``: "One write per connection per loop iteration"), in order with
everything else the connection sends.

A real uvicorn server with chatserver's protocol on a real socket; the
application writes frames through the extensions as ``Session.push`` does,
and the client reads the wire.  The protocol counts its transport's writes.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import pytest

from chatserver.web.uvicorn_ws import (
    CLOSE_EXTENSION,
    CORK_BYTES,
    WRITE_EXTENSION,
    ChatWebSocketProtocol,
)

from .test_ws_receive import CLOSE, TEXT, Echoes, Pause, close, serving, talk, text

pytestmark = [pytest.mark.anyio]


class Counted(ChatWebSocketProtocol):
    """chatserver's protocol, counting ``transport.write`` calls after the handshake."""

    made: list[Counted] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.writes: list[int] = []  # bytes of each transport write since "counting"
        self.counting = False
        Counted.made.append(self)

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        write = transport.write

        def counted(data: bytes) -> None:
            if self.counting:
                self.writes.append(len(data))
            write(data)

        transport.write = counted


async def writer_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """On ``burst N SIZE``: writes N frames of SIZE bytes with the extension in one
    step, then logs how many transport writes happened meanwhile and, once the
    iteration is over, every write's size; ``then-send`` adds an ordinary ASGI
    send after the frames, ``then-close`` a ``close_now``, ``then-return`` returns
    (uvicorn then closes the transport)."""
    log: list[Any] = scope["state"]["log"]
    write = scope["extensions"][WRITE_EXTENSION]
    close_now = scope["extensions"][CLOSE_EXTENSION]
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    proto = Counted.made[-1]
    while True:
        event = await receive()
        if event["type"] == "websocket.disconnect":
            log.append(("disconnect", event["code"]))
            return
        command, n, size, *rest = event["text"].split()
        assert command == "burst"
        proto.counting = True
        for k in range(int(n)):
            assert write(f"{k:04d}".ljust(int(size), "x"))
        log.append(("writes during the burst", len(proto.writes)))
        if rest == ["then-send"]:
            await send({"type": "websocket.send", "text": "after"})
        elif rest == ["then-close"]:
            assert close_now(4003, "slow")
            continue
        elif rest == ["then-return"]:
            log.append(("disconnect", None))
            return
        await asyncio.sleep(0.05)  # the iteration ended long ago
        log.append(("writes", list(proto.writes)))


async def run(command: str, frames: int) -> tuple[list[tuple[int, bytes]], list[Any]]:
    log: list[Any] = []
    Counted.made.clear()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope["state"]["log"] = log
        await writer_app(scope, receive, send)

    async with serving(Counted, log, 100_000, app) as port:
        wire = await talk(port, [text(command), Echoes(frames), Pause(0.2), close()])
        async with asyncio.timeout(5):
            while not log or log[-1][0] != "disconnect":
                await asyncio.sleep(0.01)
    return wire, log


def bodies(wire: list[tuple[int, bytes]]) -> list[str]:
    return [payload.decode()[:5] for opcode, payload in wire if opcode == TEXT]


async def test_frames_of_one_iteration_leave_in_one_write() -> None:
    wire, log = await run("burst 5 40", 5)
    assert bodies(wire) == ["0000x", "0001x", "0002x", "0003x", "0004x"]
    assert ("writes during the burst", 0) in log  # held until the iteration ended
    writes = next(entry[1] for entry in log if entry[0] == "writes")
    assert writes == [5 * (2 + 40)]  # one write: five frames of a 2-byte header and 40


async def test_an_asgi_send_goes_after_the_frames_written_before_it() -> None:
    wire, _ = await run("burst 3 40 then-send", 4)
    assert bodies(wire) == ["0000x", "0001x", "0002x", "after"]


async def test_close_now_sends_the_written_frames_before_the_close_frame() -> None:
    wire, log = await run("burst 2 40 then-close", 3)
    assert bodies(wire) == ["0000x", "0001x"]
    assert log[-1] == ("disconnect", 4003)
    assert wire[-1][0] == CLOSE and struct.unpack("!H", wire[-1][1][:2])[0] == 4003


async def test_a_large_burst_is_written_before_the_iteration_ends() -> None:
    size = 1000  # a 4-byte header each
    n = 3 * CORK_BYTES // size
    wire, log = await run(f"burst {n} {size}", n)
    assert bodies(wire) == [f"{k:04d}"[:5].ljust(5, "x") for k in range(n)]
    during = next(entry[1] for entry in log if entry[0] == "writes during the burst")
    assert during >= 2  # the transport saw them (and its high-water mark could act)
    writes = next(entry[1] for entry in log if entry[0] == "writes")
    assert sum(writes) == n * (size + 4) and max(writes) < CORK_BYTES + size + 4


async def test_frames_written_before_the_application_returns_are_sent() -> None:
    wire, _ = await run("burst 3 40 then-return", 3)
    assert bodies(wire) == ["0000x", "0001x", "0002x"]
