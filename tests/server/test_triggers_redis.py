"""Proactive triggers across several chatserver processes sharing one redis-server.

A visitor's reload may land on another process, and two tabs may be on two
processes at once: the firing is claimed in the store, so the greeting is
sent once; the answer routes the conversation from whichever process gets it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatserver.proactive import COUNTERS, TRIGGER_KIND
from chatserver.proactive.hours import DAYS
from chatserver.proactive.rules import parse_rule
from chatserver.store_redis import RedisStore
from chatserver.types import Role

from ..conftest import Client, Server, Shop, console_login, csrf_of, seed
from ..redis_server import RedisServer

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.usefixtures("close_clients")]

CHECKOUT = {"url": "https://shop.example/checkout", "title": "Cart"}
RULE = {
    "name": "Checkout help",
    "conditions": [
        {"kind": "url", "op": "contains", "value": "/checkout"},
        {"kind": "time_on_page", "op": ">=", "value": 1},
        {"kind": "attribute", "path": "cart.total", "op": ">=", "value": 50},
    ],
    "actions": [{"type": "message", "body": "Free shipping today!"}],
}


@pytest.fixture
async def setup(tmp_path: Path, redis: RedisServer) -> AsyncIterator[tuple[Shop, list[Server]]]:
    shop = await seed(tmp_path, agents=1, redis_url=redis.url)
    store = RedisStore(redis.url)
    await store.start()
    try:
        stored = parse_rule(RULE, None, "t_checkout").to_json()
        await store.put_doc(shop.site.id, TRIGGER_KIND, "t_checkout", stored)
    finally:
        await store.close()
    procs = [Server(tmp_path / f"p{i}", "--redis", redis.url, grace=1.0) for i in range(3)]
    for p in procs:
        p.start()
    yield shop, procs
    for p in procs:
        p.stop()


async def counters(redis: RedisServer, shop: Shop) -> dict[str, int]:
    store = RedisStore(redis.url)
    await store.start()
    try:
        return await store.counters(shop.site.id, COUNTERS)
    finally:
        await store.close()


async def on_checkout(server: Server, shop: Shop, token: str | None = None) -> Client:
    visitor = await Client.visitor(server, shop.key, token=token, page=CHECKOUT)
    assert (await visitor.request({"t": "page", **CHECKOUT}))["t"] == "ok"
    reply = await visitor.request({"t": "attrs", "set": {"cart": {"items": 1, "total": 60}}})
    assert reply["t"] == "ok"
    return visitor


async def greetings(client: Client, conv: str) -> list[dict[str, Any]]:
    """Every automatic greeting this client has: history plus live entries.

    History answers up to what the client's stream has delivered, so an entry
    still on its way (from another process) is looked for among the live
    frames too, and asked for again for up to five seconds.
    """
    for _ in range(50):
        page = await client.request({"t": "history", "conv": conv, "since": 0})
        seen = {m["offset"]: m for m in page["messages"]}
        for f in list(client.frames):
            if f.get("t") == "msg" and f.get("conv") == conv:
                seen.setdefault(f["offset"], f)
        found = [m for m in seen.values() if m.get("data", {}).get("auto")]
        if found:
            return found
        await asyncio.sleep(0.1)
    return []


async def test_reload_on_another_process_gets_no_second_greeting(
    setup: tuple[Shop, list[Server]], redis: RedisServer
) -> None:
    shop, (a, b, c) = setup
    first = await on_checkout(a, shop)
    follow = await first.expect("conv", lambda f: bool(f.get("follow")), timeout=10)
    conv = follow["conv"]["id"]
    assert len(await greetings(first, conv)) == 1
    await first.close()

    again = await on_checkout(b, shop, token=first.welcome["token"])
    assert again.welcome["conv"] == conv
    await asyncio.sleep(2.5)  # past the rule's second on the page, on process B
    assert len(await greetings(again, conv)) == 1
    assert await counters(redis, shop) == {"t_checkout.fired": 1}

    # The visitor answers on B; an agent on C gets the chat; a chat followed.
    agent = await Client.agent(c, next(iter(shop.agents)))
    await again.request({"t": "send", "cid": "m1", "body": "Great, thanks"})
    await agent.expect(
        "conv", lambda f: f["conv"]["id"] == conv and f["conv"]["state"] == "active", timeout=10
    )
    for _ in range(50):
        if await counters(redis, shop) == {"t_checkout.fired": 1, "t_checkout.chats": 1}:
            break
        await asyncio.sleep(0.1)
    assert await counters(redis, shop) == {"t_checkout.fired": 1, "t_checkout.chats": 1}


async def test_two_tabs_on_two_processes_fire_once(
    setup: tuple[Shop, list[Server]], redis: RedisServer
) -> None:
    shop, (a, b, _) = setup
    first = await on_checkout(a, shop)
    second = await on_checkout(b, shop, token=first.welcome["token"])
    follow = await first.expect("conv", lambda f: bool(f.get("follow")), timeout=10)
    await second.expect("conv", lambda f: bool(f.get("follow")), timeout=10)
    await asyncio.sleep(1.5)  # both processes' timers have run
    assert len(await greetings(second, follow["conv"]["id"])) == 1
    assert await counters(redis, shop) == {"t_checkout.fired": 1}


# -- rule and business-hours changes reach every process at once ----------------------


def rule_form(name: str, url: str, body: str, closed: bool = False) -> dict[str, str]:
    """The console's rule form: a page URL (and, with ``closed``, outside hours) greets."""
    form = {
        "name": name,
        "enabled": "on",
        "match": "all",
        "c0_kind": "url",
        "c0_op": "contains",
        "c0_value": url,
        "a0_type": "message",
        "a0_body": body,
        "a0_as": "shop",
        "frequency": "visit",
        "gap": "600",
    }
    if closed:
        form |= {"c1_kind": "business_hours", "c1_op": "is", "c1_value": "no"}
    return form


async def console_post(http: httpx.AsyncClient, path: str, data: dict[str, str]) -> int:
    page = await http.get("/console/triggers")
    origin = {"Origin": str(http.base_url).rstrip("/")}
    r = await http.post(path, data={**data, "csrf": csrf_of(page.text)}, headers=origin)
    return r.status_code


async def greeted(client: Client, body: str, within: float) -> float:
    """Seconds until ``client`` has the automatic message ``body`` (live or in history)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while loop.time() - start < within:
        for f in client.of("msg"):
            if f.get("data", {}).get("auto") and f["body"] == body:
                return loop.time() - start
        for conv in {f["conv"]["id"] for f in client.of("conv") if f.get("follow")}:
            page = await client.request({"t": "history", "conv": conv, "since": 0})
            if any(m.get("data", {}).get("auto") and m["body"] == body for m in page["messages"]):
                return loop.time() - start
        await asyncio.sleep(0.05)
    raise AssertionError(f"no greeting {body!r} within {within} s")


@pytest.fixture
async def admin_setup(
    tmp_path: Path, redis: RedisServer
) -> AsyncIterator[tuple[Shop, list[Server]]]:
    shop = await seed(tmp_path, agents=1, roles={0: Role.ADMIN}, redis_url=redis.url)
    procs = [Server(tmp_path / f"p{i}", "--redis", redis.url, grace=1.0) for i in range(2)]
    for p in procs:
        p.start()
    yield shop, procs
    for p in procs:
        p.stop()


async def test_rule_and_hours_changes_on_one_process_apply_on_another_at_once(
    admin_setup: tuple[Shop, list[Server]],
) -> None:
    """The admin saves on A; a visitor on B matching only the new rule is greeted at once.

    B has just read the site's rules (a visitor arrived), so without the control
    event it would keep them for ``RULES_TTL`` (5 s), and, with nothing else
    happening to its visitors, greet nobody at all.
    """
    shop, (a, b) = admin_setup
    async with httpx.AsyncClient(base_url=a.url) as admin:
        assert (await console_login(admin, next(iter(shop.agents)))).status_code == 303
        form = rule_form("Checkout", "/checkout", "Checkout help")
        assert await console_post(admin, "/console/triggers/new", form) == 303
        form = rule_form("Closed", "/closed", "We are closed now", closed=True)
        assert await console_post(admin, "/console/triggers/new", form) == 303

        pricing = {"url": "https://shop.example/pricing", "title": "Pricing"}
        closed = {"url": "https://shop.example/closed", "title": "Closed"}
        browsing = await Client.visitor(b, shop.key, page=pricing)
        assert (await browsing.request({"t": "page", **pricing}))["t"] == "ok"
        late = await Client.visitor(b, shop.key, page=closed)
        assert (await late.request({"t": "page", **closed}))["t"] == "ok"
        await browsing.quiet(0.3)
        assert not [f for f in browsing.of("msg") if f.get("data", {}).get("auto")]

        # A new rule matching the page the visitor on B is on.
        form = rule_form("Pricing", "/pricing", "Questions about prices?")
        assert await console_post(admin, "/console/triggers/new", form) == 303
        assert await greeted(browsing, "Questions about prices?", within=2.0) < 2.0

        # Business hours that close the site now: the "Closed" rule greets on B.
        days = {d: "" for d in DAYS}
        assert (
            await console_post(admin, "/console/triggers/hours", {"timezone": "UTC", **days}) == 200
        )
        assert await greeted(late, "We are closed now", within=2.0) < 2.0
