"""One timer heap for many keys (pure code: the caller supplies the clock).

The trigger engine wakes each visitor at the next instant a time condition
could turn a rule true.  With ten thousand visitors that is ten thousand
pending instants: this heap holds them all, and the process runs **one**
timer (``loop.call_at``) for the earliest, instead of a task or a timer per
visitor.

Each key has at most one pending instant; ``set`` replaces it.  Replaced
and cancelled instants stay in the heap as stale entries until they reach
the top (lazy deletion), and the heap is rebuilt when stale entries
outnumber live ones, so its size stays within twice the number of keys plus
a constant.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class TimerHeap(Generic[K]):
    __slots__ = ("_due", "_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, K]] = []
        self._due: dict[K, tuple[float, int]] = {}
        self._seq = itertools.count()

    def __len__(self) -> int:
        """How many keys have a pending instant."""
        return len(self._due)

    def __contains__(self, key: object) -> bool:
        return key in self._due

    def when(self, key: K) -> float | None:
        """The key's pending instant, if any."""
        due = self._due.get(key)
        return due[0] if due else None

    def set(self, key: K, when: float | None) -> None:
        """Wake ``key`` at ``when`` (replacing its pending instant); ``None`` cancels."""
        if when is None:
            self.cancel(key)
            return
        current = self._due.get(key)
        if current is not None and current[0] == when:
            return
        seq = next(self._seq)
        self._due[key] = (when, seq)
        heapq.heappush(self._heap, (when, seq, key))
        if len(self._heap) > 2 * len(self._due) + 64:
            self._compact()

    def cancel(self, key: K) -> None:
        self._due.pop(key, None)
        if not self._due:
            self._heap.clear()

    def next(self) -> float | None:
        """The earliest pending instant, or ``None`` when nothing is pending."""
        heap = self._heap
        while heap:
            when, seq, key = heap[0]
            if self._due.get(key) == (when, seq):
                return when
            heapq.heappop(heap)  # stale: replaced or cancelled
        return None

    def pop_due(self, now: float) -> list[K]:
        """Remove and return the keys whose instant is at or before ``now``, earliest first."""
        heap = self._heap
        due: list[K] = []
        while heap and heap[0][0] <= now:
            when, seq, key = heapq.heappop(heap)
            if self._due.get(key) == (when, seq):
                del self._due[key]
                due.append(key)
        return due

    def _compact(self) -> None:
        self._heap = [(when, seq, key) for key, (when, seq) in self._due.items()]
        heapq.heapify(self._heap)
