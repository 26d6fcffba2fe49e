"""The Store contract: agents (``AgentStore``).

Every test runs on each backend of ``conftest.FACTORIES``.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from chatserver.errors import StoreError
from chatserver.store import Store
from chatserver.types import (
    Role,
)

pytestmark = pytest.mark.anyio


async def test_create_and_get_agent(store: Store) -> None:
    site = await store.create_site("Shop")
    agent = await store.create_agent(
        site.id, "ann@example.com", "Ann", "hash1", Role.ADMIN, capacity=7, departments=["sales"]
    )
    assert agent.id
    assert (agent.site_id, agent.email, agent.name, agent.password_hash) == (
        site.id,
        "ann@example.com",
        "Ann",
        "hash1",
    )
    assert (agent.role, agent.capacity, agent.departments, agent.disabled) == (
        Role.ADMIN,
        7,
        ("sales",),
        False,
    )
    assert await store.get_agent(agent.id) == agent
    assert await store.agent_by_email("ann@example.com") == agent


async def test_agent_defaults(store: Store) -> None:
    site = await store.create_site("Shop")
    agent = await store.create_agent(site.id, "bob@example.com", "Bob", "h")
    assert (agent.role, agent.capacity, agent.departments) == (Role.AGENT, 5, ())
    assert await store.get_agent(agent.id) == agent


async def test_agent_by_email_is_case_insensitive(store: Store) -> None:
    site = await store.create_site("Shop")
    agent = await store.create_agent(site.id, "Ann.Lee@Example.com", "Ann", "h")
    for spelling in ("ann.lee@example.com", "ANN.LEE@EXAMPLE.COM", "Ann.Lee@Example.com"):
        assert await store.agent_by_email(spelling) == agent
    assert await store.agent_by_email("ann@example.com") is None


async def test_unknown_agent(store: Store) -> None:
    assert await store.get_agent("a_nope") is None
    assert await store.agent_by_email("nobody@example.com") is None


@pytest.mark.parametrize("taken", ["ann@example.com", "ANN@example.com", "Ann@Example.COM"])
async def test_duplicate_email_raises_store_error(store: Store, taken: str) -> None:
    site = await store.create_site("Shop")
    other_site = await store.create_site("Other")
    first = await store.create_agent(site.id, "ann@example.com", "Ann", "h")
    for site_id in (site.id, other_site.id):
        with pytest.raises(StoreError):
            await store.create_agent(site_id, taken, "Impostor", "h2")
    assert await store.list_agents(site.id) == [first]
    assert await store.list_agents(other_site.id) == []
    assert await store.agent_by_email(taken) == first


async def test_save_agent_overwrites_all_but_id_and_site(store: Store) -> None:
    site = await store.create_site("Shop")
    other = await store.create_site("Other")
    agent = await store.create_agent(site.id, "ann@example.com", "Ann", "h")
    changed = dataclasses.replace(
        agent,
        email="ann.new@example.com",
        name="Ann Lee",
        password_hash="h2",
        role=Role.ADMIN,
        capacity=1,
        departments=("sales", "vip"),
        disabled=True,
    )
    await store.save_agent(dataclasses.replace(changed, site_id=other.id))
    assert await store.get_agent(agent.id) == changed  # site unchanged
    assert await store.agent_by_email("ann.new@example.com") == changed
    assert await store.agent_by_email("ann@example.com") is None
    assert await store.list_agents(other.id) == []


async def test_set_password_hash_only_over_the_hash_read(store: Store) -> None:
    site = await store.create_site("Shop")
    agent = await store.create_agent(site.id, "ann@example.com", "Ann", "old", Role.ADMIN)
    assert await store.set_password_hash(agent.id, "old", "new") is True
    assert await store.get_agent(agent.id) == dataclasses.replace(agent, password_hash="new")
    # The hash changed meanwhile (a password reset): nothing is written.
    assert await store.set_password_hash(agent.id, "old", "stale") is False
    assert (await store.agent_by_email("ann@example.com")) == dataclasses.replace(
        agent, password_hash="new"
    )
    assert await store.set_password_hash("a_none", "new", "x") is False
    assert await store.get_agent("a_none") is None
    # Of concurrent upgrades from one hash read, exactly one wins.
    got = await asyncio.gather(
        *(store.set_password_hash(agent.id, "new", f"up{i}") for i in range(10))
    )
    assert got.count(True) == 1
    winner = f"up{got.index(True)}"
    assert (await store.get_agent(agent.id)) == dataclasses.replace(agent, password_hash=winner)


async def test_save_agent_frees_old_email(store: Store) -> None:
    site = await store.create_site("Shop")
    agent = await store.create_agent(site.id, "ann@example.com", "Ann", "h")
    await store.save_agent(dataclasses.replace(agent, email="ann2@example.com"))
    again = await store.create_agent(site.id, "ann@example.com", "Another Ann", "h")
    assert await store.agent_by_email("ANN@example.com") == again


async def test_save_agent_to_a_taken_email_raises_store_error(store: Store) -> None:
    site = await store.create_site("Shop")
    ann = await store.create_agent(site.id, "ann@example.com", "Ann", "h")
    bob = await store.create_agent(site.id, "bob@example.com", "Bob", "h")
    with pytest.raises(StoreError):
        await store.save_agent(dataclasses.replace(bob, email="ANN@example.com"))
    assert await store.get_agent(bob.id) == bob
    assert await store.agent_by_email("ann@example.com") == ann


async def test_list_agents_per_site(store: Store) -> None:
    site = await store.create_site("Shop")
    other = await store.create_site("Other")
    assert await store.list_agents(site.id) == []
    mine = [await store.create_agent(site.id, f"a{i}@example.com", f"A{i}", "h") for i in range(3)]
    theirs = await store.create_agent(other.id, "x@example.com", "X", "h")
    assert sorted(await store.list_agents(site.id), key=lambda a: a.id) == sorted(
        mine, key=lambda a: a.id
    )
    assert await store.list_agents(other.id) == [theirs]
