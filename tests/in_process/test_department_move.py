"""A waiting chat moved by a department rename or removal keeps whom it excludes.

An agent who leaves a chat (or transfers it away) is not given it back while it
waits: the router's queue entry excludes them.  Renaming or removing the
chat's department re-queued it with the new department and no exclusions
(``sites._move_conversations`` submitted it afresh), so the next routing gave
it straight back to the agent who had passed it on.  Now only its department
changes in the router (``Router.change_department``): its place, exclusions
and preferred agent stay.  On the embedded backend and on Redis.
"""

from __future__ import annotations

import pytest

from chatserver import sites

from ..node import Node
from .test_assignment_undo import any_node  # noqa: F401  (fixture)

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("change", ["rename", "remove"])
async def test_a_moved_waiting_chat_is_not_given_back_to_the_agent_who_left_it(
    any_node: Node,  # noqa: F811
    change: str,
) -> None:
    node = any_node
    shop = await node.seed(
        agents=2, departments=("support",), agent_departments={0: ("support",), 1: ("support",)}
    )
    (first, a1), (second, a2) = shop.agents.items()
    leaving = await node.agent(first)
    visitor = await node.visitor(shop.key, dept="support")
    ack = await visitor.request({"t": "send", "cid": "m1", "body": "anyone there?"})
    conv_id = ack["conv"]
    await leaving.expect("conv", lambda f: f["conv"]["id"] == conv_id and bool(f.get("follow")))
    left = await leaving.request({"t": "leave", "conv": conv_id})
    assert left["t"] == "ok", left
    router = node.parts.router
    assert await router.queue(shop.site.id) == [conv_id]  # not back to a1, who left it

    if change == "rename":
        assert await sites.rename_department(node.parts, shop.site, "support", "help") == 1
    else:
        await sites.remove_department(node.parts, shop.site, "support")

    conv = await node.store.get_conversation(conv_id)
    department = "help" if change == "rename" else None
    assert conv is not None and conv.department == department, conv
    # Before the fix the move's routing gave it back to a1 (active, load 1).
    assert conv.state.value == "queued" and conv.agents == (), conv
    assert await router.queue(shop.site.id) == [conv_id]
    assert await router.load(a1) == 0
    # Still routable in its new department: a colleague comes online and takes it.
    taking = await node.agent(second)
    took = await taking.expect(
        "conv", lambda f: f["conv"]["id"] == conv_id and f["conv"]["state"] == "active"
    )
    assert [a["id"] for a in took["conv"]["agents"]] == [a2]
