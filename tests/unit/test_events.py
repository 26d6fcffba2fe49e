"""``chatserver.events``: conversation events reach every listener, in order, off the relay path."""

from __future__ import annotations

import asyncio
import logging

import pytest

from chatserver.events import ConversationEvent, ConversationEvents, EventKind

pytestmark = pytest.mark.anyio


def event(n: int, kind: EventKind = EventKind.OPENED) -> ConversationEvent:
    return ConversationEvent(kind, "s1", f"c{n}")


async def test_every_listener_gets_every_event_in_order() -> None:
    events = ConversationEvents()
    got: dict[str, list[str]] = {"a": [], "b": []}

    async def a(e: ConversationEvent) -> None:
        await asyncio.sleep(0)  # a listener may await
        got["a"].append(e.conv_id)

    async def b(e: ConversationEvent) -> None:
        got["b"].append(e.conv_id)

    events.listen("a", a)
    events.listen("b", b)
    events.start()
    try:
        for n in range(50):
            events.emit(event(n))
        await events.idle()
        assert got["a"] == got["b"] == [f"c{n}" for n in range(50)]
    finally:
        await events.close()


async def test_emit_never_waits_for_a_slow_listener() -> None:
    events = ConversationEvents()
    release = asyncio.Event()
    seen: list[str] = []

    async def slow(e: ConversationEvent) -> None:
        await release.wait()
        seen.append(e.conv_id)

    events.listen("slow", slow)
    events.start()
    try:
        for n in range(100):
            events.emit(event(n))  # returns at once although nothing was handled
        assert seen == []
        release.set()
        await events.idle()
        assert len(seen) == 100
    finally:
        await events.close()


async def test_a_failing_listener_is_logged_and_gets_the_next_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events = ConversationEvents()
    seen: list[str] = []
    other: list[str] = []

    async def flaky(e: ConversationEvent) -> None:
        if e.conv_id == "c1":
            raise RuntimeError("listener bug")
        seen.append(e.conv_id)

    async def steady(e: ConversationEvent) -> None:
        other.append(e.conv_id)

    events.listen("flaky", flaky)
    events.listen("steady", steady)
    events.start()
    try:
        with caplog.at_level(logging.ERROR, logger="chatserver.events"):
            for n in range(3):
                events.emit(event(n))
            await events.idle()
        assert seen == ["c0", "c2"] and other == ["c0", "c1", "c2"]
        assert events.stats()["flaky"]["failed"] == 1
        assert "listener 'flaky' failed" in caplog.text
    finally:
        await events.close()


async def test_a_listener_that_falls_behind_loses_events_not_the_chat(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events = ConversationEvents(capacity=10)
    release = asyncio.Event()
    seen: list[str] = []

    async def stuck(e: ConversationEvent) -> None:
        await release.wait()
        seen.append(e.conv_id)

    events.listen("stuck", stuck)
    events.start()
    try:
        with caplog.at_level(logging.WARNING, logger="chatserver.events"):
            for n in range(25):
                events.emit(event(n))
        # Ten wait (emit runs without yielding): the rest are dropped, counted, logged once.
        assert events.stats()["stuck"] == {"queued": 10, "dropped": 15, "failed": 0}
        assert caplog.text.count("is behind") == 1
        release.set()
        await events.idle()
        assert seen == [f"c{n}" for n in range(10)]
    finally:
        await events.close()


async def test_listeners_are_registered_before_the_start() -> None:
    events = ConversationEvents()
    events.start()
    try:
        with pytest.raises(RuntimeError):
            events.listen("late", lambda e: asyncio.sleep(0))
    finally:
        await events.close()


async def test_a_listener_gets_only_the_events_it_wants() -> None:
    events = ConversationEvents()
    seen: list[str] = []

    async def closed_only(e: ConversationEvent) -> None:
        seen.append(e.conv_id)

    events.listen("closed", closed_only, lambda e: e.kind is EventKind.CLOSED)
    events.start()
    try:
        events.emit(event(1))
        events.emit(event(2, EventKind.CLOSED))
        events.emit(event(3))
        assert events.stats()["closed"]["queued"] == 1  # the others woke nothing
        await events.idle()
        assert seen == ["c2"]
    finally:
        await events.close()


async def test_an_inline_listener_is_called_by_emit_itself_and_its_failures_are_counted() -> None:
    events = ConversationEvents()
    noted: list[str] = []
    queued: list[str] = []

    def note(e: ConversationEvent) -> None:
        if e.conv_id == "c3":
            raise ValueError("a bad event")
        noted.append(e.conv_id)

    async def later(e: ConversationEvent) -> None:
        queued.append(e.conv_id)

    events.listen_inline("note", note, lambda e: e.kind is EventKind.OPENED)
    events.listen("later", later)
    events.start()
    try:
        for n in range(6):
            events.emit(event(n, EventKind.OPENED if n % 2 else EventKind.CLOSED))
            # Noted at once, before anything else runs: no task, no queue.
            assert noted == [f"c{k}" for k in range(1, n + 1, 2) if k != 3]
        await events.idle()
        assert queued == [f"c{n}" for n in range(6)]  # the other listener got them all
        assert events.stats()["note"] == {"queued": 0, "dropped": 0, "failed": 1}
        with pytest.raises(RuntimeError):
            events.listen_inline("late", note)
    finally:
        await events.close()
