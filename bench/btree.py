"""``python -m bench.btree``: SQLite's CPU per append by the shape of the conversation ids.

The durable store's statements of one visitor message on the real schema
(``migrations_sqlite``), in a plain loop with ``--batch`` appends per
commit (a savepoint each, as the store's writer), to ``--active`` open
conversations picked at random (real traffic does not come in the order
the chats were made).  Before the measured appends the file gets
``--history`` closed conversations of ``--entries`` messages each, made
before the active ones, as a server that has run for a while has them.

``--layout`` picks the statements: ``entries`` (the store's since schema
step 10: one read of the conversation, its last offset and the cid's entry
among the newest ``CID_WINDOW``, then the entry's insert, which takes the
change feed's next place), ``indexed`` (step 9: the same, the cid's entry
found by the ``entries_cid`` index; on a file migrated to step 9) or
``row`` (steps 6-8: the cid check, the conversation row's offset and
change-feed bump, the insert; on a file migrated to step 8).  Several may
be given; each round runs every layout, alternated.  ``--open-entries``
gives each open conversation that many messages before the measured
appends (so that step 10's scan covers its whole window).

``--without`` leaves a part of the append out, to see what it costs
(``feed``: the change feed's place; ``row``: with ``--layout row``, the
conversation row's update altogether, the offset read from the entries
instead; ``cid-index``; ``savepoint``); ``--in-order`` appends to the
conversations in the order they were made instead of at random;
``--grouped`` runs a commit's appends as one statement per table (the cid
checks in one ``SELECT``, the offsets from a map, no savepoints).  These
variants change what the store promises: they are measurements, not
options of the store.

Each round measures two files, alternated: ids from ``new_id`` (random)
and from ``sorted_id`` (a millisecond prefix, ``chatserver/types.py``).
With random ids the active chats' rows are spread over the whole of every
B-tree keyed by the conversation; with sorted ids they sit together at its
right edge.  It prints the CPU µs per append (user + system) of every run.
Pin it to one core (``taskset -c 0``); figures in ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import random
import resource
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from chatserver import migrations_sqlite
from chatserver.store.sqlite.conversations import _APPEND_READ, _APPEND_WRITE
from chatserver.store.sqlite.outbox import FEED_NEXT
from chatserver.types import new_id, sorted_id

BODY = "v1|123|1234567890|" + "x" * 40  # the size of a bench payload

LAYOUTS = ("entries", "indexed", "row")

# Step 9's read: the cid's entry found by the ``entries_cid`` index.
_APPEND_READ_INDEXED = (
    "SELECT state, site_id, agents,"
    " (SELECT coalesce(max(offset), 0) FROM entries WHERE conv_id = ?1),"
    " (SELECT offset FROM entries WHERE conv_id = ?1 AND author_id = ?2 AND cid = ?3)"
    " FROM conversations WHERE id = ?1"
)

# Step 8's conversation row (``row``) and step 9's (``entries``).
_CONV = {
    "row": "INSERT INTO conversations (id, site_id, visitor_id, epoch, state, created_at,"
    " queued_at, agents, last_offset, offline, feed_seq)"
    " VALUES (?, 's', ?, 'e', ?, ?, ?, '[]', ?, 0, ?)",
    "entries": "INSERT INTO conversations (id, site_id, visitor_id, epoch, state, created_at,"
    " queued_at, agents, offline) VALUES (?, 's', ?, 'e', ?, ?, ?, '[]', 0)",
}
_CONV["indexed"] = _CONV["entries"]
_ENTRY = (
    "INSERT INTO entries (conv_id, offset, kind, author_kind, author_id, author_name, body,"
    " ts, cid, data) VALUES (?, ?, 'text', 'visitor', ?, '', ?, ?, ?, NULL)"
)
_ENTRY_SEQ = (
    "INSERT INTO entries (conv_id, offset, kind, author_kind, author_id, author_name, body,"
    " ts, cid, data, seq) VALUES (?, ?, 'text', 'visitor', ?, '', ?, ?, ?, NULL, ?)"
)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _fill(
    db: sqlite3.Connection,
    sort: bool,
    history: int,
    entries: int,
    active: int,
    layout: str = "entries",
    open_entries: int = 0,
) -> list[str]:
    """``history`` closed conversations, then ``active`` open ones; the open ones' ids."""
    t = time.time() - history - active  # one conversation a second, as made over time
    ids = []
    seq = 0
    db.execute("BEGIN")
    for k in range(history + active):
        t += 1.0
        conv = sorted_id("c", t) if sort else new_id("c")
        closed = k < history
        n = entries if closed else open_entries
        state = "closed" if closed else "active"
        if layout == "row":
            db.execute(_CONV[layout], (conv, "v" + conv, state, t, t, n, k))
        else:
            db.execute(_CONV[layout], (conv, "v" + conv, state, t, t))
        for offset in range(1, n + 1):
            if layout == "row":
                db.execute(_ENTRY, (conv, offset, "v" + conv, BODY, t, f"h{offset}"))
            else:
                seq += 1
                db.execute(_ENTRY_SEQ, (conv, offset, "v" + conv, BODY, t, f"h{offset}", seq))
        if not closed:
            ids.append(conv)
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return ids


def run(path: Path, sort: bool, args: argparse.Namespace, layout: str = "entries") -> float:
    """CPU µs per append on a new file at ``path``."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={args.sync}")
    db.execute("PRAGMA secure_delete=ON")  # as the store's writer (store/sqlite/engine.py)
    steps = migrations_sqlite.MIGRATIONS
    migrations_sqlite.migrate(db, {"row": steps[:8], "indexed": steps[:9]}.get(layout, steps))
    without = set(args.without)
    if "cid-index" in without:
        db.execute("DROP INDEX IF EXISTS entries_cid")  # since step 10 there is none
    ids = _fill(db, sort, args.history, args.entries, args.active, layout, args.open_entries)
    read = _APPEND_READ_INDEXED if layout == "indexed" else _APPEND_READ
    pick = random.Random(1)
    order = [
        ids[k % len(ids)] if args.in_order else ids[pick.randrange(len(ids))]
        for k in range(args.appends)
    ]
    feed = "" if "feed" in without else ", feed_seq = (SELECT max(feed_seq) FROM conversations) + 1"
    update = (
        f"UPDATE conversations SET last_offset = last_offset + 1{feed}"
        " WHERE id = ? AND state != 'closed' RETURNING last_offset"
    )
    write = (
        _APPEND_WRITE if "feed" not in without else _APPEND_WRITE.replace(f"({FEED_NEXT})", "NULL")
    )
    savepoint = "savepoint" not in without
    start = _cpu()
    if args.grouped:
        _grouped(db, order, args.batch, "feed" not in without, layout)
    for first in range(0, 0 if args.grouped else args.appends, args.batch):
        db.execute("BEGIN IMMEDIATE")
        for k in range(first, min(first + args.batch, args.appends)):
            conv = order[k]
            cid = f"c{k}"
            if savepoint:
                db.execute("SAVEPOINT op")
            if layout != "row":  # the store's two statements
                _, _, _, last, _ = db.execute(read, (conv, "v" + conv, cid)).fetchone()
                db.execute(
                    write,
                    (
                        conv,
                        last + 1,
                        "text",
                        "visitor",
                        "v" + conv,
                        "",
                        BODY,
                        time.time(),
                        cid,
                        None,
                    ),
                )
            else:
                db.execute(
                    "SELECT offset FROM entries WHERE conv_id = ? AND author_id = ? AND cid = ?",
                    (conv, "v" + conv, cid),
                ).fetchone()
                if "row" in without:
                    db.execute("SELECT state FROM conversations WHERE id = ?", (conv,)).fetchone()
                    (offset,) = db.execute(
                        "SELECT coalesce(max(offset), 0) + 1 FROM entries WHERE conv_id = ?",
                        (conv,),
                    ).fetchone()
                else:
                    (offset,) = db.execute(update, (conv,)).fetchone()
                db.execute(_ENTRY, (conv, offset, "v" + conv, BODY, time.time(), cid))
            if savepoint:
                db.execute("RELEASE op")
        db.execute("COMMIT")
    spent: float = _cpu() - start
    db.close()
    return spent / int(args.appends) * 1e6


def _grouped(
    db: sqlite3.Connection, order: list[str], batch: int, feed: bool, layout: str = "entries"
) -> None:
    """The same appends a commit at a time: one statement per table per commit.

    The commit's cid checks in one ``SELECT``, the offsets from a map the
    writer keeps (read once per conversation), the entries in one
    ``executemany`` (and with ``--layout row`` the conversations' rows in
    another); no savepoints.  What "the append done a group at a time" could
    save (a measurement, not the store).
    """
    offsets: dict[str, int] = {}
    if layout == "row":
        seq = db.execute("SELECT max(feed_seq) FROM conversations").fetchone()[0] or 0
        last_offset = "SELECT last_offset FROM conversations WHERE id = ?"
    else:
        seq = db.execute("SELECT max(seq) FROM entries WHERE seq IS NOT NULL").fetchone()[0] or 0
        last_offset = "SELECT coalesce(max(offset), 0) FROM entries WHERE conv_id = ?"
    for first in range(0, len(order), batch):
        group = [(order[k], f"c{k}") for k in range(first, min(first + batch, len(order)))]
        db.execute("BEGIN IMMEDIATE")
        marks = ", ".join("(?, ?, ?)" for _ in group)
        args = [v for conv, cid in group for v in (conv, "v" + conv, cid)]
        db.execute(  # a join from the values, so that each is one seek of the cid index
            f"SELECT e.offset FROM (VALUES {marks}) AS v JOIN entries AS e"
            " ON e.conv_id = v.column1 AND e.author_id = v.column2 AND e.cid = v.column3",
            args,
        ).fetchall()
        rows: list[tuple[str, int, str, str, float, str]] = []
        placed: list[tuple[str, int, str, str, float, str, int | None]] = []
        moved: dict[str, int] = {}
        for conv, cid in group:
            offset = offsets.get(conv)
            if offset is None:
                (offset,) = db.execute(last_offset, (conv,)).fetchone()
            offset += 1
            moved.pop(conv, None)  # the feed's order: by each conversation's last append
            offsets[conv] = moved[conv] = offset
            row = (conv, offset, "v" + conv, BODY, time.time(), cid)
            if layout == "row":
                rows.append(row)
            else:
                seq += 1
                placed.append((*row, seq if feed else None))
        if layout != "row":
            db.executemany(_ENTRY_SEQ, placed)
            db.execute("COMMIT")
            continue
        if feed:
            db.executemany(
                "UPDATE conversations SET last_offset = ?, feed_seq = ? WHERE id = ?",
                [(offset, seq + i, conv) for i, (conv, offset) in enumerate(moved.items(), 1)],
            )
            seq += len(moved)
        else:
            db.executemany(
                "UPDATE conversations SET last_offset = ? WHERE id = ?",
                [(offset, conv) for conv, offset in moved.items()],
            )
        db.executemany(_ENTRY, rows)
        db.execute("COMMIT")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.btree", description=__doc__.split("\n")[0])
    p.add_argument("--history", type=int, default=20_000, help="closed conversations first")
    p.add_argument("--entries", type=int, default=10, help="messages per closed conversation")
    p.add_argument("--active", type=int, default=1000, help="open conversations appended to")
    p.add_argument(
        "--open-entries", type=int, default=0, help="messages per open conversation first"
    )
    p.add_argument("--appends", type=int, default=18_000)
    p.add_argument("--batch", type=int, default=9, help="appends per commit")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--sync", choices=("FULL", "NORMAL"), default="FULL")
    p.add_argument(
        "--without",
        action="append",
        default=[],
        choices=("feed", "row", "cid-index", "savepoint"),
        help="leave this part of the append out (a measurement; may be repeated)",
    )
    p.add_argument(
        "--layout",
        action="append",
        choices=LAYOUTS,
        help="the store's statements since step 10 (entries), of step 9 (indexed) or before"
        " (row); may be repeated",
    )
    p.add_argument("--in-order", action="store_true", help="append in the conversations' order")
    p.add_argument(
        "--grouped",
        action="store_true",
        help="a commit's appends as one statement per table (no savepoints)",
    )
    args = p.parse_args(argv)
    layouts = args.layout or ["entries"]
    runs: dict[tuple[str, str], list[float]] = {
        (layout, ids): [] for layout in layouts for ids in ("random", "sorted")
    }
    with tempfile.TemporaryDirectory(prefix="chatbtree-", dir=".") as tmp:
        for r in range(args.rounds):
            for layout, ids in runs:
                path = Path(tmp) / f"{layout}-{ids}{r}.db"
                runs[layout, ids].append(run(path, ids == "sorted", args, layout))
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
    print(
        f"append statements, {args.appends} to {args.active} open conversations,"
        f" {args.batch} per commit, after {args.history} closed ones of {args.entries}"
        f" messages{f', {args.open_entries} in each open one' if args.open_entries else ''}"
        f" (synchronous={args.sync}"
        f"{', without ' + ', '.join(args.without) if args.without else ''}"
        f"{', in order' if args.in_order else ''}"
        f"{', grouped' if args.grouped else ''}): CPU µs per append"
    )
    for (layout, ids), values in runs.items():
        shown = ", ".join(f"{v:.0f}" for v in values)
        print(
            f"  {layout:>7} layout, {ids:>6} ids: median {statistics.median(values):.0f}"
            f"   runs: {shown}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
