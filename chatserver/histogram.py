"""Prometheus histograms that the hot paths can afford.

``Histogram.observe`` is a ``bisect`` into fixed bucket bounds, one list
increment and one float addition: no lock (the event loop is the only
writer), no allocation.  The counts are kept per bucket and made cumulative
when a scrape renders them (``Exposition.histogram`` in ``metrics.py``).

``prometheus_client``'s ``Histogram.observe`` does the same work under a
``threading.Lock`` with a linear scan of the bounds; measured on the same
machine it costs about seven times as much per observation (1.7 µs against 0.25 µs)
(docs/operations.md, "Metrics"), so chatserver writes its own.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

# Seconds: 0.5 ms to 10 s, for what a client waits on (ack, commit, publish).
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
# Seconds: 10 ms to 60 s, for deliveries to other servers (webhooks, SMTP).
DELIVERY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Histogram:
    """Counts of observations per bucket (``value <= bound``), their sum and count.

    ``counts[i]`` counts the observations that fall in bucket ``i`` alone
    (above ``bounds[i - 1]``, at most ``bounds[i]``); the last slot is the
    ``+Inf`` bucket.
    """

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS) -> None:
        if list(bounds) != sorted(set(bounds)) or not bounds:
            raise ValueError("bucket bounds must be distinct and increasing")
        self.bounds = tuple(float(b) for b in bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, observations at most that)`` per bucket, ``+Inf`` last."""
        out: list[tuple[float, int]] = []
        total = 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += n
            out.append((bound, total))
        return out
