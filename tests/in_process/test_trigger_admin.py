"""The admin's trigger writes as single service calls (``chatserver/proactive/admin.py``),
on the in-process node.

Each call writes the store and tells every process (``control.triggers_changed``),
so the engine does not wait out its rules cache (``RULES_TTL``, 5 s): a
rule saved greets a visitor already connected, a rule deleted, disabled or
shut out by business hours no longer fires, at once.  These tests call the
services directly, with real clients connected, and check what they see.
"""

from __future__ import annotations

from typing import Any

import pytest

from chatserver.proactive import TRIGGER_KIND, admin
from chatserver.proactive.hours import HOURS_DOC, BusinessHours
from chatserver.proactive.rules import Rule, RuleContext, parse_rule

from ..conftest import Client, Shop
from ..node import Node

pytestmark = pytest.mark.anyio

CTX = RuleContext()
GREETING = "Hi! Can we help you find something?"
CHECKOUT = {"url": "https://shop.example/checkout", "title": "Checkout"}
HOME = {"url": "https://shop.example/", "title": "Shop"}
GREETED_WITHIN = 3.0  # seconds; the engine acts in milliseconds once told
QUIET = 0.5  # seconds to wait for a greeting that must not come


def greeting_rule(rule_id: str, *conditions: dict[str, Any], name: str = "Greet") -> Rule:
    data = {
        "name": name,
        "conditions": list(conditions) or [{"kind": "url", "op": "contains", "value": "/checkout"}],
        "actions": [{"type": "message", "body": GREETING}],
    }
    return parse_rule(data, CTX, rule_id)


NEVER = {"kind": "url", "op": "contains", "value": "/never-visited"}


async def greeted(visitor: Client, timeout: float = GREETED_WITHIN) -> str:
    """The conversation a greeting opened for ``visitor`` (its tabs follow it)."""
    follow = await visitor.expect("conv", lambda f: bool(f.get("follow")), timeout=timeout)
    conv = str(follow["conv"]["id"])
    page = await visitor.request({"t": "history", "conv": conv, "since": 0})
    texts = [m["body"] for m in page["messages"] + visitor.of("msg", conv) if m["kind"] == "text"]
    if not texts:
        # The follow is published before the greeting is appended (a tab that
        # follows recovers it), so the history may come back before it: then
        # the message itself follows.
        await visitor.expect("msg", lambda f: f.get("conv") == conv, timeout=timeout)
        texts = visitor.texts(conv)
    assert texts[:1] == [GREETING], texts
    return conv


async def not_greeted(visitor: Client) -> None:
    await visitor.quiet(QUIET)
    assert not [f for f in visitor.of("conv") if f.get("follow")], visitor.frames
    assert not visitor.of("msg"), visitor.frames


async def watched_visitor(node: Node, shop: Shop, page: dict[str, str]) -> Client:
    """A visitor connected while the site has a rule that never fires: the engine
    watches it (a site without rules costs nothing, so its visitors are not watched)."""
    await admin.save_rule(node.parts, shop.site.id, greeting_rule("t_never", NEVER, name="Never"))
    visitor = await node.visitor(shop.key, page=page)
    await not_greeted(visitor)
    return visitor


async def test_a_rule_saved_through_the_service_greets_a_connected_visitor(node: Node) -> None:
    shop = await node.seed()
    visitor = await watched_visitor(node, shop, CHECKOUT)

    await admin.save_rule(node.parts, shop.site.id, greeting_rule("t_greet"))

    # No new event from the visitor: the save itself made the engine look again.
    conv = await greeted(visitor)
    stored = await node.store.get_conversation(conv)
    assert stored is not None and "proactive" in stored.tags
    doc = await node.store.get_doc(shop.site.id, TRIGGER_KIND, "t_greet")
    assert doc is not None and doc.data == greeting_rule("t_greet").to_json()


async def test_a_deleted_rule_no_longer_fires(node: Node) -> None:
    shop = await node.seed()
    await admin.save_rule(node.parts, shop.site.id, greeting_rule("t_greet"))
    first = await node.visitor(shop.key, page=CHECKOUT)
    await greeted(first)  # the engine has the site's rules cached now

    assert await admin.delete_rule(node.parts, shop.site.id, "t_greet")

    second = await node.visitor(shop.key, page=CHECKOUT)
    await not_greeted(second)
    assert await node.store.get_doc(shop.site.id, TRIGGER_KIND, "t_greet") is None
    assert not await admin.delete_rule(node.parts, shop.site.id, "t_greet")


async def test_a_disabled_rule_no_longer_fires_and_enabled_again_it_does(node: Node) -> None:
    shop = await node.seed()
    await admin.save_rule(node.parts, shop.site.id, greeting_rule("t_greet"))
    await greeted(await node.visitor(shop.key, page=CHECKOUT))

    assert await admin.toggle_rule(node.parts, shop.site.id, "t_greet")

    doc = await node.store.get_doc(shop.site.id, TRIGGER_KIND, "t_greet")
    assert doc is not None and doc.data["enabled"] is False
    await not_greeted(await node.visitor(shop.key, page=CHECKOUT))

    assert await admin.toggle_rule(node.parts, shop.site.id, "t_greet")
    await greeted(await node.visitor(shop.key, page=CHECKOUT))
    assert not await admin.toggle_rule(node.parts, shop.site.id, "t_none")


async def test_business_hours_saved_and_cleared_reach_a_connected_visitor(node: Node) -> None:
    shop = await node.seed()
    visitor = await watched_visitor(node, shop, HOME)
    closed = {"kind": "business_hours", "op": "is", "value": False}
    await admin.save_rule(node.parts, shop.site.id, greeting_rule("t_closed", closed))
    await not_greeted(visitor)  # no hours: the site counts as open all the time

    never_open = BusinessHours.from_json({"timezone": "UTC", "week": [[]] * 7})
    await admin.save_hours(node.parts, shop.site.id, never_open)

    await greeted(visitor)
    stored = await node.store.get_doc(shop.site.id, *HOURS_DOC)
    assert stored is not None and stored.data == never_open.to_json()

    await admin.clear_hours(node.parts, shop.site.id)
    assert await node.store.get_doc(shop.site.id, *HOURS_DOC) is None
    await not_greeted(await node.visitor(shop.key, page=HOME))


async def test_import_adds_after_or_replaces_and_reorder_numbers_them(node: Node) -> None:
    shop = await node.seed()
    site_id = shop.site.id
    await admin.save_rule(node.parts, site_id, greeting_rule("t_old", NEVER, name="Old"))
    a, b = greeting_rule("", NEVER, name="A"), greeting_rule("", name="B")

    await admin.import_rules(node.parts, site_id, [a, b], replace=False)
    docs = sorted(await node.store.list_docs(site_id, TRIGGER_KIND), key=lambda d: d.data["order"])
    assert [(d.data["name"], d.data["order"]) for d in docs] == [("Old", 0), ("A", 1), ("B", 2)]
    await greeted(await node.visitor(shop.key, page=CHECKOUT))  # B fires

    await admin.reorder(node.parts, site_id, [docs[2], docs[0], docs[1]])
    docs = await node.store.list_docs(site_id, TRIGGER_KIND)
    assert sorted((d.data["order"], d.data["name"]) for d in docs) == [
        (1, "B"),
        (2, "Old"),
        (3, "A"),
    ]

    await admin.import_rules(node.parts, site_id, [a], replace=True)
    docs = await node.store.list_docs(site_id, TRIGGER_KIND)
    assert [(d.data["name"], d.data["order"]) for d in docs] == [("A", 1)]
    await not_greeted(await node.visitor(shop.key, page=CHECKOUT))  # B is gone
