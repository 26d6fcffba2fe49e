"""The archive's console pages (archive/pages.py) against a real server.

A visitor is recorded and chats through the real WebSocket; the events
listener indexes the messages in the server process, so the tests wait
(bounded) for a search to find them.  Then console sessions (httpx, signed
in like a browser) search, open the conversation, and follow a message's
link into the replay, which shows the transcript and links back.
"""

from __future__ import annotations

import asyncio
import html
import re
import time

import httpx
import pytest

from chatserver.types import Role, SiteSettings

from ..conftest import Client, Server, Shop, seed
from .test_recordings_pages import record, signed_in

pytestmark = pytest.mark.anyio

HOSTILE = "¿Dónde está mi envío? <b>urgente</b><script>alert(1)</script>"
CONV = re.compile(r'<li data-conv="([^"]+)">')


@pytest.fixture
async def shop(server: Server) -> Shop:
    return await seed(
        server.data,
        agents=3,
        settings=SiteSettings(recording=True),
        roles={1: Role.ANALYST, 2: Role.ADMIN},
    )


async def found(http: httpx.AsyncClient, want: int, **params: str) -> str:
    """The list page for ``params`` once it shows ``want`` conversations (5 s at most)."""
    deadline = time.monotonic() + 5.0
    while True:
        page = await http.get("/console/conversations", params=params)
        assert page.status_code == 200, page.text
        if len(CONV.findall(page.text)) >= want or time.monotonic() > deadline:
            return page.text
        await asyncio.sleep(0.05)


async def test_search_highlight_escaping_and_the_jump_to_the_replay(
    server: Server, shop: Shop, close_clients: None
) -> None:
    visitor = await Client.visitor(server, shop.key)
    rec, _ = await record(server, shop, ["https://shop.example/envios"], client=visitor)
    viewed = await visitor.request(
        {"t": "page", "url": "https://shop.example/envios", "title": "Envíos"}
    )
    assert viewed["t"] == "ok", viewed
    ack = await visitor.request({"t": "send", "cid": "m1", "body": HOSTILE})
    assert ack["t"] != "error", ack
    other = await Client.visitor(server, shop.key)
    assert (await other.request({"t": "send", "cid": "m1", "body": "hello"}))["t"] != "error"

    async with signed_in(server, shop, 1) as http:
        page = await found(http, 1, q="envio")
        convs = CONV.findall(page)
        assert len(convs) == 1
        conv = convs[0]
        assert "<mark>envío</mark>" in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert "<script>alert" not in page and "<b>urgente" not in page
        assert len(CONV.findall(await found(http, 2))) == 2  # no words: every conversation
        assert CONV.findall(await found(http, 1, q="hello")) != [conv]

        one = await http.get(f"/console/conversations/{conv}")
        assert one.status_code == 200
        assert html.escape(HOSTILE, quote=False) in one.text and "<script>alert" not in one.text
        assert "https://shop.example/envios" in one.text  # the pages the visitor saw
        link = re.search(r'class="replay-link" href="([^"]+)"', one.text)
        assert link, one.text
        target = html.unescape(link.group(1))
        assert target.startswith(f"/console/sessions/{rec}?at=") and f"conv={conv}" in target

        replay = await http.get(target)
        async with signed_in(server, shop, 0) as agent_http:  # agents do not open replays
            as_agent = await agent_http.get(f"/console/conversations/{conv}")
            assert as_agent.status_code == 200 and 'class="replay-link"' not in as_agent.text
        assert replay.status_code == 200
        assert f'href="/console/conversations/{conv}"' in replay.text
        assert re.search(r'data-seek="\d+"', replay.text)
        assert html.escape(HOSTILE, quote=False) in replay.text
        assert "<script>alert" not in replay.text


async def test_roles_other_sites_and_bad_input(
    server: Server, shop: Shop, close_clients: None
) -> None:
    other = await seed(server.data, agents=1)
    theirs = await Client.visitor(server, other.key)
    assert (await theirs.request({"t": "send", "cid": "m1", "body": "secreto envío"}))[
        "t"
    ] != "error"
    mine = await Client.visitor(server, shop.key)
    assert (await mine.request({"t": "send", "cid": "m1", "body": "mi envío"}))["t"] != "error"
    async with signed_in(server, other, 0) as http:
        their_conv = CONV.findall(await found(http, 1, q="secreto"))[0]
    for i in (0, 1, 2):  # agents, analysts and admins all read their site's archive
        async with signed_in(server, shop, i) as http:
            page = await found(http, 1, q="envio")
            assert "secreto" not in page and len(CONV.findall(page)) == 1
            r = await http.get(f"/console/conversations/{their_conv}")
            assert r.status_code == 404 and "secreto" not in r.text
    async with signed_in(server, shop, 2) as http:
        bad = await http.get("/console/conversations?since=yesterday&offline=maybe&rating=meh")
        assert bad.status_code == 400
        assert "From must be a date" in bad.text and "Offline must be yes or no" in bad.text
        assert "Rating must be one of" in bad.text
        broken = await http.get("/console/conversations?cursor=nonsense")
        assert broken.status_code == 400 and "page link is broken" in broken.text
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        r = await anonymous.get("/console/conversations")
        assert r.status_code == 303 and "/console/login" in r.headers["location"]
