"""Admin writes as single service calls (``sites.py``, ``accounts.py``), on the in-process node.

Each call saves the record and tells every process; the console's admin pages
only call them.  These tests call the services directly, with real clients
connected, and check what the clients see.
"""

from __future__ import annotations

import pytest

from chatserver import accounts, sites
from chatserver.types import ConvState

from ..node import Node

pytestmark = pytest.mark.anyio


async def test_a_department_rename_moves_its_agents_and_open_chats(node: Node) -> None:
    shop = await node.seed(agents=1, departments=("sales",), agent_departments={0: ("sales",)})
    visitor = await node.visitor(shop.key, dept="sales")
    ack = await visitor.request({"t": "send", "cid": "1", "body": "A question for sales"})
    conv = ack["conv"]
    assert (await node.store.get_conversation(conv)).department == "sales"  # type: ignore[union-attr]

    moved = await sites.rename_department(node.parts, shop.site, "sales", "ventas")

    assert moved == 1
    site = await node.store.get_site(shop.site.id)
    assert site is not None and site.departments == ("ventas",)
    (agent,) = await node.store.list_agents(shop.site.id)
    assert agent.departments == ("ventas",)
    stored = await node.store.get_conversation(conv)
    assert stored is not None and stored.department == "ventas"
    # Still routable in its new department: the agent comes online and takes it.
    client = await node.agent(agent.email)
    await client.expect(
        "conv", lambda f: f["conv"]["id"] == conv and f["conv"]["state"] == "active"
    )


async def test_removing_a_department_leaves_its_agents_serving_the_rest(node: Node) -> None:
    shop = await node.seed(
        agents=1, departments=("sales", "support"), agent_departments={0: ("sales", "support")}
    )
    assert await sites.open_in_department(node.parts, shop.site, "sales") == 0
    await sites.remove_department(node.parts, shop.site, "sales")
    site = await node.store.get_site(shop.site.id)
    assert site is not None and site.departments == ("support",)
    (agent,) = await node.store.list_agents(shop.site.id)
    assert agent.departments == ("support",)


async def test_disabling_an_agent_closes_its_socket_and_requeues_its_chat(node: Node) -> None:
    shop = await node.seed(agents=1)
    (email,) = shop.agents
    client = await node.agent(email)
    visitor = await node.visitor(shop.key)
    ack = await visitor.request({"t": "send", "cid": "1", "body": "Hello?"})
    await client.expect("conv", lambda f: f["conv"]["state"] == "active")
    agent = await node.store.agent_by_email(email)
    assert agent is not None

    disabled = await accounts.set_disabled(node.parts, agent, True)

    assert disabled.disabled
    assert (await client.closed)[0] == 4105
    stored = await node.store.get_conversation(ack["conv"])
    assert stored is not None and stored.state is ConvState.QUEUED and not stored.agents
    # Enabling again does not revive the old sign-in: a new one works.
    await accounts.set_disabled(node.parts, disabled, False)
    again = await node.agent(email)
    assert again.welcome["t"] == "welcome"


async def test_a_new_password_works_and_the_old_one_does_not(node: Node) -> None:
    shop = await node.seed(agents=1)
    agent = await node.store.agent_by_email(next(iter(shop.agents)))
    assert agent is not None
    await accounts.set_password(node.parts, agent, "a brand new passphrase")
    async with node.http() as http:
        old = await http.post(
            "/api/login", json={"email": agent.email, "password": "correct horse battery"}
        )
        new = await http.post(
            "/api/login", json={"email": agent.email, "password": "a brand new passphrase"}
        )
    assert old.status_code == 401 and new.status_code == 200
