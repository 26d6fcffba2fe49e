"""The trigger engine (``chatserver/proactive/engine.py``) on a real in-process hub.

A real ``Hub`` with its SQLite store, in-process broker and router; visitor
sessions go through the real protocol ``Connection`` and the hub's hello and
frame handlers.  The engine runs on a hand-driven clock with its loop timer
off: the test moves time forward and calls ``run_due``, so every instant is
deterministic.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from chatserver.blobs import DirectoryBlobs
from chatserver.broker_memory import MemoryBroker
from chatserver.config import Config
from chatserver.node import Node
from chatserver.presence_memory import MemoryPresence
from chatserver.proactive import COUNTERS, PROACTIVE_TAG, TRIGGER_KIND, WAIT_KIND, Proactive
from chatserver.proactive.hours import HOURS_DOC, BusinessHours
from chatserver.proactive.rules import RuleContext, parse_rule
from chatserver.protocol.codec import Codec, Connection
from chatserver.routing_memory import MemoryRouter
from chatserver.security import Signer
from chatserver.session import Session
from chatserver.store_sqlite import SQLiteStore
from chatserver.types import AuthorKind, Conversation, ConvState, Role, Site

pytestmark = pytest.mark.anyio

CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
CHECKOUT = "https://shop.example/checkout"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class World:
    def __init__(self, node: Node, engine: Proactive, clock: Clock, site: Site) -> None:
        self.node, self.engine, self.clock, self.site = node, engine, clock, site

    async def rule(self, rule_id: str, data: dict[str, Any]) -> None:
        ctx = RuleContext(frozenset(self.site.departments), {})
        stored = parse_rule(data, ctx, rule_id).to_json()
        await self.node.store.put_doc(self.site.id, TRIGGER_KIND, rule_id, stored)
        self.engine.invalidate(self.site.id)

    async def visitor(
        self, token: str | None = None, url: str = CHECKOUT, lang: str = "en"
    ) -> Session:
        conn = Connection(Codec.JSON, self.node.limits, time.monotonic())
        session = Session(conn, 1 << 20)
        hello: dict[str, Any] = {"t": "hello", "v": 1, "kind": "visitor", "site": self.site.key}
        if token:
            hello["token"] = token
        hello["page"] = {"url": url, "title": "Shop"}
        frame = conn.receive(json.dumps(hello), time.monotonic())
        await self.node.hub.hello(
            session, frame, None, {"user-agent": CHROME, "accept-language": lang}
        )
        await self.frame(session, {"t": "page", "url": url, "title": "Shop"})
        return session

    async def frame(self, session: Session, raw: dict[str, Any]) -> None:
        frame = session.conn.receive(json.dumps(raw), time.monotonic())
        await self.node.hub.handle(session, frame)
        await self.node.convs.events.idle()  # the engine follows posts as conversation events

    async def later(self, seconds: float) -> None:
        self.clock.now += seconds
        await self.engine.run_due()
        await asyncio.sleep(0.05)  # follow tasks the broker spawned

    async def texts(self, session: Session) -> list[dict[str, Any]]:
        conv = await self.node.store.current_conversation(session.visitor_id or "")
        if conv is None:
            return []
        return [e.to_wire() for e in await self.node.store.entries(conv.id, after=0)]

    async def counters(self) -> dict[str, int]:
        return await self.node.store.counters(self.site.id, COUNTERS)


def frames(session: Session) -> list[dict[str, Any]]:
    return [json.loads(data) for data in session.outbox]


def token_of(session: Session) -> str:
    return str(next(f for f in frames(session) if f["t"] == "welcome")["token"])


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    store = SQLiteStore(tmp_path / "chat.db")
    blobs = DirectoryBlobs(tmp_path / "blobs")
    parts = (store, MemoryBroker(), MemoryRouter(), MemoryPresence(), Signer(b"k" * 32), blobs)
    node = Node(Config(data_dir=tmp_path), *parts)  # handlers and features installed
    clock = Clock()
    node.triggers = engine = Proactive(node, clock=clock, timer=False)
    await node.start()  # the store first
    site = await store.create_site("Shop", departments=("sales",))
    try:
        yield World(node, engine, clock, site)
    finally:
        await node.close()  # the store last


CHECKOUT_RULE: dict[str, Any] = {
    "name": "Checkout help",
    "conditions": [
        {"kind": "url", "op": "contains", "value": "/checkout"},
        {"kind": "time_on_page", "op": ">=", "value": 3},
        {"kind": "attribute", "path": "cart.total", "op": ">=", "value": 50},
    ],
    "actions": [
        {"type": "message", "body": "Free shipping over 50 today!"},
        {"type": "open"},
    ],
}


async def test_checkout_greeting_fires_once_per_visit(world: World) -> None:
    await world.rule("t_checkout", CHECKOUT_RULE)
    tab = await world.visitor()
    await world.frame(tab, {"t": "attrs", "set": {"cart": {"items": 2, "total": 60}}})
    vid = tab.visitor_id or ""
    # One pending wake-up: three seconds after the page view.
    assert world.engine.timers.when(vid) == pytest.approx(world.clock.now + 3, abs=0.01)
    await world.later(2.9)
    assert await world.texts(tab) == []
    await world.later(0.2)
    (greeting,) = await world.texts(tab)
    assert greeting["body"] == "Free shipping over 50 today!"
    assert greeting["from"] == {"kind": "system", "id": "", "name": "Shop"}
    assert greeting["data"] == {"auto": {"trigger": "t_checkout", "name": "Checkout help"}}
    got = frames(tab)
    assert {"t": "open", "trigger": "t_checkout"} in got
    assert any(f["t"] == "conv" and f.get("follow") for f in got)  # the tab follows it
    assert await world.counters() == {"t_checkout.fired": 1}
    assert vid not in world.engine.timers  # nothing left to wait for

    # Not routed: no queue place, no agent, tagged; marked as waiting for an answer.
    conv = await world.node.store.current_conversation(vid)
    assert conv is not None and conv.state is ConvState.QUEUED and conv.tags == (PROACTIVE_TAG,)
    assert await world.node.router.queue(world.site.id) == []
    assert await world.node.store.get_doc(world.site.id, WAIT_KIND, conv.id) is not None

    # A reload in the same visit: a new connection, a new watch, no second greeting.
    await world.node.hub.disconnect(tab)
    assert vid not in world.engine.watches
    again = await world.visitor(token=token_of(tab))
    assert again.visitor_id == vid
    await world.later(10)
    assert len(await world.texts(again)) == 1
    assert await world.counters() == {"t_checkout.fired": 1}


async def test_other_pages_and_small_carts_stay_silent(world: World) -> None:
    await world.rule("t_checkout", CHECKOUT_RULE)
    elsewhere = await world.visitor(url="https://shop.example/product/1")
    await world.frame(elsewhere, {"t": "attrs", "set": {"cart": {"total": 60}}})
    small = await world.visitor()
    await world.frame(small, {"t": "attrs", "set": {"cart": {"total": 40}}})
    empty = await world.visitor()
    await world.later(3.1)
    await world.later(60)
    for session in (elsewhere, small, empty):
        assert await world.texts(session) == []
    assert await world.counters() == {}
    # A cart filled later fires at once (the page time has passed).
    await world.frame(small, {"t": "attrs", "set": {"cart": {"total": 55}}})
    assert len(await world.texts(small)) == 1


async def test_business_hours_gate_and_wake(world: World) -> None:
    # Open one hour a day, starting two hours from now (UTC): closed now.
    opens = time.gmtime(world.clock.now + 7200)
    start = opens.tm_hour * 60
    week = [[[start, start + 60]]] * 7
    hours = BusinessHours.from_json({"timezone": "UTC", "week": week})
    await world.node.store.put_doc(world.site.id, *HOURS_DOC, hours.to_json())
    rule = {
        **CHECKOUT_RULE,
        "conditions": [
            {"kind": "url", "op": "contains", "value": "/checkout"},
            {"kind": "business_hours", "op": "is", "value": True},
        ],
    }
    await world.rule("t_hours", rule)
    tab = await world.visitor()
    await world.later(5)
    assert await world.texts(tab) == []
    # The visitor is woken at the opening instant (on the hour) and greeted then.
    wake = world.engine.timers.when(tab.visitor_id or "")
    assert wake is not None and 3600 <= wake - world.clock.now <= 7200
    assert time.gmtime(wake).tm_min == 0 and time.gmtime(wake).tm_hour == opens.tm_hour
    await world.later(wake - world.clock.now + 0.01)
    assert len(await world.texts(tab)) == 1
    assert ZoneInfo("UTC")  # zoneinfo is available to the server


async def greeted(world: World) -> tuple[Session, Conversation]:
    """A visitor on the checkout with a cart, greeted by the checkout rule."""
    await world.rule("t_checkout", CHECKOUT_RULE)
    tab = await world.visitor()
    await world.frame(tab, {"t": "attrs", "set": {"cart": {"total": 75}}})
    await world.later(3.5)
    conv = await world.node.store.current_conversation(tab.visitor_id or "")
    assert conv is not None
    return tab, conv


async def routed_and_counted(world: World, conv: Conversation) -> None:
    """The greeting's conversation is in the queue now, its mark gone, the chat counted."""
    assert await world.node.router.queue(world.site.id) == [conv.id]
    assert await world.node.store.get_doc(world.site.id, WAIT_KIND, conv.id) is None
    assert await world.counters() == {"t_checkout.fired": 1, "t_checkout.chats": 1}


async def test_an_offline_form_answer_routes_the_greeting_like_a_typed_one(world: World) -> None:
    """#16: every kind of visitor post goes through one flow; the engine follows its event.

    Before, only a typed ``send`` told the trigger engine: an answer through
    the offline form stayed in the greeting's conversation, unrouted, until
    the sweep closed it as unanswered.
    """
    tab, conv = await greeted(world)
    answer = {"t": "offline", "cid": "o1", "name": "Ann", "email": "ann@example.com"}
    await world.frame(tab, {**answer, "body": "Call me back"})
    await routed_and_counted(world, conv)


async def test_answer_routes_the_greeting_and_counts_a_chat(world: World) -> None:
    tab, conv = await greeted(world)
    await world.later(30)
    await world.frame(tab, {"t": "send", "cid": "m1", "body": "Do you ship to Spain?"})
    await routed_and_counted(world, conv)
    await world.frame(tab, {"t": "send", "cid": "m2", "body": "Hello?"})
    assert await world.counters() == {"t_checkout.fired": 1, "t_checkout.chats": 1}
    texts = [e["body"] for e in await world.texts(tab) if e["kind"] == "text"]
    assert texts == ["Free shipping over 50 today!", "Do you ship to Spain?", "Hello?"]


async def test_firings_and_chats_are_counted_on_the_sites_local_day(world: World) -> None:
    """The reports' funnel reads dated counters: the day is the site's, not UTC's."""
    week = [[[0, 1440]]] * 7
    hours = BusinessHours.from_json({"timezone": "Pacific/Auckland", "week": week})
    await world.node.store.put_doc(world.site.id, *HOURS_DOC, hours.to_json())
    world.clock.now = datetime(2026, 3, 31, 20, 0, tzinfo=UTC).timestamp()  # Apr 1 there
    tab, _ = await greeted(world)
    await world.frame(tab, {"t": "send", "cid": "m1", "body": "Do you ship to Spain?"})
    dated = await world.node.store.counters(world.site.id, f"{COUNTERS}@2026-04")
    assert dated == {"t_checkout.fired.01": 1, "t_checkout.chats.01": 1}
    assert await world.node.store.counters(world.site.id, f"{COUNTERS}@2026-03") == {}
    assert await world.counters() == {"t_checkout.fired": 1, "t_checkout.chats": 1}


async def test_a_late_answer_is_not_a_chat_that_followed(world: World) -> None:
    await world.rule("t_checkout", CHECKOUT_RULE)
    tab = await world.visitor()
    await world.frame(tab, {"t": "attrs", "set": {"cart": {"total": 75}}})
    await world.later(3.5)
    await world.later(601)
    await world.frame(tab, {"t": "send", "cid": "m1", "body": "Still there?"})
    assert await world.counters() == {"t_checkout.fired": 1}


async def test_stop_and_order(world: World) -> None:
    first = {
        "name": "Specific",
        "order": 1,
        "stop": True,
        "conditions": [{"kind": "url", "op": "contains", "value": "/checkout"}],
        "actions": [{"type": "tag", "tag": "checkout"}],
    }
    second = {
        "name": "Everyone",
        "order": 2,
        "conditions": [{"kind": "time_on_site", "op": ">=", "value": 0}],
        "actions": [{"type": "message", "body": "Hi there"}],
    }
    await world.rule("t_b", second)
    await world.rule("t_a", first)
    checkout = await world.visitor()
    home = await world.visitor(url="https://shop.example/")
    await world.later(1)
    assert await world.texts(checkout) == []  # stopped by the first rule
    assert [e["body"] for e in await world.texts(home)] == ["Hi there"]
    assert await world.counters() == {"t_a.fired": 1, "t_b.fired": 1}


async def test_every_time_with_a_gap(world: World) -> None:
    rule = {
        "name": "Each product",
        "frequency": "always",
        "gap": 60,
        "conditions": [{"kind": "url", "op": "contains", "value": "/product/"}],
        "actions": [{"type": "message", "body": "Questions about sizes?"}],
    }
    await world.rule("t_p", rule)
    tab = await world.visitor(url="https://shop.example/product/1")
    assert len(await world.texts(tab)) == 1
    await world.frame(tab, {"t": "attrs", "set": {"x": 1}})  # same page: not again
    await world.frame(tab, {"t": "page", "url": "https://shop.example/product/2"})
    assert len(await world.texts(tab)) == 1  # within the gap
    # The gap ends while the visitor is still on product 2: woken, greeted once more.
    assert world.engine.timers.when(tab.visitor_id or "") is not None
    await world.later(61)
    assert len(await world.texts(tab)) == 2
    await world.later(120)
    assert len(await world.texts(tab)) == 2  # once per page view
    assert await world.counters() == {"t_p.fired": 2}


async def test_agent_sender_route_and_tag(world: World) -> None:
    store = world.node.store
    agent = await store.create_agent(world.site.id, "ann@x", "Ann", "-", Role.AGENT, 5, ("sales",))
    rule = {
        "name": "Sales",
        "conditions": [
            {"kind": "url", "op": "contains", "value": "/checkout"},
            {"kind": "agent_online", "op": "is_not", "value": "sales"},
            {"kind": "language", "op": "is", "value": "ca"},
            {"kind": "device", "op": "is", "value": "desktop"},
            {"kind": "has_chat", "op": "is", "value": False},
        ],
        "actions": [
            {"type": "message", "body": "Bon dia!", "as": agent.id},
            {"type": "route", "dept": "sales"},
            {"type": "tag", "tag": "catalan"},
        ],
    }
    ctx = RuleContext(frozenset({"sales"}), {agent.id: agent.name})
    await store.put_doc(world.site.id, TRIGGER_KIND, "t_ca", parse_rule(rule, ctx).to_json())
    english = await world.visitor(lang="en-GB,en;q=0.9")
    catalan = await world.visitor(lang="ca-ES,ca;q=0.9")
    assert await world.texts(english) == []
    (entry,) = await world.texts(catalan)
    assert entry["from"] == {"kind": "agent", "id": agent.id, "name": "Ann"}
    conv = await store.current_conversation(catalan.visitor_id or "")
    assert conv is not None and conv.department == "sales"
    assert conv.tags == ("catalan", PROACTIVE_TAG)
    assert conv.agents == ()  # the named agent is not assigned by a greeting
    # What agents see of the visitor: browser, os, device, language.
    members = await world.node.presence.members(f"site:{world.site.id}:visitors")
    info = members[catalan.visitor_id or ""]
    assert (info["browser"], info["os"], info["device"], info["lang"]) == (
        "Chrome",
        "Linux",
        "desktop",
        "ca-es",
    )


async def test_a_watch_per_visitor_and_one_timer(world: World) -> None:
    await world.rule("t_checkout", CHECKOUT_RULE)
    tabs = [await world.visitor() for _ in range(5)]
    assert len(world.engine.watches) == 5 and len(world.engine.timers) == 5 + 1  # + the sweep
    two = await world.visitor(token=token_of(tabs[0]))  # a second tab: the same watch
    assert len(world.engine.watches) == 5
    await world.node.hub.disconnect(tabs[0])
    assert tabs[0].visitor_id in world.engine.watches  # the other tab keeps it
    await world.node.hub.disconnect(two)
    assert tabs[0].visitor_id not in world.engine.watches
    assert tabs[0].visitor_id not in world.engine.timers


async def test_sites_without_rules_keep_nothing(world: World) -> None:
    tab = await world.visitor()
    await world.frame(tab, {"t": "attrs", "set": {"cart": {"total": 99}}})
    assert world.engine.watches == {}
    # Rules that appear later apply from the visitor's next event.
    await world.rule("t_checkout", CHECKOUT_RULE)
    await world.frame(tab, {"t": "page", "url": CHECKOUT + "?again"})
    assert tab.visitor_id in world.engine.watches
    await world.later(3.5)
    assert len(await world.texts(tab)) == 1


async def test_sweep_closes_unanswered_greetings_of_gone_visitors(world: World) -> None:
    await world.rule("t_checkout", CHECKOUT_RULE)
    stays = await world.visitor()
    leaves = await world.visitor()
    for tab in (stays, leaves):
        await world.frame(tab, {"t": "attrs", "set": {"cart": {"total": 80}}})
    await world.later(3.5)
    await world.node.hub.disconnect(leaves)
    world.clock.now += 1801
    await world.engine.sweep()
    gone = await world.node.store.visitor_conversations(leaves.visitor_id or "")
    kept = await world.node.store.current_conversation(stays.visitor_id or "")
    assert gone[0].state is ConvState.CLOSED
    assert gone[0].id not in world.engine._waiting
    assert kept is not None and kept.state is ConvState.QUEUED
    closing = (await world.node.store.entries(gone[0].id, after=0))[-1]
    assert closing.author_kind is AuthorKind.SYSTEM and closing.data["event"] == "closed"


def test_the_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """``python -m bench.triggers`` at a small size (its figures are in docs/triggers.md)."""
    from bench import triggers as bench

    assert bench.main(["--visitors", "300", "--rules", "20", "--events", "600"]) == 0
    out = capsys.readouterr().out
    assert "evaluation per visitor event" in out and "scheduler memory per visitor" in out


async def test_referrer_rules_wait_for_the_page_frame(world: World) -> None:
    """hello carries no referrer: rules about it are judged on the page frame."""
    rule = {
        "name": "Not from Google",
        "conditions": [
            {"kind": "url", "op": "contains", "value": "/checkout"},
            {"kind": "referrer", "op": "not_contains", "value": "google"},
        ],
        "actions": [{"type": "message", "body": "Welcome!"}],
    }
    await world.rule("t_ref", rule)
    conn = Connection(Codec.JSON, world.node.limits, time.monotonic())
    tab = Session(conn, 1 << 20)
    hello = {
        "t": "hello",
        "v": 1,
        "kind": "visitor",
        "site": world.site.key,
        "page": {"url": CHECKOUT},
    }
    await world.node.hub.hello(tab, conn.receive(json.dumps(hello), time.monotonic()), None, {})
    assert await world.texts(tab) == []  # not judged yet
    page = {"t": "page", "url": CHECKOUT, "referrer": "https://www.google.com/"}
    await world.frame(tab, page)
    await world.later(1)
    assert await world.texts(tab) == []  # from Google: no
    await world.frame(tab, {"t": "page", "url": CHECKOUT + "?2", "referrer": CHECKOUT})
    assert len(await world.texts(tab)) == 1
