"""``python -m bench.reports``: the reports over 100,000 conversations and 1,000,000 messages.

Fills a new SQLite store with ``--conversations`` closed conversations of
``--messages`` messages each on average (visitor and agent turns, joins,
transfers, ratings, departments, tags; spread over ``--days`` days), written
straight into its tables for speed; then times ``chatserver reports
rebuild``'s work (every facts row computed from the entries) and the report
the page and the API make (``reports.service.report``: every table, with the
previous period) over the whole span and over its last 30 days, each the
median of ``--runs`` runs: from the rollup cells (what a report without an
agent or tag filter reads) and, for the whole span, from the facts rows too.
With ``--database URL`` the same rows are copied into that PostgreSQL
database (a new schema; ``save_facts`` keeps the cells) and the report timed
there too.

Prints one line per figure and, with ``--out``, writes them as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from chatserver.proactive.hours import HOURS_DOC, BusinessHours
from chatserver.reports.service import Period, rebuild, report
from chatserver.store import Store
from chatserver.store_sqlite import SQLiteStore
from chatserver.types import new_id

TZ = "Europe/Madrid"
HOURS = BusinessHours(TZ, (((540, 1080),),) * 5 + ((), ()))
AGENTS = 20
DEPTS = ("sales", "support", "returns")
RATINGS = ("great", "great", "okay", "poor", None, None, None)


def _entries(
    rng: random.Random, conv: str, start: float, messages: int, agents: list[str]
) -> tuple[list[tuple[Any, ...]], float, tuple[str, ...], bool]:
    """The entry rows of one conversation; its close time, agents and whether served."""
    rows: list[tuple[Any, ...]] = []
    ts = start
    who: list[str] = []

    def add(kind: str, author_kind: str, author: str, data: dict[str, Any] | None) -> None:
        body = "" if kind == "event" else "a message of about this length, ¿envío?"
        rows.append(
            (
                conv,
                len(rows) + 1,
                kind,
                author_kind,
                author,
                author,
                body,
                ts,
                None,
                None if data is None else json.dumps(data),
            )
        )

    add("text", "visitor", "v", None)
    missed = rng.random() < 0.08
    if not missed:
        ts += rng.expovariate(1 / 20)
        agent = rng.choice(agents)
        who.append(agent)
        add("event", "system", "", {"event": "joined", "agent": {"id": agent, "name": agent}})
        for i in range(1, messages):
            ts += rng.expovariate(1 / 40)
            if i % 2:
                add("text", "agent", who[-1], None)
            else:
                add("text", "visitor", "v", None)
            if i == 4 and rng.random() < 0.05:
                other = rng.choice(agents)
                add("event", "system", "", {"event": "transferred", "by": {"id": who[-1]}})
                add("event", "system", "", {"event": "joined", "agent": {"id": other}})
                add("event", "system", "", {"event": "left", "agent": {"id": who[-1]}})
                who.append(other)
    ts += rng.expovariate(1 / 60)
    add("event", "system", "", {"event": "closed", "by": {"kind": "agent"}})
    return rows, ts, tuple(dict.fromkeys(who)), not missed


def fill(
    path: Path,
    site: str,
    agents: list[str],
    conversations: int,
    messages: int,
    days: int,
    end: float,
    seed: int = 7,
) -> int:
    """Write the conversations and entries; the number of messages written."""
    rng = random.Random(seed)
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")
    total = 0
    convs: list[tuple[Any, ...]] = []
    entries: list[tuple[Any, ...]] = []
    span = days * 86400.0
    for n in range(conversations):
        conv = new_id("c")
        start = end - span + span * n / conversations
        count = max(1, round(rng.gauss(messages, messages / 3)))
        rows, closed, who, _ = _entries(rng, conv, start, count, agents)
        total += sum(1 for r in rows if r[2] == "text")
        rating = rng.choice(RATINGS)
        tags = json.dumps(["shipping"] if rng.random() < 0.3 else [])
        convs.append(
            (
                conv,
                site,
                new_id("v"),
                "e",
                "closed",
                start,
                start,
                rng.choice(DEPTS),
                json.dumps(list(who[-1:])),
                0,
                closed,
                tags,
                rating,
                "muy bien" if rating and rng.random() < 0.2 else "",
                closed if rating else None,
            )
        )
        entries.extend(rows)
        if len(entries) > 200_000:
            _flush(db, convs, entries)
    _flush(db, convs, entries)
    db.close()
    return total


def _flush(db: sqlite3.Connection, convs: list[Any], entries: list[Any]) -> None:
    with db:
        db.executemany(
            "INSERT INTO conversations (id, site_id, visitor_id, epoch, state, created_at,"
            " queued_at, department, agents, offline, closed_at, tags, rating,"
            " rating_comment, rated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            convs,
        )
        db.executemany(
            "INSERT INTO entries (conv_id, offset, kind, author_kind, author_id, author_name,"
            " body, ts, cid, data) VALUES (?,?,?,?,?,?,?,?,?,?)",
            entries,
        )
    convs.clear()
    entries.clear()


async def _timed(
    store: Store, site: str, period: Period, runs: int, **kw: Any
) -> tuple[float, float]:
    """The median wall-clock and CPU seconds (this process, every thread) of a report."""
    times, cpu = [], []
    for _ in range(runs):
        r = await report(store, site, period, **kw)
        times.append(r.seconds)
        cpu.append(r.cpu_seconds)
    return round(statistics.median(times), 3), round(statistics.median(cpu), 3)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(args.dir or tempfile.mkdtemp(prefix="bench-reports-"))
    path = work / "chatserver.db"
    store = SQLiteStore(path, synchronous="normal")
    await store.start()
    site = await store.create_site("Bench shop", departments=DEPTS)
    agents = []
    for i in range(AGENTS):
        agent = await store.create_agent(site.id, f"a{i}@bench.shop", f"Agent {i}", "x")
        agents.append(agent.id)
    await store.put_doc(site.id, *HOURS_DOC, HOURS.to_json())
    await store.close()
    today = datetime.now(UTC).date()
    end = datetime(today.year, today.month, today.day, tzinfo=UTC).timestamp()
    t0 = time.perf_counter()
    messages = fill(path, site.id, agents, args.conversations, args.messages, args.days, end)
    out: dict[str, Any] = {
        "conversations": args.conversations,
        "messages": messages,
        "fill_s": round(time.perf_counter() - t0, 1),
    }
    store = SQLiteStore(path, synchronous="normal")
    await store.start()
    try:
        t0 = time.perf_counter()
        out["rebuilt"] = await rebuild(store, site.id)
        out["rebuild_s"] = round(time.perf_counter() - t0, 1)
        last = today - timedelta(days=1)
        whole = Period(last - timedelta(days=args.days), last, TZ)
        month = Period(last - timedelta(days=29), last, TZ)
        t0 = time.perf_counter()
        out["cells"] = await store.rebuild_cells(site.id)
        out["rebuild_cells_s"] = round(time.perf_counter() - t0, 2)
        out["report_all_s"], out["report_all_cpu_s"] = await _timed(
            store, site.id, whole, args.runs
        )
        out["report_all_rows_s"], out["report_all_rows_cpu_s"] = await _timed(
            store, site.id, whole, args.runs, rollups=False
        )
        out["report_month_s"], out["report_month_cpu_s"] = await _timed(
            store, site.id, month, args.runs
        )
        out["report_all_agent_s"], out["report_all_agent_cpu_s"] = await _timed(
            store, site.id, whole, args.runs, agent=agents[0]
        )
        rows = await store.report_facts(site.id, *whole.bounds())
        out["load_average"] = round(os.getloadavg()[0], 1)
        out["rows_in_report"] = len(rows)
        if args.database:
            out.update(await _postgres(args, site.id, rows, whole, month))
    finally:
        await store.close()
    return out


async def _postgres(
    args: argparse.Namespace, site: str, rows: list[Any], whole: Period, month: Period
) -> dict[str, Any]:
    from chatserver.store.postgres import PostgresStore

    pg = PostgresStore(args.database)
    await pg.start()
    try:
        t0 = time.perf_counter()
        for i in range(0, len(rows), 5000):
            await pg.save_facts(rows[i : i + 5000])
        copy_s = round(time.perf_counter() - t0, 1)
        all_s, all_cpu = await _timed(pg, site, whole, args.runs)
        rows_s, rows_cpu = await _timed(pg, site, whole, args.runs, rollups=False)
        month_s, month_cpu = await _timed(pg, site, month, args.runs)
        return {
            "postgres_save_facts_s": copy_s,
            "postgres_report_all_s": all_s,
            "postgres_report_all_cpu_s": all_cpu,
            "postgres_report_all_rows_s": rows_s,
            "postgres_report_all_rows_cpu_s": rows_cpu,
            "postgres_report_month_s": month_s,
            "postgres_report_month_cpu_s": month_cpu,
        }
    finally:
        await pg.close()


def cli() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.reports", description=__doc__)
    p.add_argument("--conversations", type=int, default=100_000)
    p.add_argument("--messages", type=int, default=11, help="messages per conversation (mean)")
    p.add_argument("--days", type=int, default=180, help="days the conversations span")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--dir", help="where to make the store (default: a new temporary directory)")
    p.add_argument("--database", help="also time the report on this PostgreSQL database URL")
    p.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = p.parse_args()
    if args.conversations < 1 or args.messages < 1 or not 1 <= args.days <= 365:
        p.error("--conversations and --messages are at least 1; --days is 1 to 365")
    out = asyncio.run(main(args))
    for key, value in out.items():
        print(f"{key:>24}  {value}")
    if args.out:
        args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    cli()
