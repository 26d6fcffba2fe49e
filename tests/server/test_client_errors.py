"""Client errors do not fill the log (docs/operations.md, "Logs").

What a client can cause at will (invalid UTF-8 in a text frame, a request
that is not HTTP, a refused WebSocket handshake, a request cut off by its
client) is answered as before and logged without traceback, at most a few
lines a minute per kind (``logs.ClientErrors``).  The integration tests run
a real server and real clients and read the server's log.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable

import pytest
import websockets

from chatserver.logs import ClientErrors

from ..conftest import Server, agent_token, seed

pytestmark = [pytest.mark.anyio]

LIMIT = 5  # lines per kind and minute (ClientErrors' default)


def _log_since(server: Server, start: int) -> str:
    return server.log.read_bytes()[start:].decode(errors="replace")


def _lines(text: str, match: Callable[[str], bool]) -> list[str]:
    return [line for line in text.splitlines() if match(line)]


async def _raw(server: Server, data: bytes, close_at_once: bool = False) -> bytes:
    """Send ``data`` on a fresh TCP connection; the answer (or b"" if it closes at once)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(data)
    await writer.drain()
    if close_at_once:
        writer.close()
        await writer.wait_closed()
        return b""
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer


async def _wait_for_log(server: Server, start: int, match: Callable[[str], bool]) -> None:
    """Until the log has a matching line: the server handles the last client asynchronously."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not _lines(_log_since(server, start), match):
        assert loop.time() < deadline, _log_since(server, start)[-2000:]
        await asyncio.sleep(0.05)


def _utf8(line: str) -> bool:
    return "UTF-8" in line


async def test_200_invalid_utf8_frames_close_1007_and_log_a_few_lines(own_server: Server) -> None:
    server = own_server.start()  # a process of its own: the limit is per process
    start = len(server.log.read_bytes())
    shop = await seed(server.data)

    async def one(i: int) -> int | None:
        async with websockets.connect(
            server.ws_url, subprotocols=["chatserver.json"], compression=None
        ) as ws:
            if i % 2:  # after a valid hello too, not only as the first frame
                await ws.send(f'{{"t":"hello","v":1,"kind":"visitor","site":"{shop.key}"}}')
                await ws.recv()
            # Invalid UTF-8 sent as a text frame: whole, or in two fragments.
            payload = b"ok \xff\xfe" if i % 3 else [b"ok \xc3", b"\x28"]
            await ws.send(payload, text=True)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
            return closed.value.rcvd.code if closed.value.rcvd else None

    codes: list[int | None] = []
    for batch in range(10):  # 200 fresh connections, 20 at a time
        codes += await asyncio.gather(*(one(batch * 20 + i) for i in range(20)))
    assert codes == [1007] * 200
    await _wait_for_log(server, start, _utf8)
    await asyncio.sleep(0.3)
    log = _log_since(server, start)
    assert "Traceback" not in log
    assert 1 <= len(_lines(log, _utf8)) <= LIMIT, log[-3000:]
    # The server is fine: a new visitor is served.
    async with websockets.connect(server.ws_url, subprotocols=["chatserver.json"]) as ws:
        await ws.send(f'{{"t":"hello","v":1,"kind":"visitor","site":"{shop.key}"}}')
        assert '"welcome"' in str(await ws.recv())


async def test_requests_cut_off_by_the_client_log_no_traceback(own_server: Server) -> None:
    """A body that never comes (login, upload) and a broken chunked body."""
    server = own_server.start()  # a process of its own: the limit is per process
    start = len(server.log.read_bytes())
    shop = await seed(server.data)
    (email,) = shop.agents
    token = await agent_token(server, email)
    login = (
        b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 1000\r\n\r\n{"email": "'
    )
    upload = (
        b"POST /api/attachments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + token.encode()
        + b"\r\nContent-Length: 100000\r\n\r\n\x89PNG\r\n\x1a\n"
        + b"\0" * 2000
    )
    chunked = (
        b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}"
    )
    for _ in range(10):
        await _raw(server, login, close_at_once=True)
        await _raw(server, upload, close_at_once=True)
        await _raw(server, chunked, close_at_once=True)

    def left(line: str) -> bool:
        return "client_disconnect" in line or "left before" in line

    await _wait_for_log(server, start, left)
    await asyncio.sleep(0.5)
    log = _log_since(server, start)
    assert "Traceback" not in log and "Exception in ASGI application" not in log
    assert 1 <= len(_lines(log, left)) <= LIMIT, log[-3000:]


async def test_requests_that_are_not_http_or_not_a_handshake_are_rate_limited(
    own_server: Server,
) -> None:
    server = own_server.start()  # a process of its own: the limit is per process
    start = len(server.log.read_bytes())
    not_http = b"\x16\x03\x01\x02\x00garbage\r\n\r\n"
    no_key = (
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    for _ in range(30):
        assert (await _raw(server, not_http)).startswith(b"HTTP/1.1 400 ")
        assert (await _raw(server, no_key)).startswith(b"HTTP/1.1 400 ")
    # The server's log level is "warning": the refused handshakes are info
    # lines there, so only the invalid requests show.
    await _wait_for_log(server, start, lambda line: "Invalid HTTP request" in line)
    log = _log_since(server, start)
    assert "Traceback" not in log
    assert 1 <= len(_lines(log, lambda line: "Invalid HTTP request" in line)) <= LIMIT


def test_the_limiter_counts_what_it_leaves_out() -> None:
    now = [0.0]
    limiter = ClientErrors(limit=2, window=60.0, clock=lambda: now[0])
    logger = logging.getLogger("test.client_errors")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger.addHandler(Keep())
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for i in range(5):
        limiter.log(logger, "invalid_utf8", "bad text from %s", f"10.0.0.{i}")
    limiter.log(logger, "client_disconnect", "GET %s", "/x")  # another kind: its own count
    assert [r.getMessage() for r in records] == [
        "client error: bad text from 10.0.0.0",
        "client error: bad text from 10.0.0.1",
        "client error: GET /x",
    ]
    now[0] = 59.0
    limiter.log(logger, "invalid_utf8", "bad text from %s", "10.0.0.9")  # same window
    now[0] = 61.0
    limiter.log(logger, "invalid_utf8", "bad text from %s", "10.0.0.10")
    assert records[-1].getMessage() == (
        "client error: bad text from 10.0.0.10 [invalid_utf8: 4 more not logged]"
    )
    assert all(r.exc_info is None for r in records)


def test_the_limiter_as_a_filter_on_uvicorns_logger() -> None:
    """uvicorn's client-error lines lose their traceback and are limited; others pass."""
    limiter = ClientErrors(limit=2, clock=lambda: 0.0)
    logger = logging.getLogger("uvicorn.error")

    def record(msg: str, level: int = logging.WARNING) -> logging.LogRecord:
        try:
            raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
        except UnicodeDecodeError:
            return logger.makeRecord(logger.name, level, __file__, 1, msg, (), sys.exc_info())

    utf8 = [record("Invalid UTF-8 sequence received from client.") for _ in range(3)]
    assert [limiter.filter(r) for r in utf8] == [True, True, False]
    assert utf8[0].exc_info is None and utf8[0].exc_text is None
    http = [record("Invalid HTTP request received.") for _ in range(3)]
    assert [limiter.filter(r) for r in http] == [True, True, False]  # a count of its own
    other = record("Exception in ASGI application\n", logging.ERROR)
    assert limiter.filter(other) and other.exc_info is not None  # a server error: untouched
