"""Erase one visitor (docs/privacy.md, "Answering an erasure request"): nothing left.

A visitor writes a known unique string through every path (a message, a
draft preview, the offline form, a file's name and content, an attribute, a
page title and URL, a custom event, a recording's input and text, name and
e-mail), an agent answers, a webhook endpoint that cannot be reached holds
deliveries in the outbox.  Each string is first found in the backend's files
(the SQLite file and its WAL, or every Redis key and the append-only file)
or in the blobs (recording chunks decoded), so the search can see them; the
visitor is erased; then the same search finds none, while another visitor's
string is still there.  Run on the embedded store and on a real redis-server.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from chatserver.privacy.erase import erase_live
from chatserver.privacy.export import Request, Sources, find
from chatserver.types import SiteSettings
from chatserver.webhooks.endpoints import DEFAULT_EVENTS
from recordings.format import payload, scan

from ..node import Node
from ..redis_server import RedisServer

pytestmark = pytest.mark.anyio

PATHS = (
    "message",
    "draft",
    "offline",
    "filename",
    "filebytes",
    "attribute",
    "pagetitle",
    "pageurl",
    "event",
    "recinput",
    "rectext",
    "name",
    "email",
    "reply",
    "comment",
)


def marks() -> dict[str, str]:
    """A unique lower-case word per path (FTS5 keeps words lower-cased)."""
    return {p: f"zq{p}{secrets.randbelow(10**10):010d}" for p in PATHS}


def needle(word: str) -> bytes:
    # The index may store a word without the prefix it shares with the word
    # before it (FTS5 leaves): its last ten characters are searched.
    return word[-10:].encode()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def blob_text(root: Path) -> bytes:
    """Every byte of the blob directory, recording chunks also decoded."""
    out = bytearray()
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        out += data
        for info in scan(data):
            out += payload(data, info)
    return bytes(out)


async def redis_text(server: RedisServer) -> bytes:
    """Every key and value on the server, and its append-only files."""
    r = aioredis.Redis(port=server.port)
    out = bytearray()
    try:
        for _ in range(200):  # a rewrite under way finishes first
            info = await r.info("persistence")
            if not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]:
                break
            await asyncio.sleep(0.05)
        async for key in r.scan_iter(count=1000):
            out += key
            kind = (await r.type(key)).decode()
            value: Any
            if kind == "string":
                value = await r.get(key)
            elif kind == "hash":
                value = await r.hgetall(key)
            elif kind == "list":
                value = await r.lrange(key, 0, -1)
            elif kind == "set":
                value = await r.smembers(key)
            elif kind == "zset":
                value = await r.zrange(key, 0, -1)
            else:
                value = await r.xrange(key)
            out += repr(value).encode()
    finally:
        await r.aclose()
    for path in sorted(server.dir.rglob("*")):
        if path.is_file():
            out += path.read_bytes()
    return bytes(out)


def where(data: Path, words: dict[str, str], paths: list[str]) -> list[str]:
    """Which files hold the words of ``paths``, with a little context (a failure's message)."""
    out = []
    for path in sorted(data.rglob("*")):
        if path.is_file():
            raw = path.read_bytes()
            for p in paths:
                at = raw.find(needle(words[p]))
                if at >= 0:
                    out.append(f"{path.name}@{at}: {raw[max(0, at - 40) : at + 20]!r}")
    return out


def sqlite_text(data: Path) -> bytes:
    out = bytearray()
    for path in sorted(data.glob("*.db*")):
        out += path.read_bytes()
    return bytes(out)


def rec_events(words: dict[str, str], t0: float) -> list[dict[str, Any]]:
    return [
        {
            "type": 4,
            "data": {"href": "https://shop/", "width": 800, "height": 600},
            "timestamp": t0,
        },
        {
            "type": 2,
            "data": {
                "node": {
                    "type": 0,
                    "id": 1,
                    "childNodes": [{"type": 3, "id": 2, "textContent": words["rectext"]}],
                }
            },
            "timestamp": t0,
        },
        {"type": 3, "data": {"source": 5, "text": words["recinput"], "id": 2}, "timestamp": t0 + 5},
    ]


async def write_everything(node: Node, key: str, words: dict[str, str]) -> tuple[str, str, Any]:
    """Everything a visitor can leave, each path with its word; the visitor's id."""
    page = {"url": f"https://shop.example/{words['pageurl']}", "title": words["pagetitle"]}
    visitor = await node.visitor(key, page=page)
    form = {"t": "offline", "cid": "o1", "name": words["name"], "email": f"{words['email']}@ex.com"}
    sent = await visitor.request({**form, "body": f"hello {words['offline']}"})
    assert sent["t"] == "ack", sent
    await visitor.send({"t": "attrs", "set": {"plan": words["attribute"]}})
    await visitor.send({"t": "page", **page, "referrer": ""})
    await visitor.send({"t": "track", "name": "size_guide", "props": {"note": words["event"]}})
    await visitor.send({"t": "typing", "draft": f"thinking {words['draft']}"})
    ack = await visitor.request({"t": "send", "cid": "m1", "body": f"hi {words['message']}"})
    conv = ack["conv"]
    async with node.http() as http:
        uploaded = await http.post(
            "/api/attachments",
            params={"name": f"{words['filename']}.pdf"},
            content=f"%PDF-1.4\n% {words['filebytes']}\n%%EOF\n".encode(),
            headers={"Authorization": f"Bearer {visitor.welcome['token']}"},
        )
    assert uploaded.status_code == 200, uploaded.text
    attached = {"t": "attach", "cid": "f1", "attachment": uploaded.json()["id"]}
    assert (await visitor.request(attached))["t"] == "ack"
    rec = {"t": "rec", "session": f"rec_{secrets.token_hex(6)}", "seq": 0}
    got = await visitor.request({**rec, "events": rec_events(words, time.time() * 1000)})
    assert got["t"] == "recorded", got
    return str(visitor.welcome["visitor"]), conv, visitor


@pytest.fixture(params=["embedded", "redis"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "embedded":
        yield None
        return
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()


async def test_an_erased_visitor_leaves_nothing_behind(
    backend: RedisServer | None, tmp_path: Path
) -> None:
    extra = {} if backend is None else {"redis_url": backend.url}
    node = await Node(tmp_path / "node", **extra).start()
    try:
        shop = await node.seed(agents=1, settings=SiteSettings(recording=True))
        site = shop.site.id
        await node.parts.webhooks.add(
            site, f"http://127.0.0.1:{_closed_port()}/hook", DEFAULT_EVENTS, True
        )
        words = marks()
        vid, conv, _visitor = await write_everything(node, shop.key, words)
        agent = await node.agent(next(iter(shop.agents)))
        await agent.request({"t": "join", "conv": conv})
        await agent.request(
            {"t": "send", "conv": conv, "cid": "a1", "body": f"ok {words['reply']}"}
        )
        await node.parts.convs.close(await node.hub.site(site), conv, {"kind": "agent"})
        other_words = marks()
        other_vid, _, _ = await write_everything(node, shop.key, other_words)
        await node.parts.archive.flush()
        await node.parts.recordings.ingest.tails.seal_now()
        # The webhook jobs of what was written: the dispatcher turns the change
        # feed into jobs in the background (woken, or every second); a round now
        # makes sure they are there to be erased (a loaded CI once erased first).
        await node.parts.webhooks.dispatch()

        data = tmp_path / "node"

        async def found() -> bytes:
            stored = sqlite_text(data) if backend is None else await redis_text(backend)
            return stored + blob_text(data / "blobs")

        before = await found()
        missing = [
            p for p, w in words.items() if needle(w) not in before and p not in ("draft", "comment")
        ]
        assert not missing, f"the search cannot see {missing}"

        src = Sources.of(node.parts)
        people = await find(src, site, Request(visitor_id=vid))
        result = await erase_live(node.parts, site, people)
        assert result.erased.visitors == 1 and result.recordings == 1
        assert len(result.erased.attachments) == 1 and result.erased.jobs > 0

        after = await found()
        left = [p for p, w in words.items() if needle(w) in after]
        assert not left, f"left behind after the erasure: {left}: {where(data, words, left)}"
        kept = [p for p in other_words if p not in ("draft", "comment", "reply")]
        lost = [p for p in kept if needle(other_words[p]) not in after]
        assert not lost, f"the other visitor lost {lost}"
        assert await node.store.get_visitor(vid) is None
        assert await node.store.get_visitor(other_vid) is not None
        assert await node.store.is_erased(vid)
    finally:
        await node.close()
