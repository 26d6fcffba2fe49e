"""Anonymous visitors cannot make the server store without bound (issue #15, defect 5).

Real server processes on the embedded SQLite store and on a real
redis-server, real WebSocket clients and real HTTP uploads.  The tests count
what the server stored (visitor rows in the SQLite file or the Redis keys,
attachment records and the blob files on disk), never a mock.

Distinct client addresses come from ``X-Forwarded-For``: uvicorn takes it
from a trusted proxy, and 127.0.0.1 (the tests' client) is trusted by default.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as redis_py
import websockets

from ..conftest import Client, Server, seed
from ..redis_server import RedisServer

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_clients")]

KIB = 1024
PNG_HEAD = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR"


def png(n: int) -> bytes:
    """A body of ``n`` bytes that the server takes for a PNG."""
    return PNG_HEAD + bytes(n - len(PNG_HEAD))


class Backend:
    """A server process on one Store backend, and what that Store holds."""

    def __init__(self, tmp_path: Path, redis: RedisServer | None, *options: str) -> None:
        self.data = tmp_path / "server"
        self.redis_url = redis.url if redis is not None else None
        extra = ("--redis", redis.url) if redis is not None else ()
        self.server = Server(self.data, *extra, *options)

    async def start(self) -> str:
        """Start the server with a seeded site; its key."""
        shop = await seed(self.data, agents=0, redis_url=self.redis_url)
        self.server.start()
        return shop.key

    def visitor_ids(self) -> set[str]:
        """The ids of the visitor rows in the Store."""
        if self.redis_url is None:
            with sqlite3.connect(self.data / "chatserver.db") as db:
                return {row[0] for row in db.execute("SELECT id FROM visitors")}
        client = redis_py.Redis.from_url(self.redis_url)
        try:
            keys = client.scan_iter(match="chat:visitor:*", count=1000)
            return {k.decode().rsplit(":", 1)[1] for k in keys}
        finally:
            client.close()

    def attachment_ids(self) -> set[str]:
        """The ids of the attachment records in the Store."""
        if self.redis_url is None:
            with sqlite3.connect(self.data / "chatserver.db") as db:
                return {row[0] for row in db.execute("SELECT id FROM attachments")}
        client = redis_py.Redis.from_url(self.redis_url)
        try:
            keys = client.scan_iter(match="chat:attachment:*", count=1000)
            return {k.decode().rsplit(":", 1)[1] for k in keys}
        finally:
            client.close()

    def blob_bytes(self) -> int:
        """Bytes of attachment files on disk."""
        root = self.data / "blobs" / "attachments"
        return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())

    def blob_exists(self, attachment_id: str) -> bool:
        root = self.data / "blobs" / "attachments"
        return any(p.name == attachment_id for p in root.rglob("*"))


@pytest.fixture(params=["sqlite", "redis"])
def backend_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make(
    request: pytest.FixtureRequest, tmp_path: Path, name: str, *options: str
) -> Iterator[Backend]:
    redis = request.getfixturevalue("redis") if name == "redis" else None
    backend = Backend(tmp_path, redis, *options)
    try:
        yield backend
    finally:
        backend.server.stop()


async def hello(
    server: Server, key: str, token: str | None = None, address: str | None = None
) -> tuple[dict[str, Any] | None, int | None]:
    """One visitor connection: its welcome (or ``None``) and close code, then closed."""
    headers = {"X-Forwarded-For": address} if address else None
    async with websockets.connect(
        server.ws_url,
        subprotocols=[websockets.Subprotocol("chatserver.json")],
        compression=None,
        additional_headers=headers,
    ) as ws:
        frame: dict[str, Any] = {"t": "hello", "v": 1, "kind": "visitor", "site": key}
        if token:
            frame["token"] = token
        await ws.send(json.dumps(frame))
        try:
            reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
        except websockets.ConnectionClosed as exc:
            return None, exc.rcvd.code if exc.rcvd else None
        return reply, None


async def upload(
    server: Server, token: str, body: bytes, address: str | None = None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    if address:
        headers["X-Forwarded-For"] = address
    async with httpx.AsyncClient() as http:
        return await http.post(
            f"{server.url}/api/attachments?name=f.png", content=body, headers=headers, timeout=10
        )


# -- a: visitor rows are made lazily ---------------------------------------------------


@pytest.fixture
def lazy(request: pytest.FixtureRequest, tmp_path: Path, backend_name: str) -> Iterator[Backend]:
    yield from make(request, tmp_path, backend_name, "--hellos-per-address", "0")


async def test_bare_hellos_store_no_visitor_rows(lazy: Backend) -> None:
    key = await lazy.start()
    welcomes: list[dict[str, Any]] = []
    for _ in range(10):  # 500 hellos, 50 at a time
        replies = await asyncio.gather(*(hello(lazy.server, key) for _ in range(50)))
        welcomes += [w for w, _ in replies if w is not None]
    assert len(welcomes) == 500 and all(w["t"] == "welcome" for w in welcomes)
    assert len({w["visitor"] for w in welcomes}) == 500  # each got its own id and token
    assert all(w["token"] and w["conv"] is None for w in welcomes)
    assert lazy.visitor_ids() == set()

    # A resume before any row exists keeps the visitor's id (still no row).
    first = welcomes[0]
    again, _ = await hello(lazy.server, key, token=first["token"])
    assert again is not None and again["visitor"] == first["visitor"]
    assert again["token"] == first["token"]
    assert lazy.visitor_ids() == set()

    # A page view is held, not stored, also once its connection closed (a
    # multi-page shop opens one per page); the first message stores the row.
    page = await Client.visitor(lazy.server, key, token=first["token"])
    assert page.welcome["visitor"] == first["visitor"]
    assert (await page.request({"t": "page", "url": "https://shop/a", "title": "A"}))["t"] == "ok"
    await page.close()
    visitor = await Client.visitor(lazy.server, key, token=first["token"])
    assert (await visitor.request({"t": "page", "url": "https://shop/b"}))["t"] == "ok"
    assert lazy.visitor_ids() == set()
    ack = await visitor.request({"t": "send", "cid": "m1", "body": "hello"})
    assert ack["t"] == "ack"
    assert lazy.visitor_ids() == {first["visitor"]}

    # The held page views were written with the row, and the chat resumes.
    resumed = await Client.visitor(lazy.server, key, token=first["token"])
    assert resumed.welcome["visitor"] == first["visitor"]
    assert resumed.welcome["conv"] == ack["conv"]
    assert await _pages(lazy, first["visitor"]) == ["https://shop/a", "https://shop/b"]


async def _pages(backend: Backend, visitor_id: str) -> list[str]:
    """The stored page views of a visitor, read from the Store itself."""
    if backend.redis_url is None:
        with sqlite3.connect(backend.data / "chatserver.db") as db:
            rows = db.execute(
                "SELECT url FROM page_views WHERE visitor_id = ? ORDER BY id", (visitor_id,)
            )
            return [r[0] for r in rows]
    from chatserver.store_redis import RedisStore

    store = RedisStore(backend.redis_url)
    await store.start()
    try:
        return [v.url for v in reversed(await store.page_views(visitor_id))]
    finally:
        await store.close()


async def test_attrs_identify_and_track_store_the_row(lazy: Backend) -> None:
    key = await lazy.start()
    ids = []
    for frame in (
        {"t": "attrs", "set": {"plan": "gold"}},
        {"t": "identify", "name": "Ann"},
        {"t": "track", "name": "cart"},
    ):
        visitor = await Client.visitor(lazy.server, key)
        ids.append(visitor.welcome["visitor"])
        assert (await visitor.request(frame))["t"] == "ok"
    assert lazy.visitor_ids() == set(ids)


# -- b: rates of hellos and uploads ------------------------------------------------------


@pytest.fixture
def limited(request: pytest.FixtureRequest, tmp_path: Path, backend_name: str) -> Iterator[Backend]:
    yield from make(
        request, tmp_path, backend_name, "--hellos-per-address", "5", "--hellos-per-site", "8"
    )


@pytest.fixture
def uploads(request: pytest.FixtureRequest, tmp_path: Path, backend_name: str) -> Iterator[Backend]:
    yield from make(
        request,
        tmp_path,
        backend_name,
        *("--uploads-per-address", "3", "--site-unposted-bytes", "300K"),
    )


async def test_hellos_are_rate_limited_per_address_and_per_site(limited: Backend) -> None:
    key = await limited.start()
    one = [await hello(limited.server, key, address="10.0.0.1") for _ in range(6)]
    assert [code for _, code in one] == [None] * 5 + [4005]
    assert one[-1][0] is None  # closed before any welcome
    # another address has its own allowance, until the site's (8 a minute) is used up
    other = [await hello(limited.server, key, address="10.0.0.2") for _ in range(4)]
    assert [code for _, code in other] == [None, None, None, 4005]
    assert limited.visitor_ids() == set()


async def test_uploads_limited_per_address_and_by_the_site_quota(uploads: Backend) -> None:
    limited = uploads
    key = await limited.start()
    tokens = []
    for i in range(10):
        welcome, _ = await hello(limited.server, key, address=f"10.1.0.{i}")
        assert welcome is not None
        tokens.append(welcome["token"])
    # one address: three uploads, then 429 with Retry-After
    codes = [(await upload(limited.server, tokens[0], png(KIB), "10.2.0.1")) for _ in range(4)]
    assert [r.status_code for r in codes] == [200, 200, 200, 429]
    assert int(codes[-1].headers["retry-after"]) >= 1
    assert codes[-1].json() == {"error": "too many uploads"}
    # ten anonymous uploaders on other addresses: 100 KiB files until the site's
    # 300K of unposted uploads is used up (3 KiB are held already)
    statuses = []
    for i, token in enumerate(tokens):
        r = await upload(limited.server, token, png(100 * KIB), f"10.3.0.{i}")
        statuses.append(r.status_code)
        if r.status_code == 507:
            assert "quota" in r.json()["error"]
    assert statuses == [200, 200] + [507] * 8
    assert limited.blob_bytes() == 3 * KIB + 200 * KIB
    assert len(limited.attachment_ids()) == 5
    assert limited.visitor_ids() == set()  # uploading alone stores no visitor


# -- c: unposted uploads are swept ----------------------------------------------------------


@pytest.fixture
def sweeping(
    request: pytest.FixtureRequest, tmp_path: Path, backend_name: str
) -> Iterator[Backend]:
    yield from make(request, tmp_path, backend_name, "--upload-ttl", "1")


async def test_unposted_uploads_are_swept_posted_ones_stay(sweeping: Backend) -> None:
    key = await sweeping.start()
    visitor = await Client.visitor(sweeping.server, key)
    token = visitor.welcome["token"]
    posted = (await upload(sweeping.server, token, png(2 * KIB))).json()
    unposted = (await upload(sweeping.server, token, png(3 * KIB))).json()
    ack = await visitor.request({"t": "attach", "cid": "a1", "attachment": posted["id"]})
    assert ack["t"] == "ack"
    deadline = time.monotonic() + 15
    # The record goes first, then its blob (features/attachments/sweep.py): wait for both.
    while unposted["id"] in sweeping.attachment_ids() or sweeping.blob_exists(unposted["id"]):
        assert time.monotonic() < deadline, "the unposted upload was not swept"
        await asyncio.sleep(0.2)
    assert sweeping.attachment_ids() == {posted["id"]}
    assert sweeping.blob_exists(posted["id"]) and sweeping.blob_bytes() == 2 * KIB
    async with httpx.AsyncClient() as http:
        gone = await http.get(f"{sweeping.server.url}/{unposted['url']}")
        kept = await http.get(f"{sweeping.server.url}/{posted['url']}")
        health = (await http.get(f"{sweeping.server.url}/healthz")).json()
    assert gone.status_code == 404 and kept.status_code == 200
    assert health["limits"]["unposted_swept"] == 1
    # the swept file cannot be posted any more
    err = await visitor.request({"t": "attach", "cid": "a2", "attachment": unposted["id"]})
    assert err["t"] == "error" and err["code"] == 205
