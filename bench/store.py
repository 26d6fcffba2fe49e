"""``python -m bench.store``: CPU per message of the embedded store alone, in-process.

Appends visitor messages (the same ``Store.append(open_only=True)`` call a
visitor's ``send`` makes) to ``--conversations`` open conversations at an
open-loop ``--rate`` for ``--seconds``, with no network and no hub.  It
prints the process CPU time per append (user and system) less what the
open-loop harness costs alone (measured first, with a no-op in place of the
append), the append latency percentiles, and the CPU of SQLite's statements
run directly in a plain loop with the same batch size (what SQLite itself
costs, without the writer thread and the Python around it).  Pin it to one
core to match the suite's server (``taskset -c 0 python -m bench.store``).

This says how much of chatserver's CPU per relayed message
(``docs/performance.md``) is the durable store, which the baselines do not
have.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import TypedDict

from chatserver.store_sqlite import SQLiteStore
from chatserver.types import AuthorKind, EntryKind, new_id

BODY = "v1|123|1234567890|" + "x" * 40  # the size of a bench payload


def _cpu() -> tuple[float, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


def _pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else 0.0


class AppendRun(TypedDict):
    """What ``appends`` measured: CPU per append in µs, latency in ms."""

    appends: int
    batch: int  # appends started per timer tick
    user_us: float
    sys_us: float
    p50_ms: float
    p99_ms: float
    p999_ms: float


async def _no_append(*args: object, **kwargs: object) -> None:
    """Stands in for ``Store.append`` to measure the harness alone."""


async def appends(
    path: Path, conversations: int, rate: float, seconds: float, sync: str, *, harness: bool = False
) -> AppendRun:
    """Open-loop appends; with ``harness`` the same loop with a no-op in place of the append."""
    store = SQLiteStore(path, synchronous=sync)
    await store.start()
    try:
        site = await store.create_site("bench")
        convs = []
        for _ in range(conversations):
            visitor = await store.create_visitor(site.id)
            conv, _ = await store.open_conversation(site.id, visitor.id)
            convs.append((conv.id, visitor.id))
        loop = asyncio.get_running_loop()
        latencies: list[float] = []

        append = _no_append if harness else store.append

        async def one(k: int) -> None:
            conv_id, visitor_id = convs[k % len(convs)]
            t = time.perf_counter()
            await append(
                conv_id,
                EntryKind.TEXT,
                AuthorKind.VISITOR,
                visitor_id,
                "",
                BODY,
                cid=f"c{k}",
                open_only=True,
            )
            latencies.append((time.perf_counter() - t) * 1000)

        per_tick = max(1, round(rate / 200))  # a 5 ms timer: as many loop turns as a server's
        tasks = []
        user0, sys0 = _cpu()
        t0 = loop.time()
        k = 0
        while loop.time() - t0 < seconds:
            for _ in range(per_tick):
                tasks.append(asyncio.ensure_future(one(k)))
                k += 1
            await asyncio.sleep(per_tick / rate)
        await asyncio.gather(*tasks)
        user1, sys1 = _cpu()
    finally:
        await store.close()
    latencies.sort()
    return {
        "appends": k,
        "batch": per_tick,
        "user_us": (user1 - user0) / k * 1e6,
        "sys_us": (sys1 - sys0) / k * 1e6,
        "p50_ms": _pct(latencies, 0.5),
        "p99_ms": _pct(latencies, 0.99),
        "p999_ms": _pct(latencies, 0.999),
    }


def plain(path: Path, conversations: int, batch: int, n: int, sync: str) -> dict[str, float]:
    """The append's statements in a plain loop, one commit per ``batch``."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={sync}")
    db.executescript(
        "CREATE TABLE conversations (id TEXT PRIMARY KEY, state TEXT, last_offset INTEGER);"
        "CREATE TABLE entries (conv_id TEXT NOT NULL, offset INTEGER NOT NULL, kind TEXT,"
        " author_kind TEXT, author_id TEXT, author_name TEXT, body TEXT, ts REAL, cid TEXT,"
        " data TEXT, PRIMARY KEY (conv_id, offset)) WITHOUT ROWID;"
        "CREATE UNIQUE INDEX entries_cid ON entries (conv_id, author_id, cid)"
        " WHERE cid IS NOT NULL;"
    )
    # Random ids like the store's: sequential ones would put each commit's
    # rows on the same few B-tree pages and understate SQLite's cost by a third.
    ids = [new_id("c") for _ in range(conversations)]
    db.executemany("INSERT INTO conversations VALUES (?, 'open', 0)", [(i,) for i in ids])
    user0, sys0 = _cpu()
    for start in range(0, n, batch):
        db.execute("BEGIN IMMEDIATE")
        for k in range(start, start + batch):
            conv = ids[k % conversations]
            db.execute("SAVEPOINT op")
            db.execute(
                "SELECT * FROM entries WHERE conv_id = ? AND author_id = ? AND cid = ?",
                (conv, "v_" + conv[2:], f"c{k}"),
            ).fetchone()
            (offset,) = db.execute(
                "UPDATE conversations SET last_offset = last_offset + 1"
                " WHERE id = ? AND state != 'closed' RETURNING last_offset",
                (conv,),
            ).fetchone()
            db.execute(
                "INSERT INTO entries VALUES (?, ?, 'text', 'visitor', ?, '', ?, ?, ?, NULL)",
                (conv, offset, "v_" + conv[2:], BODY, time.time(), f"c{k}"),
            )
            db.execute("RELEASE op")
        db.execute("COMMIT")
    user1, sys1 = _cpu()
    db.close()
    return {"user_us": (user1 - user0) / n * 1e6, "sys_us": (sys1 - sys0) / n * 1e6}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.store", description=__doc__.split("\n")[0])
    p.add_argument("--conversations", type=int, default=1000)
    p.add_argument("--rate", type=float, default=1800.0, help="appends per second")
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--sync", choices=("full", "normal"), default="full")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="chatstore-", dir=".") as tmp:
        run = (args.conversations, args.rate, args.seconds, args.sync)
        h = asyncio.run(appends(Path(tmp) / "harness.db", *run, harness=True))
        a = asyncio.run(appends(Path(tmp) / "store.db", *run))
        b = plain(Path(tmp) / "plain.db", args.conversations, a["batch"], a["appends"], args.sync)
    total = a["user_us"] + a["sys_us"]
    base = h["user_us"] + h["sys_us"]
    print(
        f"Store.append, {a['appends']} at {args.rate:.0f}/s over {args.conversations} "
        f"conversations (synchronous={args.sync}): CPU {total - base:.0f} µs per append "
        f"({total:.0f} with the open-loop harness, which alone costs {base:.0f}: tasks and "
        f"timers); latency p50 {a['p50_ms']:.2f} p99 {a['p99_ms']:.2f} "
        f"p99.9 {a['p999_ms']:.2f} ms"
    )
    print(
        f"the same statements in a plain loop, {a['batch']} per commit: CPU "
        f"{b['user_us'] + b['sys_us']:.0f} µs per message (user {b['user_us']:.0f}, "
        f"system {b['sys_us']:.0f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
