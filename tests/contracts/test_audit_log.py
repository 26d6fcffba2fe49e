"""The audit log's contract (``chatserver.audit.AuditLog``), for every backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from chatserver.audit import AuditLog, AuditQuery, open_audit
from chatserver.store import Store

from .conftest import FACTORIES

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=sorted(FACTORIES))
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Store]:
    factory = FACTORIES[request.param]
    return lambda: factory(tmp_path, request)


@pytest.fixture
async def store(make_store: Callable[[], Store]) -> AsyncIterator[Store]:
    s = make_store()
    await s.start()
    try:
        yield s
    finally:
        await s.close()


async def test_append_query_page_and_purge(store: Store) -> None:
    log: AuditLog = open_audit(store)
    site = await store.create_site("Shop")
    other = await store.create_site("Other")
    a = await log.add(site.id, "agent:a1", "Anna Puig", "login", address="10.0.0.1", at=1000.0)
    b = await log.add(site.id, "agent:a2", "Marc", "conversation.read", "c_1", at=2000.0)
    c = await log.add(
        site.id,
        "agent:a1",
        "Anna Puig",
        "admin.site",
        "/admin/site",
        detail={"f": ["name"]},
        at=3000.0,
    )
    d = await log.add(site.id, "cli", "cli", "visitor.export", "v_9", at=4000.0)
    await log.add(other.id, "agent:z", "Zed", "login", at=2500.0)
    every = AuditQuery(site.id)
    got = await log.entries(every)
    assert [e.id for e in got] == [d.id, c.id, b.id, a.id]  # newest first, this site only
    assert got[1].detail == {"f": ["name"]} and got[3].address == "10.0.0.1"
    assert got[3].actor_name == "Anna Puig" and got[3].at == 1000.0
    # keyset pages visit each once
    first = await log.entries(every, limit=3)
    rest = await log.entries(every, before=first[-1].id, limit=3)
    assert [e.id for e in first + rest] == [d.id, c.id, b.id, a.id]
    # filters
    assert [e.id for e in await log.entries(AuditQuery(site.id, actor="agent:a1"))] == [c.id, a.id]
    assert [e.id for e in await log.entries(AuditQuery(site.id, actor="puig"))] == [c.id, a.id]
    assert [e.id for e in await log.entries(AuditQuery(site.id, action="admin."))] == [c.id]
    assert [e.id for e in await log.entries(AuditQuery(site.id, action="login"))] == [a.id]
    assert [e.id for e in await log.entries(AuditQuery(site.id, target="c_1"))] == [b.id]
    span = AuditQuery(site.id, since=2000.0, until=4000.0)
    assert [e.id for e in await log.entries(span)] == [c.id, b.id]
    # retention: only this site's entries older than the time go
    assert await log.purge(site.id, 2500.0) == 2
    assert [e.id for e in await log.entries(every)] == [d.id, c.id]
    assert len(await log.entries(AuditQuery(other.id))) == 1
    assert await log.purge(site.id, 2500.0) == 0
