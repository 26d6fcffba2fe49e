"""The process-wide budget of attachment bytes in flight (``--upload-memory``),
with real concurrent HTTP uploads against a real server process.

Uploads are held open with bodies that stop after their first chunk until
the test lets them go on, and the test waits on the server's own count of
held bytes (``/healthz``) rather than on time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from ..conftest import Client, Server, seed

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_clients")]

BUDGET = 1024 * 1024  # --upload-memory 1M
KIB = 1024
PNG_HEAD = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR"


def png(n: int) -> bytes:
    """A body of ``n`` bytes that the server takes for a PNG."""
    return PNG_HEAD + bytes(n - len(PNG_HEAD))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("server"), "--upload-memory", "1M").start()
    yield srv
    srv.stop()


async def visitor_token(server: Server) -> str:
    shop = await seed(server.data, agents=0)
    visitor = await Client.visitor(server, shop.key)
    return str(visitor.welcome["token"])


async def uploads(server: Server) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        stats: dict[str, Any] = (await http.get(f"{server.url}/healthz")).json()["uploads"]
        return stats


async def until_held(server: Server, want: int) -> None:
    """Wait until the server holds ``want`` bytes of uploads (10 s at most)."""
    deadline = time.monotonic() + 10
    while (held := (await uploads(server))["held"]) != want:
        assert time.monotonic() < deadline, f"the server holds {held} bytes, not {want}"
        await asyncio.sleep(0.02)


class Aborted(Exception):
    """Raised by a held body to make the client drop the connection."""


class Held:
    """An upload whose body sends ``first`` bytes, then waits for ``go`` (or
    ``abort``) before the rest; with ``declare``, it sends Content-Length,
    else it is chunked."""

    def __init__(self, server: Server, token: str, n: int, first: int, declare: bool) -> None:
        self.data = png(n)
        self.first = first
        self.go = asyncio.Event()
        self.abort = False
        headers = {"Authorization": f"Bearer {token}"}
        if declare:
            headers["Content-Length"] = str(n)
        self.task = asyncio.ensure_future(self._send(server, headers))

    async def _body(self) -> AsyncIterator[bytes]:
        yield self.data[: self.first]
        await self.go.wait()
        if self.abort:
            raise Aborted
        for i in range(self.first, len(self.data), 64 * KIB):
            yield self.data[i : i + 64 * KIB]

    async def _send(self, server: Server, headers: dict[str, str]) -> httpx.Response:
        async with httpx.AsyncClient(timeout=30) as http:
            return await http.post(
                f"{server.url}/api/attachments",
                params={"name": "held.png"},
                content=self._body(),
                headers=headers,
            )

    async def finish(self) -> httpx.Response:
        self.go.set()
        return await self.task

    async def drop(self) -> None:
        self.abort = True
        self.go.set()
        with pytest.raises(Aborted):
            await self.task


async def post(server: Server, token: str, data: bytes) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.post(
            f"{server.url}/api/attachments",
            params={"name": "file.png"},
            content=data,
            headers={"Authorization": f"Bearer {token}"},
        )


async def chunked(server: Server, token: str, data: bytes) -> httpx.Response:
    """An upload without Content-Length: the server sees its size only as it comes."""

    async def body() -> AsyncIterator[bytes]:
        for i in range(0, len(data), 16 * KIB):
            yield data[i : i + 16 * KIB]

    async with httpx.AsyncClient(timeout=30) as http:
        return await http.post(
            f"{server.url}/api/attachments",
            params={"name": "file.png"},
            content=body(),
            headers={"Authorization": f"Bearer {token}"},
        )


async def answer_without_body(server: Server, token: str, n: int) -> bytes:
    """The response head to an upload declaring ``n`` bytes that sends only
    its first bytes (a raw HTTP/1.1 client: httpx sends a whole body first)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(
            f"POST /api/attachments?name=raw.png HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: {n}\r\n\r\n".encode()
            + PNG_HEAD
        )
        await writer.drain()
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    finally:
        writer.close()
        await writer.wait_closed()


def assert_busy(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"].isdigit() and int(r.headers["retry-after"]) > 0
    assert r.headers["content-type"] == "application/json"
    assert "busy" in r.json()["error"]


def assert_stored(r: httpx.Response, n: int) -> None:
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["type"], body["size"]) == ("image/png", n)


async def test_concurrent_uploads_under_the_budget_all_succeed(server: Server) -> None:
    assert (await uploads(server))["budget"] == BUDGET
    token = await visitor_token(server)
    n = 200 * KIB
    held = [Held(server, token, n, first=1000, declare=True) for _ in range(4)]
    await until_held(server, 4 * n)  # all four in flight at once
    extra = await chunked(server, token, png(100 * KIB))  # and one more, undeclared
    assert_stored(extra, 100 * KIB)
    for r in await asyncio.gather(*(h.finish() for h in held)):
        assert_stored(r, n)
    await until_held(server, 0)


async def test_uploads_past_the_budget_get_503_and_the_others_succeed(server: Server) -> None:
    token = await visitor_token(server)
    refused_before = (await uploads(server))["refused"]
    n = 400 * KIB
    a = Held(server, token, n, first=1000, declare=True)
    b = Held(server, token, n, first=1000, declare=True)
    await until_held(server, 2 * n)

    # Declared: refused before any of the body is read, all at once.
    declared = await asyncio.gather(*(post(server, token, png(n)) for _ in range(3)))
    # Undeclared: refused while streaming, once its running total would pass.
    streamed = await chunked(server, token, png(n))
    for r in [*declared, streamed]:
        assert_busy(r)
    # The answer comes while the body is still to be sent.
    head = await answer_without_body(server, token, n)
    assert head.startswith(b"HTTP/1.1 503 ") and b"\r\nretry-after: " in head.lower(), head
    assert (await uploads(server))["held"] == 2 * n  # the refused ones let go of theirs
    assert (await uploads(server))["refused"] == refused_before + 5

    # What fits still goes through meanwhile.
    assert_stored(await post(server, token, png(200 * KIB)), 200 * KIB)
    assert_stored(await a.finish(), n)
    assert_stored(await b.finish(), n)

    # Free again: an upload of nearly the whole budget succeeds.
    await until_held(server, 0)
    assert_stored(await post(server, token, png(BUDGET - KIB)), BUDGET - KIB)
    assert (await uploads(server))["held"] == 0


async def test_an_aborted_upload_frees_its_share(server: Server) -> None:
    token = await visitor_token(server)
    declared = Held(server, token, 600 * KIB, first=1000, declare=True)
    streamed = Held(server, token, 300 * KIB, first=200 * KIB, declare=False)
    await until_held(server, 600 * KIB + 200 * KIB)
    assert_busy(await post(server, token, png(300 * KIB)))

    await declared.drop()  # the client goes away mid-body
    await until_held(server, 200 * KIB)
    await streamed.drop()
    await until_held(server, 0)
    assert_stored(await post(server, token, png(BUDGET - KIB)), BUDGET - KIB)
    assert "Traceback" not in server.log.read_text()


async def test_a_file_larger_than_the_whole_budget_is_413(server: Server) -> None:
    token = await visitor_token(server)
    for r in (
        await post(server, token, png(BUDGET + 1)),
        await chunked(server, token, png(BUDGET + 1)),
    ):
        assert r.status_code == 413, r.text  # waiting would not help
        assert str(BUDGET) in r.json()["error"]
    assert (await uploads(server))["held"] == 0
