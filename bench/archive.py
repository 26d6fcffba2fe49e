"""``python -m bench.archive``: the conversation archive at a million messages.

Seeds a store with ``--conversations`` closed conversations of
``--messages`` messages in all (written directly, in bulk: the seeding is
not what is measured), rebuilds the archive's index from the record
(``reindex``, timed: what ``chatserver archive reindex`` and the migration
cost) and the catch-up at start, then times the searches of the conversations page through the real
index code (``archive.index``), each ``--repeat`` times, and prints the
median and the worst:

* the first page with no words (every conversation, newest first);
* a rare word (about one conversation in a hundred says "envío"), typed
  without its accent; a common word (in about a third of the messages);
  two words; a word nobody wrote;
* the rare word with filters (rating and agent), and the 20th page of the
  common word (following cursors: keyset pages cost the same at any depth).

SQLite by default (a file in a temporary directory); ``--database URL``
runs it on PostgreSQL: give it an empty scratch database (it is filled,
not emptied afterwards).  Figures: docs/archive.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from archive import Archive
from archive.index import ArchiveIndex, open_archive
from archive.query import ArchiveQuery
from chatserver.store import Store
from chatserver.types import ConvState

WORDS = tuple(
    [
        "hola",
        "gracias",
        "pedido",
        "talla",
        "color",
        "precio",
        "cuando",
        "llega",
        "devolver",
        "cambio",
        "tienda",
        "hello",
        "thanks",
        "size",
        "colour",
        "price",
        "when",
        "arrive",
        "return",
        "exchange",
        "shop",
        "help",
        "shirt",
        "shoes",
        "bag",
        "blue",
        "green",
        "red",
        "small",
        "large",
        "discount",
        "code",
        "card",
        "paypal",
        "invoice",
    ]
)
COMMON = "order"  # in about a third of the messages
RARE = "envío"  # in about one conversation in a hundred


def message(rng: random.Random, i: int, rare: bool) -> str:
    words = rng.choices(WORDS, k=rng.randint(4, 14))
    if i % 3 == 0:
        words.insert(rng.randrange(len(words) + 1), COMMON)
    if rare:
        words.insert(rng.randrange(len(words) + 1), RARE)
    return " ".join(words)


def rows(conversations: int, messages: int, seed: int = 7) -> Any:
    """Site, agents, visitors, conversations and entries to write, as tuples."""
    rng = random.Random(seed)
    per = max(1, messages // conversations)
    t0 = time.time() - 86400 * 365
    for c in range(conversations):
        cid, vid = f"c_{c:09d}", f"v_{c:09d}"
        at = t0 + c * (86400 * 365 / conversations)
        rare = c % 100 == 0
        agent = f"a_{c % 7}"
        rating = ("great", "okay", "poor", None)[c % 4]
        conv = (cid, "s_bench", vid, "e", "closed", at, at, None, json.dumps([agent]), per,
                False, at + 600, "[]", rating, "", at + 700 if rating else None)  # fmt: skip
        visitor = (vid, "s_bench", at, f"Visitor {c}", f"v{c}@example.com")
        entries = [
            (cid, k + 1, "text", "visitor" if k % 2 == 0 else "agent",
             vid if k % 2 == 0 else agent, "", message(rng, c * per + k, rare and k == 1),
             at + k * 5.0)
            for k in range(per)
        ]  # fmt: skip
        yield conv, visitor, entries


_CONV_SQL = (
    "INSERT INTO conversations (id, site_id, visitor_id, epoch, state, created_at, queued_at,"
    " department, agents, last_offset, offline, closed_at, tags, rating, rating_comment, rated_at)"
)
# SQLite reads the last offset from the entries (schema step 9): no column.
_CONV_SQLITE = _CONV_SQL.replace(" last_offset,", "")


def seed_sqlite(path: Path, conversations: int, messages: int) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")
    db.execute(
        "INSERT INTO sites (id, key, name, origins, settings, departments, created_at)"
        " VALUES ('s_bench', 'bench', 'Bench', '[]', '{}', '[]', 0)"
    )
    batch_c, batch_v, batch_e = [], [], []
    for conv, visitor, entries in rows(conversations, messages):
        batch_c.append((*conv[:9], int(conv[10]), *conv[11:]))
        batch_v.append(visitor)
        batch_e.extend(entries)
        if len(batch_e) >= 50_000:
            _flush_sqlite(db, batch_c, batch_v, batch_e)
    _flush_sqlite(db, batch_c, batch_v, batch_e)
    db.commit()
    db.close()


def _flush_sqlite(db: sqlite3.Connection, c: list[Any], v: list[Any], e: list[Any]) -> None:
    db.executemany(_CONV_SQLITE + " VALUES (" + ", ".join("?" * 15) + ")", c)
    db.executemany(
        "INSERT INTO visitors (id, site_id, created_at, name, email) VALUES (?, ?, ?, ?, ?)", v
    )
    db.executemany(
        "INSERT INTO entries (conv_id, offset, kind, author_kind, author_id, author_name, body, ts)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        e,
    )
    c.clear()
    v.clear()
    e.clear()


async def seed_postgres(store: Store, conversations: int, messages: int) -> None:
    from chatserver.store.postgres import PostgresStore

    assert isinstance(store, PostgresStore)

    async def op(db: Any) -> None:
        await db.execute(
            "INSERT INTO sites (id, key, name, origins, settings, departments, created_at)"
            " VALUES ('s_bench', 'bench', 'Bench', '[]', '{}', '[]', 0)"
        )
        c: list[Any] = []
        v: list[Any] = []
        e: list[Any] = []
        for conv, visitor, entries in rows(conversations, messages):
            c.append(conv)
            v.append(visitor)
            e.extend(entries)
        cols = _CONV_SQL.split("(")[1].rstrip(")").replace(" ", "").split(",")
        await db.copy_records_to_table("conversations", records=c, columns=cols, timeout=3600)
        await db.copy_records_to_table(
            "visitors",
            records=v,
            columns=["id", "site_id", "created_at", "name", "email"],
            timeout=3600,
        )
        await db.copy_records_to_table(
            "entries",
            records=e,
            columns=["conv_id", "offset", "kind", "author_kind", "author_id", "author_name",
                     "body", "ts"],
            timeout=3600,
        )  # fmt: skip

    await store.run(op)

    async def analyze(db: Any) -> None:  # a real database has its statistics
        for table in ("conversations", "visitors", "entries"):
            await db.execute(f"ANALYZE {table}", timeout=3600)

    await store.run(analyze)


async def timed(repeat: int, call: Callable[[], Awaitable[Any]]) -> tuple[float, float, Any]:
    """Median and worst milliseconds of ``repeat`` calls, and the last result."""
    times = []
    result = None
    for _ in range(repeat):
        t = time.perf_counter()
        result = await call()
        times.append((time.perf_counter() - t) * 1000.0)
    return statistics.median(times), max(times), result


async def measure(index: ArchiveIndex, repeat: int) -> list[tuple[str, float, float, int]]:
    site = "s_bench"
    cases: list[tuple[str, ArchiveQuery]] = [
        ("first page, no words", ArchiveQuery(site)),
        ('rare word "envio"', ArchiveQuery(site, text="envio")),
        (f'common word "{COMMON}"', ArchiveQuery(site, text=COMMON)),
        ('two words "envio order"', ArchiveQuery(site, text="envio order")),
        ('nobody wrote "zzyzx"', ArchiveQuery(site, text="zzyzx")),
        (
            '"envio", rated great, agent a_0',
            ArchiveQuery(site, text="envio", rating="great", agent="a_0"),
        ),
        ("closed, rated poor", ArchiveQuery(site, states=(ConvState.CLOSED,), rating="poor")),
    ]  # fmt: skip
    out = []
    for name, q in cases:
        median, worst, page = await timed(repeat, lambda q=q: index.search(q))  # type: ignore[misc]
        out.append((name, median, worst, len(page.hits)))

    async def deep() -> Any:
        cursor = None
        page = None
        for _ in range(20):
            page = await index.search(ArchiveQuery(site, text=COMMON), cursor)
            cursor = page.cursor
        return page

    median, worst, page = await timed(max(1, repeat // 3), deep)
    out.append((f'pages 1-20 of "{COMMON}" (all 20)', median, worst, len(page.hits)))
    return out


async def run(args: argparse.Namespace) -> None:
    store: Store
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        if args.database:
            from chatserver.store.postgres import PostgresStore

            url = args.database
            store = PostgresStore(url)
            await store.start()
            await seed_postgres(store, args.conversations, args.messages)
        else:
            from chatserver.store_sqlite import SQLiteStore

            path = Path(tmp) / "chat.db"
            store = SQLiteStore(path)
            await store.start()
            await store.close()
            seed_sqlite(path, args.conversations, args.messages)
            store = SQLiteStore(path)
            await store.start()
        seeded = time.perf_counter() - t
        index = open_archive(store)
        try:
            t = time.perf_counter()
            await index.start()  # a new archive file: made from the record
            print(f"archive file made from the record in {time.perf_counter() - t:.1f} s")
            t = time.perf_counter()
            count = await index.reindex()
            rebuilt = time.perf_counter() - t
            backend = "postgres" if args.database else "sqlite"
            print(f"\n{backend}: {count} conversations, {args.messages} messages"
                  f" (seeded in {seeded:.1f} s); reindex {rebuilt:.1f} s")  # fmt: skip
            # The catch-up at start (nothing missing: its cost is the check):
            # the default window, then the whole archive as the worst case.
            for label, since in (("2 days", time.time() - Archive.CATCH_UP), ("all", 0.0)):
                t = time.perf_counter()
                added = await index.catch_up(since)
                took = time.perf_counter() - t
                print(f"catch-up over {label}: {took * 1000:.0f} ms, {added} added")
            print()
            print("| search | median ms | worst ms | hits |")
            print("|---|---:|---:|---:|")
            for name, median, worst, hits in await measure(index, args.repeat):
                print(f"| {name} | {median:.1f} | {worst:.1f} | {hits} |")
        finally:
            await index.close()
            await store.close()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.archive", description=__doc__)
    p.add_argument("--messages", type=int, default=1_000_000)
    p.add_argument("--conversations", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=9)
    p.add_argument("--database", help="a PostgreSQL URL (default: SQLite in a temp dir)")
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
