"""``bench.btree --grouped`` does the same appends as the store, a commit at a time:
every conversation's entries numbered 1..n with no gap, its ``last_offset`` at n,
and the change feed in the order of each conversation's last append."""

from __future__ import annotations

import random
import sqlite3
from collections import Counter
from pathlib import Path

from bench.btree import _fill, _grouped
from chatserver import migrations_sqlite


def test_grouped_appends_number_every_conversation_without_gaps(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "b.db", isolation_level=None)
    migrations_sqlite.migrate(db)
    ids = _fill(db, True, history=5, entries=3, active=20)
    pick = random.Random(7)
    order = [ids[pick.randrange(len(ids))] for _ in range(300)]
    before = db.execute("SELECT max(feed_seq) FROM conversations").fetchone()[0]
    _grouped(db, order, 9, True)
    want = Counter(order)
    for conv in ids:
        rows = db.execute("SELECT offset FROM entries WHERE conv_id = ?", (conv,))
        assert [o for (o,) in rows] == list(range(1, want[conv] + 1))
        row = db.execute("SELECT last_offset FROM conversations WHERE id = ?", (conv,))
        assert row.fetchone()[0] == want[conv]
    # the feed: by each conversation's last append, every place taken once
    feed = [c for (c,) in db.execute("SELECT id FROM conversations ORDER BY feed_seq")]
    last = {conv: k for k, conv in enumerate(order)}
    assert feed[-len(last) :] == sorted(last, key=last.__getitem__)
    (top,) = db.execute("SELECT max(feed_seq) FROM conversations").fetchone()
    assert top > before
    db.close()
