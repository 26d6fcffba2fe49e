"""The rewind in the chat (recordings/rewind.py, docs/recordings.md "Rewind in the chat"):
the conversation's agents see the last seconds of its visitor's recording, with the
signals in them, and nobody else sees it."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import pytest

from chatserver.audit import open_audit
from chatserver.audit.log import AuditQuery
from chatserver.types import Role, SiteSettings

from ..node import Node, NodeClient

pytestmark = pytest.mark.anyio

CHECKOUT = "https://shop.example/checkout"
API = "/console/api/rewind"


def custom(ts: float, tag: str, **payload: Any) -> dict[str, Any]:
    return {"type": 5, "data": {"tag": tag, "payload": payload}, "timestamp": ts}


def visit(t0: float) -> list[dict[str, Any]]:
    """A page loaded at t0; a calm click at +2 s; four clicks on Pay at +90 s."""
    pay = {"selector": "button#pay", "text": "Pay now", "actionable": True}
    return [
        {"type": 4, "data": {"href": CHECKOUT, "width": 800, "height": 600}, "timestamp": t0},
        {"type": 2, "data": {"node": {"type": 0, "childNodes": [], "id": 1}}, "timestamp": t0},
        custom(t0, "page", url=CHECKOUT, title="Pay"),
        {"type": 3, "data": {"source": 1, "positions": [{"x": 1, "y": 2}]}, "timestamp": t0 + 900},
        {"type": 3, "data": {"source": 0, "adds": [], "removes": []}, "timestamp": t0 + 1000},
        {"type": 3, "data": {"source": 3, "id": 1, "x": 0, "y": 40}, "timestamp": t0 + 1500},
        custom(t0 + 2000, "click", selector="a#home", text="Home", actionable=True),
        *[custom(t0 + 90_000 + i * 150, "click", **pay) for i in range(4)],
        {"type": 3, "data": {"source": 1, "positions": []}, "timestamp": t0 + 90_700},
    ]


async def chatting(node: Node, settings: SiteSettings) -> tuple[Any, NodeClient, str, float]:
    """A shop whose agent0 (an agent) takes the chat of a recorded visitor.

    agent1 is another agent, agent2 an admin, agent3 an analyst; none of them is in it."""
    roles = {2: Role.ADMIN, 3: Role.ANALYST}
    shop = await node.seed(agents=4, settings=settings, roles=roles)
    agent = await node.agent(next(e for e in shop.agents if e.startswith("agent0-")))
    visitor = await node.visitor(shop.key, page={"url": CHECKOUT, "title": "Pay"})
    t0 = time.time() * 1000 - 100_000
    rec = {"t": "rec", "session": "rec_stuck", "seq": 0, "events": visit(t0)}
    stored = await visitor.request(rec)
    assert stored["t"] == "recorded"
    sent = await visitor.request({"t": "send", "cid": "m1", "body": "The pay button does nothing"})
    assert sent["t"] == "ack"
    await agent.expect("conv", lambda f: f["conv"]["state"] == "active")
    conv = await node.store.current_conversation(visitor.welcome["visitor"])
    assert conv is not None and len(conv.agents) == 1
    return shop, visitor, conv.id, t0


def email(shop: Any, n: int) -> str:
    return next(e for e in shop.agents if e.startswith(f"agent{n}-"))


async def test_the_conversations_agent_sees_the_last_minute_with_its_signals(node: Node) -> None:
    shop, _, conv_id, t0 = await chatting(node, SiteSettings(recording=True))
    auth = {"Authorization": f"Bearer {await node.agent_token(email(shop, 0))}"}
    async with node.http() as http:
        what = (await http.get(f"{API}/{conv_id}", headers=auth)).json()
        got = (await http.get(f"{API}/{conv_id}/events", headers=auth)).json()
    assert what["available"] and what["recording"] == "rec_stuck" and what["seconds"] == 60
    assert what["to"] == t0 + 90_700 and what["from"] == t0 + 30_700
    kinds = [m["kind"] for m in what["marks"]]
    assert kinds.count("click") == 4 and "rage" in kinds and "page" not in kinds
    assert all(m["ts"] >= what["from"] for m in what["marks"])  # not the click at +2 s
    assert what["replay"] is None  # an agent may not open the analysts' replay
    events = got["events"]
    # the page is rebuilt from its snapshot: DOM changes and scrolls before the window stay
    assert [e["type"] for e in events[:2]] == [4, 2]
    before = [e for e in events if e["timestamp"] < what["from"]]
    assert [e["data"].get("source") for e in before if e["type"] == 3] == [0, 3]
    assert not [e for e in before if e["type"] == 5]  # the visitor's pointer and clicks: not
    assert len([e for e in events if e["type"] == 5]) == 4  # the window's clicks
    query = AuditQuery(shop.site.id, action="recording.rewind")
    trail = await open_audit(node.store).entries(query)
    assert [(e.target, e.actor.startswith("agent:")) for e in trail] == [("rec_stuck", True)]


async def test_only_the_conversations_agents_and_admins_see_it(node: Node) -> None:
    shop, _, conv_id, _ = await chatting(node, SiteSettings(recording=True, rewind_seconds=30))
    other = await node.seed(agents=1, settings=SiteSettings(recording=True))
    async with node.http() as http:

        async def ask(who: str | None, path: str = "") -> tuple[int, Any]:
            headers = {"Authorization": f"Bearer {await node.agent_token(who)}"} if who else {}
            r = await http.get(f"{API}/{conv_id}{path}", headers=headers)
            return r.status_code, r.json()

        admin = await ask(email(shop, 2))
        assert admin[0] == 200 and admin[1]["seconds"] == 30
        assert admin[1]["replay"].startswith("/console/sessions/rec_stuck?at=")
        for n in (1, 3):  # another agent, an analyst: not in the chat
            for path in ("", "/events"):
                status, body = await ask(email(shop, n), path)
                assert status == 403 and "join the conversation" in body["error"]
        stranger = await ask(next(iter(other.agents)), "/events")
        assert stranger == (404, {"error": "no such conversation"})
        assert await ask(None) == (401, {"error": "sign in first"})
        r = await http.get(f"{API}/c_nothing_here", headers={"Authorization": "Bearer nonsense"})
        assert r.status_code == 401


async def test_no_rewind_when_off_closed_or_not_recorded(node: Node) -> None:
    shop, visitor, conv_id, _ = await chatting(node, SiteSettings(recording=True))
    agent = email(shop, 0)
    async with node.http() as http:
        auth = {"Authorization": f"Bearer {await node.agent_token(agent)}"}
        site = await node.store.get_site(shop.site.id)
        assert site is not None
        off = dataclasses.replace(site.settings, rewind_seconds=0)
        await node.store.save_site(dataclasses.replace(site, settings=off))
        r = await http.get(f"{API}/{conv_id}", headers=auth)
        off_body = {"available": False, "error": "the rewind is off for this site"}
        assert (r.status_code, r.json()) == (200, off_body)
        r = await http.get(f"{API}/{conv_id}/events", headers=auth)
        assert (r.status_code, r.json()) == (404, {"error": off_body["error"]})
        await node.store.save_site(site)
        assert (await http.get(f"{API}/{conv_id}", headers=auth)).status_code == 200

        # a visitor who was never recorded
        quiet = await node.visitor(shop.key)
        assert (await quiet.request({"t": "send", "cid": "q1", "body": "hi"}))["t"] == "ack"
        for _ in range(100):  # its assignment follows the ack
            conv = await node.store.current_conversation(quiet.welcome["visitor"])
            if conv is not None and conv.agents:
                break
            await asyncio.sleep(0.01)
        conv = await node.store.current_conversation(quiet.welcome["visitor"])
        assert conv is not None and len(conv.agents) == 1  # agent0, the only one online
        r = await http.get(f"{API}/{conv.id}", headers=auth)
        assert r.json() == {"available": False, "error": "no recording of this visitor"}

        # a closed conversation
        closed = await visitor.request({"t": "close", "conv": conv_id})
        assert closed["t"] != "error"
        r = await http.get(f"{API}/{conv_id}/events", headers=auth)
        assert (r.status_code, r.json()["error"]) == (404, "the conversation is closed")
