"""Signals from a recording, live (docs/recordings.md "Signals"): a visitor rage-clicks a
broken button, a trigger with a ``signal`` condition offers help at once, and the analyst
finds the session by its signal."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest

from chatserver.proactive import COUNTERS, TRIGGER_KIND
from chatserver.proactive.rules import parse_rule
from chatserver.types import Role, SiteSettings

from ..conftest import console_login
from ..node import Node

pytestmark = pytest.mark.anyio

CHECKOUT = "https://shop.example/checkout"
RULE = {
    "name": "Stuck at checkout",
    "frequency": "visit",
    "conditions": [
        {"kind": "url", "op": "contains", "value": "/checkout"},
        {"kind": "signal", "op": "is", "value": "rage"},
    ],
    "actions": [{"type": "message", "body": "Trouble paying? We can help."}, {"type": "open"}],
}


def batch(t0: float, clicks: int, failed: bool = False) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = [
        {"type": 4, "data": {"href": CHECKOUT, "width": 800, "height": 600}, "timestamp": t0},
        {"type": 2, "data": {"node": {"type": 0, "childNodes": [], "id": 1}}, "timestamp": t0},
        {
            "type": 5,
            "data": {"tag": "page", "payload": {"url": CHECKOUT, "title": "Pay"}},
            "timestamp": t0,
        },
    ]
    for i in range(clicks):
        payload = {"selector": "button#pay", "text": "Pay now", "actionable": True}
        events.append(
            {
                "type": 5,
                "data": {"tag": "click", "payload": payload},
                "timestamp": t0 + 100 + i * 200,
            }
        )
    if failed:
        payload = {"method": "post", "url": "/api/pay?card=1", "status": 502}
        events.append(
            {"type": 5, "data": {"tag": "request", "payload": payload}, "timestamp": t0 + 50}
        )
    return events


async def test_rage_clicks_offer_help_and_find_the_session(node: Node) -> None:
    shop = await node.seed(agents=2, settings=SiteSettings(recording=True), roles={1: Role.ANALYST})
    stored = parse_rule(RULE, None, "t_stuck").to_json()
    await node.store.put_doc(shop.site.id, TRIGGER_KIND, "t_stuck", stored)
    agent = await node.agent(next(e for e in shop.agents if e.startswith("agent0-")))
    calm = await node.visitor(shop.key, page={"url": CHECKOUT, "title": "Pay"})
    ok = await calm.request(
        {
            "t": "rec",
            "session": "rec_calm_visitor",
            "seq": 0,
            "events": batch(time.time() * 1000, 2),
        }
    )
    assert ok["t"] == "recorded"
    visitor = await node.visitor(shop.key, page={"url": CHECKOUT, "title": "Pay"})
    await visitor.send({"t": "page", "url": CHECKOUT, "title": "Pay", "referrer": ""})
    started = time.monotonic()
    got = await visitor.request(
        {
            "t": "rec",
            "session": "rec_angry_visitor",
            "seq": 0,
            "events": batch(time.time() * 1000, 4, failed=True),
        }
    )
    assert got["t"] == "recorded"
    opened = await visitor.expect("open", lambda f: f.get("trigger") == "t_stuck", timeout=2)
    assert opened and time.monotonic() - started < 1.0  # help within a second
    rage = await agent.expect("signal", lambda f: f["kind"] == "rage")
    assert rage["visitor"] == visitor.welcome["visitor"] and rage["url"] == CHECKOUT
    assert rage["session"] == "rec_angry_visitor" and rage["detail"]["selector"] == "button#pay"
    failed_req = await agent.expect("signal", lambda f: f["kind"] == "request")
    assert failed_req["detail"] == {"method": "POST", "endpoint": "/api/pay", "status": 502}
    conv = await node.store.current_conversation(visitor.welcome["visitor"])
    assert conv is not None
    (greeting,) = await node.store.entries(conv.id, after=0)
    assert greeting.body == "Trouble paying? We can help."
    assert calm.welcome["visitor"] != visitor.welcome["visitor"]
    assert await node.store.current_conversation(calm.welcome["visitor"]) is None  # calm: none
    # the reports' trigger funnel counts the firing, and the chat that followed it
    assert await node.store.counters(shop.site.id, COUNTERS) == {"t_stuck.fired": 1}
    answer = await visitor.request({"t": "send", "cid": "m1", "body": "Yes, Pay does nothing"})
    assert answer["t"] == "ack"
    counted = {"t_stuck.fired": 1, "t_stuck.chats": 1}
    for _ in range(200):  # counted as the message's event is handled, after the ack
        if await node.store.counters(shop.site.id, COUNTERS) == counted:
            break
        await asyncio.sleep(0.01)
    assert await node.store.counters(shop.site.id, COUNTERS) == counted

    # the analyst filters the sessions on rage clicks, and on failed requests at checkout
    analyst = next(e for e in shop.agents if e.startswith("agent1-"))
    token = await node.agent_token(analyst)
    async with node.http() as http:
        api = "/console/api/recordings/"
        auth = {"Authorization": f"Bearer {token}"}
        rage = (await http.get(api, params={"signal": "rage"}, headers=auth)).json()
        assert [r["id"] for r in rage["recordings"]] == ["rec_angry_visitor"]
        failed = await http.get(api, params={"signal": "request", "url": "/checkout"}, headers=auth)
        assert [r["id"] for r in failed.json()["recordings"]] == ["rec_angry_visitor"]
        nowhere = await http.get(api, params={"signal": "rage", "url": "/cart"}, headers=auth)
        assert nowhere.json()["recordings"] == []
        bad = await http.get(api, params={"signal": "tantrum"}, headers=auth)
        assert bad.status_code == 400
        marks = (await http.get(f"{api}rec_angry_visitor", headers=auth)).json()
    kinds = [m["kind"] for m in marks["marks"]]
    assert "rage" in kinds and "request" in kinds and "dead" not in kinds
    request = next(m for m in marks["marks"] if m["kind"] == "request")
    assert request["endpoint"] == "/api/pay" and request["url"] == CHECKOUT


async def test_pages_ranked_by_frustration(node: Node) -> None:
    shop = await node.seed(agents=2, settings=SiteSettings(recording=True), roles={1: Role.ANALYST})
    t0 = time.time() * 1000
    for n in range(6):  # six visits of the checkout, one of them angry
        v = await node.visitor(shop.key, page={"url": CHECKOUT, "title": "Pay"})
        rec = {"t": "rec", "session": f"rec_visit_{n:04d}", "seq": 0}
        got = await v.request({**rec, "events": batch(t0, 4 if n == 0 else 1, failed=n == 0)})
        assert got["t"] == "recorded"
    analyst = next(e for e in shop.agents if e.startswith("agent1-"))
    async with node.http() as http:
        assert (await console_login(http, analyst)).status_code == 303
        page = await http.get("/console/sessions/frustration", params={"days": "7"})
        assert page.status_code == 200
        (row,) = re.findall(r'<tr data-page="([^"]+)">(.*?)</tr>', page.text, re.S)
        assert row[0] == CHECKOUT
        cells = dict(re.findall(r'<td data-signal="(\w+)">(.*?)</td>', row[1], re.S))
        assert ">16.7</a>" in cells["rage"] and ">16.7</a>" in cells["request"]
        assert cells["error"] == ""
        assert "signal=rage" in cells["rage"]
        bad = await http.get("/console/sessions/frustration", params={"days": "365"})
        assert bad.status_code == 400 and "from 1 to 90" in bad.text
