"""``python -m bench.btree``: SQLite's CPU per append by the shape of the conversation ids.

The durable store's statements of one visitor message (the cid check, the
conversation's offset and change-feed bump, the insert, a savepoint each),
on the real schema (``migrations_sqlite``), in a plain loop with
``--batch`` appends per commit, to ``--active`` open conversations picked
at random (real traffic does not come in the order the chats were made).
Before the measured appends the file gets ``--history`` closed
conversations of ``--entries`` messages each, made before the active ones,
as a server that has run for a while has them.

``--without`` leaves a part of the append out, to see what it costs
(``feed``: the change-feed bump; ``row``: the conversation row's update
altogether, the offset read from the entries instead; ``cid-index``;
``savepoint``); ``--in-order`` appends to the conversations in the order
they were made instead of at random; ``--grouped`` runs a commit's appends
as one statement per table (the cid checks in one ``SELECT``, the offsets
from a map, no savepoints).  These variants change what the
store promises: they are measurements, not options of the store.

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
from chatserver.types import new_id, sorted_id

BODY = "v1|123|1234567890|" + "x" * 40  # the size of a bench payload

_CONV = (
    "INSERT INTO conversations (id, site_id, visitor_id, epoch, state, created_at, queued_at,"
    " agents, last_offset, offline, feed_seq) VALUES (?, 's', ?, 'e', ?, ?, ?, '[]', ?, 0, ?)"
)
_ENTRY = (
    "INSERT INTO entries (conv_id, offset, kind, author_kind, author_id, author_name, body,"
    " ts, cid, data) VALUES (?, ?, 'text', 'visitor', ?, '', ?, ?, ?, NULL)"
)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _fill(db: sqlite3.Connection, sort: bool, history: int, entries: int, active: int) -> list[str]:
    """``history`` closed conversations, then ``active`` open ones; the open ones' ids."""
    t = time.time() - history - active  # one conversation a second, as made over time
    ids = []
    db.execute("BEGIN")
    for k in range(history + active):
        t += 1.0
        conv = sorted_id("c", t) if sort else new_id("c")
        closed = k < history
        n = entries if closed else 0
        db.execute(_CONV, (conv, "v" + conv, "closed" if closed else "active", t, t, n, k))
        for offset in range(1, n + 1):
            db.execute(_ENTRY, (conv, offset, "v" + conv, BODY, t, f"h{offset}"))
        if not closed:
            ids.append(conv)
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return ids


def run(path: Path, sort: bool, args: argparse.Namespace) -> float:
    """CPU µs per append on a new file at ``path``."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={args.sync}")
    db.execute("PRAGMA secure_delete=ON")  # as the store's writer (store/sqlite/engine.py)
    migrations_sqlite.migrate(db)
    without = set(args.without)
    if "cid-index" in without:
        db.execute("DROP INDEX entries_cid")
    ids = _fill(db, sort, args.history, args.entries, args.active)
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
    savepoint = "savepoint" not in without
    start = _cpu()
    if args.grouped:
        _grouped(db, order, args.batch, "feed" not in without)
    for first in range(0, 0 if args.grouped else args.appends, args.batch):
        db.execute("BEGIN IMMEDIATE")
        for k in range(first, min(first + args.batch, args.appends)):
            conv = order[k]
            if savepoint:
                db.execute("SAVEPOINT op")
            db.execute(
                "SELECT offset FROM entries WHERE conv_id = ? AND author_id = ? AND cid = ?",
                (conv, "v" + conv, f"c{k}"),
            ).fetchone()
            if "row" in without:
                db.execute("SELECT state FROM conversations WHERE id = ?", (conv,)).fetchone()
                (offset,) = db.execute(
                    "SELECT coalesce(max(offset), 0) + 1 FROM entries WHERE conv_id = ?", (conv,)
                ).fetchone()
            else:
                (offset,) = db.execute(update, (conv,)).fetchone()
            db.execute(_ENTRY, (conv, offset, "v" + conv, BODY, time.time(), f"c{k}"))
            if savepoint:
                db.execute("RELEASE op")
        db.execute("COMMIT")
    spent: float = _cpu() - start
    db.close()
    return spent / int(args.appends) * 1e6


def _grouped(db: sqlite3.Connection, order: list[str], batch: int, feed: bool) -> None:
    """The same appends a commit at a time: one statement per table per commit.

    The commit's cid checks in one ``SELECT``, the offsets from a map the
    writer keeps (read from the rows once), the conversations' rows in one
    ``executemany`` and the entries in another; no savepoints.  What "the
    append done a group at a time" could save (a measurement, not the store).
    """
    offsets: dict[str, int] = {}
    seq = db.execute("SELECT max(feed_seq) FROM conversations").fetchone()[0] or 0
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
        moved: dict[str, int] = {}
        for conv, cid in group:
            offset = offsets.get(conv)
            if offset is None:
                (offset,) = db.execute(
                    "SELECT last_offset FROM conversations WHERE id = ?", (conv,)
                ).fetchone()
            offset += 1
            moved.pop(conv, None)  # the feed's order: by each conversation's last append
            offsets[conv] = moved[conv] = offset
            rows.append((conv, offset, "v" + conv, BODY, time.time(), cid))
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
    p.add_argument("--in-order", action="store_true", help="append in the conversations' order")
    p.add_argument(
        "--grouped",
        action="store_true",
        help="a commit's appends as one statement per table (no savepoints)",
    )
    args = p.parse_args(argv)
    runs: dict[str, list[float]] = {"random": [], "sorted": []}
    with tempfile.TemporaryDirectory(prefix="chatbtree-", dir=".") as tmp:
        for r in range(args.rounds):
            for name in runs:
                path = Path(tmp) / f"{name}{r}.db"
                runs[name].append(run(path, name == "sorted", args))
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
    print(
        f"append statements, {args.appends} to {args.active} open conversations,"
        f" {args.batch} per commit, after {args.history} closed ones of {args.entries}"
        f" messages (synchronous={args.sync}"
        f"{', without ' + ', '.join(args.without) if args.without else ''}"
        f"{', in order' if args.in_order else ''}"
        f"{', grouped' if args.grouped else ''}): CPU µs per append"
    )
    for name, values in runs.items():
        shown = ", ".join(f"{v:.0f}" for v in values)
        print(f"  {name:>6} ids: median {statistics.median(values):.0f}   runs: {shown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
