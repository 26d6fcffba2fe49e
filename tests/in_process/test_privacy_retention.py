"""Retention for everything (chatserver/privacy/retention.py, docs/privacy.md "Retention"),
on an in-process node: data written through the real paths, then a sweep "in the future"."""

from __future__ import annotations

import time

import pytest

from archive.query import ArchiveQuery
from chatserver.audit import AuditQuery
from chatserver.privacy.retention import DAY, RUN_DOC, sweep
from chatserver.types import ConvState, SiteSettings

from ..node import Node

pytestmark = pytest.mark.anyio

PDF = b"%PDF-1.4\n%%EOF\n"


async def test_a_sweep_deletes_what_is_past_each_period(node: Node) -> None:
    settings = SiteSettings(
        conversation_retention_days=30,
        attachment_retention_days=10,
        visitor_retention_days=20,
        activity_retention_days=5,
    )
    shop = await node.seed(agents=1, settings=settings)
    site = shop.site.id
    agent = await node.agent(next(iter(shop.agents)))
    # a visitor who chatted, sent a file, and whose chat was closed
    chatted = await node.visitor(shop.key, page={"url": "https://shop/a", "title": "A"})
    ack = await chatted.request({"t": "send", "cid": "m1", "body": "old question"})
    conv = ack["conv"]
    async with node.http() as http:
        up = await http.post(
            "/api/attachments",
            params={"name": "bill.pdf"},
            content=PDF,
            headers={"Authorization": f"Bearer {chatted.welcome['token']}"},
        )
    file_id = up.json()["id"]
    assert (await chatted.request({"t": "attach", "cid": "f1", "attachment": file_id}))[
        "t"
    ] == "ack"
    await agent.expect("conv", lambda f: f["conv"]["id"] == conv and f["conv"]["state"] == "active")
    await node.parts.convs.close(await node.hub.site(site), conv, {"kind": "agent"})
    await chatted.send({"t": "page", "url": "https://shop/b", "title": "B", "referrer": ""})
    # a visitor who never chatted (a row: they set an attribute)
    idle = await node.visitor(shop.key)
    await idle.send({"t": "attrs", "set": {"plan": "free"}})
    await idle.send({"t": "page", "url": "https://shop/c", "title": "C", "referrer": ""})
    # a visitor chatting now: their open conversation stays whatever its age
    current = await node.visitor(shop.key)
    now_conv = (await current.request({"t": "send", "cid": "m1", "body": "still here"}))["conv"]
    await node.parts.archive.flush()
    idle_id, chatted_id = idle.welcome["visitor"], chatted.welcome["visitor"]
    assert await node.store.get_visitor(idle_id) is not None
    att = await node.store.get_attachment(file_id)
    assert att is not None and await node.parts.blobs.read(att.blob_key) == PDF

    # 6 days on: only page views and events are past their period
    runs = await sweep(node.parts, time.time() + 6 * DAY, force=True)
    assert runs[site]["deleted"]["page_views"] >= 2
    assert await node.store.page_views(chatted_id) == []
    assert await node.store.get_conversation(conv) is not None
    # a sweep right after, not forced: another process swept this site just now
    assert await sweep(node.parts, time.time() + 6 * DAY) == {}

    # 11 days on: the file goes (its message stays)
    runs = await sweep(node.parts, time.time() + 11 * DAY, force=True)
    assert runs[site]["deleted"]["attachments"] == 1
    assert await node.store.get_attachment(file_id) is None
    assert await node.parts.blobs.size(att.blob_key) is None
    assert len(await node.store.entries(conv, after=0)) >= 2

    # 31 days on: the closed conversation and the visitor who never chatted
    runs = await sweep(node.parts, time.time() + 31 * DAY, force=True)
    deleted = runs[site]["deleted"]
    # the visitor whose chats are gone has none left: not seen for 31 days, they go too
    assert deleted["conversations"] == 1 and deleted["visitors"] == 2
    assert await node.store.get_conversation(conv) is None
    assert await node.store.get_visitor(idle_id) is None
    assert not await node.store.is_erased(idle_id)  # retention is not an erasure request
    facts = await node.store.get_facts(conv)
    assert facts is not None and facts.visitor_id == "erased"  # the reports keep the figures
    hits = await node.parts.archive.index.search(ArchiveQuery(site_id=site, text="question"))
    assert hits.hits == []
    # what is current stays
    open_conv = await node.store.get_conversation(now_conv)
    assert open_conv is not None and open_conv.state is not ConvState.CLOSED
    assert await node.store.get_visitor(chatted_id) is None
    assert await node.store.get_visitor(current.welcome["visitor"]) is not None
    run = await node.store.get_doc(site, *RUN_DOC)
    assert run is not None and run.data["deleted"]["conversations"] == 1
    trail = await node.parts.audit.log.entries(AuditQuery(site, action="retention.sweep"))
    assert len(trail) == 3 and trail[0].actor == "system"
    assert trail[0].detail["conversations"] == 1


async def test_periods_of_zero_keep_everything(node: Node) -> None:
    shop = await node.seed(agents=0)
    visitor = await node.visitor(shop.key)
    await visitor.send({"t": "attrs", "set": {"plan": "free"}})
    await visitor.request({"t": "send", "cid": "m1", "body": "hi"})
    assert await sweep(node.parts, time.time() + 3650 * DAY, force=True) == {}
    assert await node.store.get_visitor(visitor.welcome["visitor"]) is not None
    assert len(await node.store.page_views(visitor.welcome["visitor"])) >= 0
