"""Reports from rollups give the figures the facts rows give (issue #18).

On every backend: the fixture week of ``tests/reports_fixture.py`` and copies
of its rows moved by whole days into other departments and ratings; reports
for random periods, departments and tables, through the rollup cells
(``service.report``'s default) and through the rows (``rollups=False``), must
be equal table for table: after the rows are saved, after some are saved
again changed (their cells lose the old row and gain the new), and after
``rebuild_cells``.  The SQL stores must really answer from cells.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest

from chatserver.reports import service
from chatserver.reports.facts import ConvFacts, local_place
from chatserver.reports.service import TABLES, Period
from chatserver.store import Store
from chatserver.store_redis import RedisStore
from chatserver.store_sqlite import SQLiteStore

from ..reports_fixture import TZ, facts_rows

pytestmark = pytest.mark.anyio

DAY = 86400.0
DEPTS = (None, "sales", "support", "returns")


def _moved(f: ConvFacts, rng: random.Random, n: int) -> ConvFacts:
    """A copy of ``f`` some days later, in a random department, with a random rating."""
    started = f.started + rng.randint(-9, 9) * DAY + rng.randint(0, 3600)
    day, slot = local_place(started, TZ)
    rating = rng.choice((None, "great", "okay", "poor", f.rating))
    return replace(
        f,
        conv_id=f"{f.conv_id}-{n}",
        started=started,
        local_day=day,
        local_slot=slot,
        department=rng.choice(DEPTS),
        rating=rating,
        comment=f"comment {n}" if rating and rng.random() < 0.5 else "",
    )


async def _same(
    store: Store, site_id: str, rng: random.Random, tries: int, *, cells: bool = True
) -> None:
    for _ in range(tries):
        first = date(2026, 3, 2) + timedelta(days=rng.randint(-12, 10))
        period = Period(first, first + timedelta(days=rng.randint(0, 12)), TZ)
        before = period.previous()
        read = await store.report_cells(
            site_id,
            before.bounds()[0],
            period.bounds()[1],
            before.first.isoformat(),
            period.last.isoformat(),
        )
        # the cells are what the report reads (but on Redis, or when told not to)
        assert (read is not None) == (cells and not isinstance(store, RedisStore))
        dept = rng.choice((None, None, "sales", "support", "returns", "(none)"))
        only = rng.choice((None, None, *TABLES))
        a = await service.report(store, site_id, period, department=dept, only=only)
        b = await service.report(store, site_id, period, department=dept, only=only, rollups=False)
        where = f"{period} department={dept} only={only}"
        assert a.overview == b.overview, where
        assert a.previous == b.previous, where
        assert list(a.tables) == list(b.tables), where
        for name, table in a.tables.items():
            assert table == b.tables[name], f"{name}: {where}"


async def test_rollups_give_the_rows_figures(store: Store) -> None:
    rng = random.Random(18)
    site = await store.create_site("Shop")
    await store.add_counter(site.id, "triggers", "t1.fired", 10)
    base = facts_rows(site.id, "a1", "a2")
    rows = base + [_moved(f, rng, n) for n in range(60) for f in [rng.choice(base)]]
    for i in range(0, len(rows), 7):  # several saves, as conversations close
        await store.save_facts(rows[i : i + 7])
    since, until = Period(date(2026, 2, 1), date(2026, 3, 31), TZ).bounds()
    cells = await store.report_cells(site.id, since, until, "2026-02-01", "2026-03-31")
    if isinstance(store, RedisStore):
        assert cells is None  # Redis keeps no rollups: reports read the rows
    else:
        assert cells is not None and sum(len(c[2]) > 0 for c in cells) == len(cells)
    await _same(store, site.id, rng, 40)
    # rows saved again, changed: another department, day or rating
    again = [_moved(f, rng, 0) for f in rng.sample(rows, 20)]
    again = [replace(g, conv_id=f.conv_id) for f, g in zip(rows, again, strict=False)]
    await store.save_facts(again)
    await _same(store, site.id, rng, 40)
    # recomputed from the rows
    assert await store.rebuild_cells(site.id) >= (0 if isinstance(store, RedisStore) else 1)
    await _same(store, site.id, rng, 20)


async def test_cells_survive_a_restart_and_heal_when_out_of_step(
    make_store: Callable[[], Store], tmp_path: Path
) -> None:
    rng = random.Random(7)
    store = make_store()
    await store.start()
    try:
        site = await store.create_site("Shop")
        base = facts_rows(site.id, "a1", "a2")
        rows = base + [_moved(f, rng, n) for n in range(30) for f in [rng.choice(base)]]
        await store.save_facts(rows)
    finally:
        await store.close()
    store = make_store()  # a restart: the cells were committed with the rows
    await store.start()
    try:
        await _same(store, site.id, rng, 10)
        if not isinstance(store, SQLiteStore):
            return
        # cells out of step with the rows (here: lost): the report reads the rows
        # meanwhile, and a row saved again recomputes its cell from the rows
        db = sqlite3.connect(tmp_path / "chat.db")
        db.execute("DELETE FROM report_rollups")
        db.commit()
        db.close()
        since, until = Period(date(2026, 2, 1), date(2026, 3, 31), TZ).bounds()
        assert await store.report_cells(site.id, since, until, "2026-02-01", "2026-03-31") is None
        await _same(store, site.id, rng, 5, cells=False)
        await store.save_facts([replace(rows[0], rating="poor")])
        db = sqlite3.connect(tmp_path / "chat.db")
        got = db.execute("SELECT local_day, department, n FROM report_rollups").fetchall()
        db.close()
        c1 = rows[0]  # its cell alone is back, rebuilt from all of its rows
        same = [r for r in rows if (r.local_day, r.department) == (c1.local_day, c1.department)]
        assert got == [(c1.local_day, c1.department, len(same))] and len(same) >= 2
        assert await store.rebuild_cells(site.id) > 1
        await _same(store, site.id, rng, 10)
    finally:
        await store.close()
