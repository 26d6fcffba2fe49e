"""The analysts' console pages (recordings/pages.py) against a real server.

Recordings are made through the real ingest: a visitor's WebSocket sends
``rec`` frames of rrweb-shaped events.  Then console sessions (httpx, signed
in like a browser) read the session list and the replay page.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from chatserver.types import Role, SiteSettings

from ..conftest import Client, Server, Shop, console_login, csrf_of, seed
from ..in_process.test_recordings import custom, meta, move, snapshot

pytestmark = pytest.mark.anyio

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


async def record(
    server: Server,
    shop: Shop,
    urls: list[str],
    *,
    seconds: float = 10.0,
    click_text: str = "Add to bag",
    client: Client | None = None,
) -> tuple[str, str]:
    """One recorded session of a new visitor (or ``client``'s): a page load per
    URL spread over ``seconds``, a click on each; ``(recording id, visitor id)``."""
    visitor = client or await Client.visitor(server, shop.key)
    rec = "rec_" + secrets.token_hex(6)
    t0 = time.time() * 1000.0
    step = seconds * 1000.0 / len(urls)
    for seq, url in enumerate(urls):
        ts = t0 + seq * step
        events: list[dict[str, Any]] = [
            meta(ts, url),
            snapshot(ts + 1, f"Page {seq}"),
            custom(ts + 2, "page", url=url, title=f"Page {seq}"),
            custom(ts + 10, "click", selector="button.add", text=click_text),
            move(ts + step - 1),
        ]
        reply = await visitor.request(
            {"t": "rec", "session": rec, "seq": seq, "events": events, "now": ts}
        )
        assert reply["t"] != "error", reply
    return rec, visitor.welcome["visitor"]


@pytest.fixture
async def shop(server: Server) -> Shop:
    return await seed(
        server.data,
        agents=3,
        settings=SiteSettings(recording=True),
        roles={1: Role.ANALYST, 2: Role.ADMIN},
    )


def email(shop: Shop, i: int) -> str:
    return list(shop.agents)[i]


@contextlib.asynccontextmanager
async def signed_in(server: Server, shop: Shop, i: int) -> AsyncIterator[httpx.AsyncClient]:
    """A console session of agent ``i`` of ``shop``."""
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await console_login(http, email(shop, i))
        assert r.status_code == 303, r.text
        yield http


ROW = re.compile(r'<tr data-rec="([^"]+)">')


def rows(html: str) -> list[str]:
    return ROW.findall(html)


async def test_roles(server: Server, shop: Shop, close_clients: None) -> None:
    rec, _ = await record(server, shop, ["https://shop.example/a"])
    for i, status in ((0, 403), (1, 200), (2, 200)):
        async with signed_in(server, shop, i) as http:
            assert (await http.get("/console/sessions")).status_code == status
            assert (await http.get(f"/console/sessions/{rec}")).status_code == status
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        r = await anonymous.get("/console/sessions")
        assert r.status_code == 303 and "/console/login" in r.headers["location"]
    # An analyst lands on the list after signing in, and has it in the navigation.
    async with signed_in(server, shop, 1) as http:
        page = await http.get("/console/sessions")
        assert 'href="/console/sessions" aria-current="page">Sessions<' in page.text
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await console_login(http, email(shop, 1))
        assert r.headers["location"] == "/console/sessions"


async def test_list_filters_and_pages(server: Server, shop: Shop, close_clients: None) -> None:
    short, _ = await record(server, shop, ["https://shop.example/a"], seconds=5)
    two, _ = await record(
        server, shop, ["https://shop.example/a", "https://shop.example/checkout"], seconds=90
    )
    again = await Client.visitor(server, shop.key)
    mine = [(await record(server, shop, ["https://shop.example/b"], client=again))[0]]
    mine.append((await record(server, shop, ["https://shop.example/b"], client=again))[0])
    visitor_id = again.welcome["visitor"]
    async with signed_in(server, shop, 1) as http:
        everything = rows((await http.get("/console/sessions")).text)
        assert set(everything) == {short, two, *mine}
        page = (await http.get("/console/sessions", params={"url": "/checkout"})).text
        assert rows(page) == [two]
        assert re.search(r"<td>1:30</td>\s*<td>2</td>\s*<td>2</td>", page), page
        assert rows((await http.get("/console/sessions", params={"min_duration": 60})).text) == [
            two
        ]
        by_visitor = (await http.get(f"/console/sessions?visitor={visitor_id}")).text
        assert sorted(rows(by_visitor)) == sorted(mine)
        assert "Delete all recordings" not in by_visitor  # analysts do not delete
        assert rows((await http.get("/console/sessions", params={"had_chat": "yes"})).text) == []
        assert len(rows((await http.get("/console/sessions?had_chat=no")).text)) == 4
        today = time.strftime("%Y-%m-%d", time.gmtime())
        assert len(rows((await http.get(f"/console/sessions?since={today}")).text)) == 4
        assert rows((await http.get("/console/sessions?until=2001-01-01")).text) == []
        bad = await http.get("/console/sessions?since=yesterday&min_duration=x")
        assert bad.status_code == 400 and "must be a date" in bad.text

    # Pages of 50 with the cursor: 52 sessions, newest first, none twice.
    more = [(await record(server, shop, [f"https://shop.example/p{i}"]))[0] for i in range(48)]
    async with signed_in(server, shop, 2) as http:
        first = (await http.get("/console/sessions")).text
        found = rows(first)
        assert len(found) == 50
        nxt = re.search(r'href="/console/sessions\?([^"]+)" rel="next"', first)
        assert nxt, "no link to the next page"
        second = (await http.get("/console/sessions?" + nxt.group(1).replace("&amp;", "&"))).text
        assert 'rel="next"' not in second and "First page" in second
        found += rows(second)
        assert len(found) == len(set(found)) == 52
        assert set(found) == {short, two, *mine, *more}
        assert found[0] == more[-1]
        # The cursor keeps the filters.
        filtered = (await http.get("/console/sessions?url=/p1")).text
        assert set(rows(filtered)) == {more[1], *more[10:20]}
        broken = await http.get("/console/sessions?cursor=nonsense")
        assert broken.status_code == 400


async def test_had_a_chat(server: Server, shop: Shop, close_clients: None) -> None:
    chatty = await Client.visitor(server, shop.key)
    ack = await chatty.request({"t": "send", "cid": "m1", "body": "can you help me?"})
    assert ack["t"] != "error", ack
    talked, _ = await record(server, shop, ["https://shop.example/help"], client=chatty)
    quiet, _ = await record(server, shop, ["https://shop.example/help"])
    async with signed_in(server, shop, 1) as http:
        page = (await http.get("/console/sessions?had_chat=yes")).text
        assert rows(page) == [talked]
        assert re.search(r"<td>yes</td>\s*</tr>", page)
        assert rows((await http.get("/console/sessions?had_chat=no")).text) == [quiet]


async def test_another_sites_recording_is_404(
    server: Server, shop: Shop, close_clients: None
) -> None:
    other = await seed(server.data, agents=1, settings=SiteSettings(recording=True))
    theirs, _ = await record(server, other, ["https://other.example/secret"])
    async with signed_in(server, shop, 1) as http:
        r = await http.get(f"/console/sessions/{theirs}")
        assert r.status_code == 404 and "other.example" not in r.text
        assert (await http.get("/console/sessions/rec_nothere")).status_code == 404
        assert theirs not in (await http.get("/console/sessions")).text


async def test_replay_page(server: Server, shop: Shop, close_clients: None) -> None:
    rec, _ = await record(server, shop, ["https://shop.example/a"])
    async with signed_in(server, shop, 1) as http:
        r = await http.get(f"/console/sessions/{rec}")
        assert r.status_code == 200
        csp = r.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "unsafe-inline' http: https:" in csp
        assert re.search(r'<script src="/widget/replay\.[0-9A-Za-z]+\.js"></script>', r.text)
        assert '<script type="module" src="/console/static/replay.js"></script>' in r.text
        assert "<script>" not in r.text  # no inline script
        js = await http.get("/console/static/replay.js")
        assert js.status_code == 200 and "allow-scripts" not in js.text


async def test_hostile_text_is_escaped(server: Server, shop: Shop, close_clients: None) -> None:
    url = f"https://shop.example/{HOSTILE}"
    rec, _ = await record(server, shop, [url], click_text=HOSTILE)
    async with signed_in(server, shop, 1) as http:
        page = await http.get("/console/sessions", params={"url": HOSTILE})
        assert rows(page.text) == [rec]
        assert HOSTILE not in page.text and "&lt;script&gt;" in page.text
        replay = await http.get(f"/console/sessions/{rec}")
        assert HOSTILE not in replay.text
        visitor = await http.get("/console/sessions", params={"visitor": HOSTILE})
        assert HOSTILE not in visitor.text and rows(visitor.text) == []


async def test_delete_a_visitors_recordings(
    server: Server, shop: Shop, close_clients: None
) -> None:
    doomed = await Client.visitor(server, shop.key)
    gone = [(await record(server, shop, ["https://shop.example/x"], client=doomed))[0]]
    kept, _ = await record(server, shop, ["https://shop.example/y"])
    vid = doomed.welcome["visitor"]
    origin = {"Origin": server.url}
    async with signed_in(server, shop, 1) as analyst:
        page = await analyst.get(f"/console/sessions?visitor={vid}")
        r = await analyst.post(
            "/console/sessions/delete",
            data={"visitor": vid, "csrf": csrf_of(page.text)},
            headers=origin,
        )
        assert r.status_code == 403  # analysts may not
    async with signed_in(server, shop, 2) as admin:
        page = await admin.get(f"/console/sessions?visitor={vid}")
        assert "Delete all recordings of this visitor" in page.text
        assert "Delete all" not in (await admin.get("/console/sessions")).text
        token = csrf_of(page.text)
        no_csrf = await admin.post(
            "/console/sessions/delete", data={"visitor": vid}, headers=origin
        )
        wrong = await admin.post(
            "/console/sessions/delete", data={"visitor": vid, "csrf": "x" + token}, headers=origin
        )
        cross = await admin.post(
            "/console/sessions/delete",
            data={"visitor": vid, "csrf": token},
            headers={"Origin": "https://evil.example"},
        )
        assert no_csrf.status_code == wrong.status_code == cross.status_code == 403
        assert rows((await admin.get(f"/console/sessions?visitor={vid}")).text) == gone
        done = await admin.post(
            "/console/sessions/delete", data={"visitor": vid, "csrf": token}, headers=origin
        )
        assert done.status_code == 303
        after = await admin.get(done.headers["location"])
        assert rows(after.text) == [] and "Deleted 1 recording" in after.text
        assert (await admin.get(f"/console/sessions/{gone[0]}")).status_code == 404
        assert kept in rows((await admin.get("/console/sessions")).text)
        # Another site's visitor is not the admin's to delete.
        other = await seed(server.data, agents=1, settings=SiteSettings(recording=True))
        _, theirs = await record(server, other, ["https://other.example/"])
        r = await admin.post(
            "/console/sessions/delete",
            data={"visitor": theirs, "csrf": token},
            headers=origin,
        )
        assert r.status_code == 404


async def test_replay_shows_each_conversation_of_the_visitor_and_no_one_elses(
    server: Server, shop: Shop, close_clients: None
) -> None:
    """#21: beside the player, every conversation the visitor had during the session
    (here two: the first was closed), never another visitor's or another site's,
    even when ``?conv=`` names one."""
    visitor = await Client.visitor(server, shop.key)
    rec, _ = await record(server, shop, ["https://shop.example/a"], client=visitor)
    first = await visitor.request({"t": "send", "cid": "m1", "body": "first question"})
    assert first["t"] != "error", first
    agent = await Client.agent(server, email(shop, 0))
    assert (await agent.request({"t": "close", "conv": first["conv"]}))["t"] == "ok"
    second = await visitor.request({"t": "send", "cid": "m2", "body": "second question"})
    assert second["t"] != "error" and second["conv"] != first["conv"], second
    stranger = await Client.visitor(server, shop.key)
    assert (await stranger.request({"t": "send", "cid": "m1", "body": "not yours"}))["t"] == "ack"
    elsewhere = await seed(server.data, agents=1)
    foreign = await Client.visitor(server, elsewhere.key)
    theirs = await foreign.request({"t": "send", "cid": "m1", "body": "other site"})
    assert theirs["t"] == "ack", theirs
    async with signed_in(server, shop, 1) as http:
        for query in ("", f"?conv={theirs['conv']}"):
            page = await http.get(f"/console/sessions/{rec}{query}")
            assert page.status_code == 200
            assert page.text.count('class="replay-transcript"') == 2
            assert page.text.index("first question") < page.text.index("second question")
            assert "not yours" not in page.text and "other site" not in page.text
            assert 'id="replay-keys"' in page.text and "data-events" in page.text
