"""A process starting on a Redis that lost the routing state, but not the record.

The start restores every open conversation from the record into the shared
router.  An agent the record says holds a chat must be known to the router
first (``track_agent``): otherwise the restore gives the chat to nobody, the
grace never releases it, and a chat whose agent never comes back stays
"active" for good.  (Redis holding coordination apart from the record, or
the routing keys evicted or lost with a restart, while no process ran.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio as aioredis

from ..node import Node
from ..redis_server import RedisServer

pytestmark = pytest.mark.anyio

ROUTING = ("routing", "agentsite:", "convsite:", "coordination:epoch")


async def forget_routing(url: str) -> int:
    """Delete the routing keys (the site states, which site an agent or chat is of, the
    epoch) and keep the record's."""
    r = aioredis.from_url(url, decode_responses=True)
    try:
        keys = [k async for k in r.scan_iter(count=1000) if any(p in k for p in ROUTING)]
        if keys:
            await r.delete(*keys)
        return len(keys)
    finally:
        await r.aclose()


async def test_a_chat_of_an_agent_who_never_returns_is_requeued_after_a_start(
    tmp_path: Path, redis: RedisServer
) -> None:
    first = await Node(tmp_path / "a", redis_url=redis.url).start()
    try:
        shop = await first.seed(agents=2)
        gone_email, other_email = shop.agents
        gone = await first.agent(gone_email)
        visitor = await first.visitor(shop.key)
        ack = await visitor.request({"t": "send", "cid": "m1", "body": "hello?"})
        conv_id = ack["conv"]
        await gone.expect(
            "conv", lambda f: f["conv"]["id"] == conv_id and f["conv"]["state"] == "active"
        )
    finally:
        await first.close()
    assert await forget_routing(redis.url) > 0

    second = await Node(tmp_path / "b", redis_url=redis.url).start()
    try:
        stored = await second.store.get_conversation(conv_id)
        assert stored is not None and stored.state.value == "active"  # the record kept it
        other = await second.agent(other_email)
        # The agent holding it never comes back: after the grace (1 s in test
        # nodes) the chat is requeued and routed to the one who is here.
        got = await other.expect(
            "conv",
            lambda f: (
                f["conv"]["id"] == conv_id
                and f["conv"]["state"] == "active"
                and [a["id"] for a in f["conv"]["agents"]] == [shop.agents[other_email]]
            ),
            timeout=6.0,
        )
        assert got["conv"]["state"] == "active"
    finally:
        await second.close()
