"""``bench.btree`` does the same appends as the store: every conversation's entries
numbered 1..n with no gap, and the change feed in the order of each conversation's
last append, one statement at a time or a commit at a time (``--grouped``), with
the store's statements since schema step 10 (``entries``), step 9's (``indexed``)
or step 8's (``row``)."""

from __future__ import annotations

import argparse
import random
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from bench.btree import _fill, _grouped, run
from chatserver import migrations_sqlite

STEPS = {
    "entries": migrations_sqlite.MIGRATIONS,
    "indexed": migrations_sqlite.MIGRATIONS[:9],
    "row": migrations_sqlite.MIGRATIONS[:8],
}


def feed_and_offsets(db: sqlite3.Connection, layout: str) -> tuple[list[str], dict[str, list[int]]]:
    """The conversations in the feed's order, and each one's entry offsets."""
    if layout == "row":
        feed = [c for (c,) in db.execute("SELECT id FROM conversations ORDER BY feed_seq")]
        for conv, last in db.execute("SELECT id, last_offset FROM conversations"):
            (top,) = db.execute(
                "SELECT coalesce(max(offset), 0) FROM entries WHERE conv_id = ?", (conv,)
            ).fetchone()
            assert last == top  # the row's offset is its last entry's
    else:
        feed = [
            c
            for (c,) in db.execute(
                "SELECT conv_id FROM entries f WHERE seq IS NOT NULL AND NOT EXISTS (SELECT 1"
                " FROM entries n WHERE n.conv_id = f.conv_id AND n.offset > f.offset) ORDER BY seq"
            )
        ]
        seqs = [s for (s,) in db.execute("SELECT seq FROM entries WHERE seq IS NOT NULL")]
        assert len(seqs) == len(set(seqs))  # every place taken once
    offsets: dict[str, list[int]] = {}
    for conv, offset in db.execute("SELECT conv_id, offset FROM entries ORDER BY conv_id, offset"):
        offsets.setdefault(conv, []).append(offset)
    return feed, offsets


@pytest.mark.parametrize("layout", ["entries", "indexed", "row"])
def test_grouped_appends_number_every_conversation_without_gaps(
    tmp_path: Path, layout: str
) -> None:
    db = sqlite3.connect(tmp_path / "b.db", isolation_level=None)
    migrations_sqlite.migrate(db, STEPS[layout])
    ids = _fill(db, True, history=5, entries=3, active=20, layout=layout)
    pick = random.Random(7)
    order = [ids[pick.randrange(len(ids))] for _ in range(300)]
    _grouped(db, order, 9, True, layout)
    want = Counter(order)
    feed, offsets = feed_and_offsets(db, layout)
    for conv in ids:
        assert offsets.get(conv, []) == list(range(1, want[conv] + 1))
    last = {conv: k for k, conv in enumerate(order)}
    assert feed[-len(last) :] == sorted(last, key=last.__getitem__)
    db.close()


@pytest.mark.parametrize(
    ("layout", "open_entries"), [("entries", 0), ("entries", 3), ("indexed", 0), ("row", 0)]
)
def test_the_measured_loop_appends_what_the_store_would(
    tmp_path: Path, layout: str, open_entries: int
) -> None:
    args = argparse.Namespace(
        sync="NORMAL", without=[], history=4, entries=2, active=10, appends=200, batch=9,
        in_order=False, grouped=False, open_entries=open_entries,
    )  # fmt: skip
    path = tmp_path / "r.db"
    assert run(path, True, args, layout) > 0
    db = sqlite3.connect(path)
    feed, offsets = feed_and_offsets(db, layout)
    active = [c for c, o in offsets.items() if o != [1, 2]]  # the 4 closed have 2 each
    assert sum(len(offsets[c]) for c in active) == 200 + 10 * open_entries
    assert all(offsets[c] == list(range(1, len(offsets[c]) + 1)) for c in offsets)
    assert set(feed[-len(active) :]) == set(active)
    db.close()
