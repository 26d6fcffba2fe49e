"""The timer heap (``chatserver/proactive/scheduler.py``), on explicit instants (no clock)."""

from __future__ import annotations

import random

from chatserver.proactive.scheduler import TimerHeap


def test_keys_come_due_in_order() -> None:
    heap: TimerHeap[str] = TimerHeap()
    heap.set("b", 20.0)
    heap.set("a", 10.0)
    heap.set("c", 30.0)
    assert heap.next() == 10.0 and len(heap) == 3
    assert heap.pop_due(9.9) == []
    assert heap.pop_due(20.0) == ["a", "b"]
    assert heap.next() == 30.0 and "c" in heap and "a" not in heap
    assert heap.pop_due(100.0) == ["c"]
    assert heap.next() is None and len(heap) == 0


def test_one_instant_per_key() -> None:
    heap: TimerHeap[str] = TimerHeap()
    heap.set("v", 10.0)
    heap.set("v", 5.0)  # earlier
    heap.set("w", 7.0)
    heap.set("w", 50.0)  # later
    assert heap.when("v") == 5.0 and heap.when("w") == 50.0
    assert heap.pop_due(10.0) == ["v"]  # the replaced 10.0 does not fire again
    assert heap.pop_due(49.0) == []
    heap.set("w", None)  # cancel
    assert heap.next() is None and heap.pop_due(1e9) == []


def test_stale_entries_are_bounded() -> None:
    heap: TimerHeap[int] = TimerHeap()
    rng = random.Random(7)
    for _ in range(20_000):
        heap.set(rng.randrange(100), rng.uniform(0, 1000))
    assert len(heap) == 100
    assert len(heap._heap) <= 2 * 100 + 64 + 1
    due = heap.pop_due(1000.0)
    assert sorted(due) == list(range(100))


def test_matches_a_naive_model() -> None:
    heap: TimerHeap[int] = TimerHeap()
    model: dict[int, float] = {}
    rng = random.Random(11)
    now = 0.0
    for _ in range(5000):
        action = rng.random()
        key = rng.randrange(50)
        if action < 0.5:
            when = now + rng.uniform(0, 20)
            heap.set(key, when)
            model[key] = when
        elif action < 0.6:
            heap.cancel(key)
            model.pop(key, None)
        else:
            now += rng.uniform(0, 3)
            expected = sorted((w, k) for k, w in model.items() if w <= now)
            got = heap.pop_due(now)
            assert sorted(got) == sorted(k for _, k in expected)
            for k in got:
                del model[k]
        assert heap.next() == (min(model.values()) if model else None)
