"""A client that is not the widget still cannot store or preview a card number.

The widget redacts before sending (widget/src/redact.js, the browser test
``test_a_card_number_never_leaves_the_page``); the server applies the card
rule again to every visitor post and draft (chatserver/cards.py).
"""

from __future__ import annotations

import pytest

from chatserver.types import ConvState

from ..node import Node

pytestmark = pytest.mark.anyio

CARD = "4242 4242 4242 4242"


async def test_posts_and_drafts_lose_card_numbers(node: Node) -> None:
    shop = await node.seed()
    agent = await node.agent(next(iter(shop.agents)))
    visitor = await node.visitor(shop.key)
    ack = await visitor.request({"t": "send", "cid": "m1", "body": f"pay with {CARD} please"})
    conv = ack["conv"]
    await agent.expect("conv", lambda f: f["conv"]["state"] == "active")
    (entry,) = await node.store.entries(conv, after=0, limit=1)
    assert entry.body == "pay with [redacted] please"
    mark = len(agent.frames)
    await visitor.send({"t": "typing", "draft": "card 4242 4242 4"})
    preview = await agent.expect("preview", lambda f: f["conv"] == conv, after=mark)
    assert preview["text"] == "card [redacted]"
    offline = await node.visitor(shop.key)
    form = {"t": "offline", "cid": "o1", "name": "Ann", "email": "ann@example.com"}
    sent = await offline.request({**form, "body": f"card {CARD.replace(' ', '')}"})
    assert sent["t"] == "ack", sent
    bodies: list[str] = []
    every = [ConvState.QUEUED, ConvState.ACTIVE, ConvState.CLOSED]
    for c in await node.store.list_conversations(shop.site.id, every):
        for e in await node.store.entries(c.id, after=0):
            assert "4242" not in e.body, e
            bodies.append(e.body)
    assert "card [redacted]" in bodies  # the offline form's message
