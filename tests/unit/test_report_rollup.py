"""``reports/rollup.py`` and ``rollup_tables.py`` against ``metrics.py`` on random data.

The concurrency sweep over sorted starts and ends must give ``metrics.concurrency``'s
(peak, mean, busy) to the bit, ties and empty spans included; a part must come
back from its bytes whole, and taking a row out must undo putting it in.
"""

from __future__ import annotations

import random
from array import array

import pytest

from chatserver.reports import metrics, rollup_tables
from chatserver.reports.facts import to_row
from chatserver.reports.rollup import Part, RollupMismatch, apply, key_of

from ..reports_fixture import facts_rows


@pytest.mark.parametrize("seed", range(20))
def test_concurrency_is_metrics_concurrency(seed: int) -> None:
    rng = random.Random(seed)
    spans: list[tuple[float, float]] = []
    for _ in range(rng.randint(0, 60)):
        start = float(rng.randint(0, 50)) + rng.choice((0.0, 0.5, 0.123))
        spans.append((start, start + rng.choice((0.0, -1.0, 1.0, 2.5, rng.random() * 20))))
    flat = array("d", [x for span in spans for x in span])
    assert rollup_tables.concurrency(flat) == metrics.concurrency(spans)


def test_parts_round_trip_and_undo() -> None:
    rows = [to_row(f) for f in facts_rows("s1", "a1", "a2")]
    whole = Part()
    for r in rows:
        whole.add(r)
    assert Part.decode(whole.encode()).encode() == whole.encode()
    assert rollup_tables.overview(whole) == metrics.overview(rows)
    assert rollup_tables.median(array("d", [3.0, 1.0, 2.0, 10.0])) == metrics.median([3, 1, 2, 10])
    # every row out again, in another order: an empty part
    for r in reversed(rows):
        whole.add(r, -1)
    assert whole.encode() == Part().encode()
    # a row the part does not hold cannot be taken out; ``apply`` reports its cell
    with pytest.raises(RollupMismatch):
        Part().add(rows[0], -1)
    cells = {key_of(rows[0]): Part()}
    assert apply(cells, [rows[0]], []) == {key_of(rows[0])}
