"""The Store contract: agent sessions and the login throttle (``LoginStore``).

Every test runs on each backend of ``conftest.FACTORIES``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable

import pytest

from chatserver.errors import StoreError
from chatserver.store import Store
from chatserver.types import (
    Role,
)

pytestmark = pytest.mark.anyio


async def test_session_generation_grows_atomically(store: Store) -> None:
    site = await store.create_site("Shop")
    agent = await store.create_agent(site.id, "g@example.com", "G", "h", Role.AGENT, 3, [])
    assert await store.session_generation(agent.id) == 0
    assert await store.session_generation("a_unknown") == 0
    assert await store.end_sessions(agent.id) == 1
    got = await asyncio.gather(*(store.end_sessions(agent.id) for _ in range(20)))
    assert sorted(got) == list(range(2, 22))
    assert await store.session_generation(agent.id) == 21
    # saving the agent (disable, enable, new password) never resets it; disabling raises it
    await store.save_agent(dataclasses.replace(agent, disabled=True))
    await store.save_agent(dataclasses.replace(agent, disabled=False, password_hash="h2"))
    assert await store.session_generation(agent.id) == 22
    assert await store.session_generation("a_other") == 0


async def test_saving_an_agent_without_chat_rights_ends_its_sessions(store: Store) -> None:
    site = await store.create_site("Shop")
    agent = await store.create_agent(site.id, "r@example.com", "R", "h", Role.ADMIN, 3, [])
    other = await store.create_agent(site.id, "o@example.com", "O", "h", Role.AGENT, 3, [])
    steps = [  # (the agent as saved, its generation after)
        (dataclasses.replace(agent, role=Role.AGENT), 0),  # still chats
        (dataclasses.replace(agent, role=Role.AGENT, capacity=9), 0),
        (dataclasses.replace(agent, role=Role.ANALYST), 1),  # rights gone
        (dataclasses.replace(agent, role=Role.ANALYST, name="Ana"), 1),  # had none already
        (dataclasses.replace(agent, role=Role.ANALYST, disabled=True), 1),
        (dataclasses.replace(agent, role=Role.AGENT, disabled=True), 1),
        (dataclasses.replace(agent, role=Role.AGENT), 1),  # rights back: nothing ends
        (dataclasses.replace(agent, role=Role.ADMIN, disabled=True), 2),  # rights gone
        (dataclasses.replace(agent, role=Role.ANALYST), 2),
    ]
    for saved, generation in steps:
        await store.save_agent(saved)
        assert await store.get_agent(agent.id) == saved
        assert await store.session_generation(agent.id) == generation, saved
    assert await store.session_generation(other.id) == 0
    # a save refused (taken email) changes nothing, the generation included
    await store.save_agent(dataclasses.replace(agent, role=Role.AGENT))
    with pytest.raises(StoreError):
        await store.save_agent(dataclasses.replace(agent, email=other.email, disabled=True))
    assert await store.session_generation(agent.id) == 2
    assert (await store.get_agent(agent.id)) == dataclasses.replace(agent, role=Role.AGENT)


async def test_revoked_session_until_its_expiry(store: Store) -> None:
    now = time.time()
    assert not await store.session_revoked("sess1")
    await store.revoke_session("sess1", now + 3600)
    assert await store.session_revoked("sess1")
    assert not await store.session_revoked("sess2")
    # revoking again with an earlier time keeps the later one
    await store.revoke_session("sess1", now + 0.5)
    await store.revoke_session("sess3", now + 1.0)
    await store.revoke_session("sess4", now - 10)  # expired already: nothing to keep
    assert not await store.session_revoked("sess4")
    assert await store.session_revoked("sess3")
    deadline = time.monotonic() + 10
    while await store.session_revoked("sess3"):
        assert time.monotonic() < deadline, "the revocation outlived its expiry"
        await asyncio.sleep(0.1)
    assert await store.session_revoked("sess1")
    # a later time extends an earlier one
    await store.revoke_session("sess5", time.time() + 0.5)
    await store.revoke_session("sess5", time.time() + 3600)
    await asyncio.sleep(0.8)
    assert await store.session_revoked("sess5")


async def test_session_revocations_survive_a_restart(make_store: Callable[[], Store]) -> None:
    store = make_store()
    await store.start()
    try:
        await store.end_sessions("a_keep")
        await store.end_sessions("a_keep")
        await store.revoke_session("sess_keep", time.time() + 3600)
    finally:
        await store.close()
    reopened = make_store()
    await reopened.start()
    try:
        assert await reopened.session_generation("a_keep") == 2
        assert await reopened.session_revoked("sess_keep")
    finally:
        await reopened.close()


async def test_throttle_reserves_while_there_is_room(store: Store) -> None:
    t0, window = time.time(), 100.0
    both = ["ip:a", "email:x"]
    assert await store.throttle_wait(both, 3, window, t0) == 0
    assert await store.throttle_wait([], 3, window, t0) == 0
    assert await store.throttle_reserve([], 3, window, t0, "s0") == 0
    assert await store.throttle_reserve(both, 3, window, t0, "s1") == 0
    assert await store.throttle_reserve(both, 3, window, t0 + 1, "s2") == 0
    assert await store.throttle_wait(both, 3, window, t0 + 2) == 0
    assert await store.throttle_reserve(both, 3, window, t0 + 2, "s3") == 0
    # Three in the window: refused until the oldest leaves it, and nothing recorded.
    assert await store.throttle_reserve(["ip:a"], 3, window, t0 + 3, "s4") == pytest.approx(97)
    assert await store.throttle_wait(["ip:a"], 3, window, t0 + 3) == pytest.approx(97)
    assert await store.throttle_wait(["ip:b", "email:x"], 3, window, t0 + 3) == pytest.approx(97)
    assert await store.throttle_wait(["ip:b"], 3, window, t0 + 3) == 0
    assert await store.throttle_wait(["ip:a"], 4, window, t0 + 3) == 0
    # One full key refuses the attempt on every key: ip:b stays empty.
    assert await store.throttle_reserve(["ip:b", "email:x"], 3, window, t0 + 4, "s5") > 0
    assert await store.throttle_wait(["ip:b"], 1, window, t0 + 4) == 0
    # Clearing forgets one key only.
    await store.throttle_clear(["email:x"])
    await store.throttle_clear([])
    assert await store.throttle_wait(["email:x"], 1, window, t0 + 4) == 0
    assert await store.throttle_wait(["ip:a"], 3, window, t0 + 4) == pytest.approx(96)
    # The oldest left the window: room for one more, the wait then runs from s2.
    assert await store.throttle_reserve(["ip:a"], 3, window, t0 + 100.5, "s6") == 0
    assert await store.throttle_wait(["ip:a"], 3, window, t0 + 100.5) == pytest.approx(0.5)
    # The longest wait of the keys is the answer.
    assert await store.throttle_reserve(["ip:c"], 1, window, t0 + 100, "s7") == 0
    assert await store.throttle_reserve(["ip:c", "ip:a"], 1, window, t0 + 102, "s8") == (
        pytest.approx(98.5)
    )


async def test_throttle_release_drops_one_slot(store: Store) -> None:
    now, window = time.time(), 300.0
    for slot in ("one", "two", "three"):
        assert await store.throttle_reserve(["ip:r", "email:r"], 3, window, now, slot) == 0
    assert await store.throttle_reserve(["ip:r"], 3, window, now, "four") > 0
    await store.throttle_release(["ip:r"], "two")
    await store.throttle_release(["ip:r", "ip:none"], "no such slot")
    await store.throttle_release([], "one")
    # Room for exactly one again on ip:r; email:r still holds all three.
    assert await store.throttle_wait(["ip:r"], 3, window, now) == 0
    assert await store.throttle_wait(["email:r"], 3, window, now) == pytest.approx(window)
    assert await store.throttle_reserve(["ip:r"], 3, window, now, "five") == 0
    assert await store.throttle_reserve(["ip:r"], 3, window, now, "six") > 0
    for slot in ("one", "three", "five"):
        await store.throttle_release(["ip:r"], slot)
    assert await store.throttle_wait(["ip:r"], 1, window, now) == 0


async def test_concurrent_reservations_never_exceed_the_limit(store: Store) -> None:
    now = time.time()
    got = await asyncio.gather(
        *(store.throttle_reserve(["ip:z", "email:z"], 10, 300.0, now, f"s{i}") for i in range(60))
    )
    assert sum(1 for wait in got if wait == 0) == 10
    assert all(wait == pytest.approx(300) for wait in got if wait != 0)
    assert await store.throttle_wait(["ip:z"], 10, 300.0, now) == pytest.approx(300)
    assert await store.throttle_wait(["email:z"], 11, 300.0, now) == 0


async def test_throttle_is_shared_by_stores_on_the_same_storage(
    make_store: Callable[[], Store],
) -> None:
    one, two = make_store(), make_store()
    await one.start()
    await two.start()
    try:
        now = time.time()
        assert await one.throttle_reserve(["email:y"], 2, 300.0, now, "a") == 0
        assert await two.throttle_reserve(["email:y"], 2, 300.0, now + 1, "b") == 0
        assert await one.throttle_wait(["email:y"], 2, 300.0, now + 2) == pytest.approx(298)
        assert await two.throttle_reserve(["email:y"], 2, 300.0, now + 2, "c") > 0
        await two.throttle_release(["email:y"], "a")
        assert await one.throttle_wait(["email:y"], 2, 300.0, now + 2) == 0
        await two.throttle_clear(["email:y"])
        assert await one.throttle_wait(["email:y"], 1, 300.0, now + 2) == 0
        # Concurrent reservations through both stores (two connections; for
        # SQLite two writers on one file) still get exactly the limit.
        got = await asyncio.gather(
            *(
                (one, two)[i % 2].throttle_reserve(["ip:w"], 7, 300.0, now, f"w{i}")
                for i in range(40)
            )
        )
        assert sum(1 for wait in got if wait == 0) == 7
    finally:
        await one.close()
        await two.close()


async def test_session_states_in_one_call(store: Store) -> None:
    assert await store.session_states([], []) == ({}, set())
    await store.end_sessions("a_two")
    await store.end_sessions("a_two")
    await store.end_sessions("a_one")
    now = time.time()
    await store.revoke_session("s_gone", now + 3600)
    await store.revoke_session("s_past", now - 1)
    generations, revoked = await store.session_states(
        ["a_two", "a_one", "a_none", "a_two"], ["s_gone", "s_live", "s_past"]
    )
    assert generations == {"a_two": 2, "a_one": 1, "a_none": 0}
    assert revoked == {"s_gone"}
    assert await store.session_states(["a_one"], []) == ({"a_one": 1}, set())
    assert await store.session_states([], ["s_gone"]) == ({}, {"s_gone"})
    # Many at once (more than one SQL statement's parameters).
    many = [f"s_{i}" for i in range(1200)]
    await store.revoke_session("s_1100", now + 3600)
    generations, revoked = await store.session_states([f"a_{i}" for i in range(1200)], many)
    assert len(generations) == 1200 and set(generations.values()) == {0}
    assert revoked == {"s_1100"}
