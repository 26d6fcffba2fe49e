"""The Store contract: the change feed, cursors and jobs (``OutboxStore``).

Every test runs on each backend of ``conftest.FACTORIES``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from chatserver.store import Store
from chatserver.store.outbox import NewJob
from chatserver.types import AuthorKind, EntryKind

from .helpers import site_and_visitor

pytestmark = pytest.mark.anyio


def _job(n: int, key: str = "k", *, cursor: str | None = None, site: str = "s_1") -> NewJob:
    return NewJob(f"j{key}{n}", site, "test", key, n, {"n": n}, cursor)


async def _say(store: Store, conv_id: str, body: str = "hi") -> int:
    entry, _ = await store.append(conv_id, EntryKind.TEXT, AuthorKind.VISITOR, "v", "V", body)
    return entry.offset


async def test_every_append_moves_its_conversation_to_the_feed_head(store: Store) -> None:
    site, visitor = await site_and_visitor(store)
    other = await store.create_visitor(site.id)
    start = await store.feed_head()
    a, _ = await store.open_conversation(site.id, visitor.id)
    b, _ = await store.open_conversation(site.id, other.id)
    await _say(store, a.id)
    await _say(store, b.id)
    await _say(store, a.id)  # a moves behind b
    changes = await store.changes(start)
    assert [(c.conv_id, c.site_id, c.last_offset) for c in changes] == [
        (b.id, site.id, 1),
        (a.id, site.id, 2),
    ]
    assert changes[0].seq < changes[1].seq == await store.feed_head()
    assert await store.changes(changes[0].seq) == changes[1:]
    assert len(await store.changes(start, limit=1)) == 1
    # a duplicate append is not a change
    await store.append(a.id, EntryKind.TEXT, AuthorKind.VISITOR, "v", "", "x", cid="c1")
    head = await store.feed_head()
    await store.append(a.id, EntryKind.TEXT, AuthorKind.VISITOR, "v", "", "x", cid="c1")
    assert await store.feed_head() == head


async def test_the_feed_survives_a_reopen(make_store: Callable[[], Store]) -> None:
    store = make_store()
    await store.start()
    site, visitor = await site_and_visitor(store)
    conv, _ = await store.open_conversation(site.id, visitor.id)
    await _say(store, conv.id)
    await store.enqueue([_job(1)], {"pos": 7})
    await store.close()
    again = make_store()
    await again.start()
    try:
        assert [c.conv_id for c in await again.changes(0)][-1] == conv.id
        assert await again.cursors(["pos", "nope"]) == {"pos": 7}
        assert (await again.get_job("jk1")) is not None
    finally:
        await again.close()


async def test_enqueue_is_idempotent_and_cursors_only_rise(store: Store) -> None:
    assert await store.enqueue([_job(1), _job(2)], {"c": 5}) == 2
    assert await store.enqueue([_job(1), _job(3)], {"c": 3}) == 1  # jk1 exists
    assert await store.cursors(["c"]) == {"c": 5}
    # a job behind its cursor is skipped, one past it is stored
    gated = [_job(4, "g", cursor="g"), _job(9, "g", cursor="g")]
    await store.enqueue([], {"g": 4})
    assert await store.enqueue(gated, {"g": 9}) == 1
    assert await store.get_job("jg4") is None
    job = await store.get_job("jg9")
    assert job is not None and job.payload == {"n": 9} and job.state.value == "pending"
    assert job.attempts == 0 and job.kind == "test" and job.site_id == "s_1"


async def test_claim_takes_the_head_of_each_key_once(store: Store) -> None:
    await store.enqueue([_job(2, "a"), _job(1, "a"), _job(5, "b"), _job(3, "a")], {})
    claimed = await store.claim(now=9e9, lease=30.0, limit=10)
    assert sorted(j.id for j in claimed) == ["ja1", "jb5"]
    assert all(j.due_at == 9e9 + 30.0 for j in claimed)
    assert await store.claim(now=9e9, lease=30.0, limit=10) == []  # leased
    await store.complete("ja1", now=1.0)
    assert [j.id for j in await store.claim(now=9e9, lease=30.0, limit=10)] == ["ja2"]
    # the lease ran out: the job is claimed again (its process died)
    again = await store.claim(now=9e9 + 31.0, lease=30.0, limit=10)
    assert sorted(j.id for j in again) == ["ja2", "jb5"]


async def test_retry_keeps_order_and_fail_releases_the_key(store: Store) -> None:
    await store.enqueue([_job(1, "a"), _job(2, "a")], {})
    t = 9e9  # every enqueued job is due by then
    (first,) = await store.claim(now=t, lease=30.0, limit=10)
    retried = await store.retry(first.id, now=t + 1, due_at=t + 100, error="HTTP 500")
    assert retried is not None and retried.attempts == 1 and retried.last_error == "HTTP 500"
    assert await store.claim(now=t + 50, lease=30.0, limit=10) == []  # ja2 waits behind ja1
    (again,) = await store.claim(now=t + 100, lease=30.0, limit=10)
    assert again.id == "ja1"
    failed = await store.fail("ja1", now=t + 101, error="gave up")
    assert failed is not None and failed.state.value == "failed" and failed.attempts == 2
    (nxt,) = await store.claim(now=t + 101, lease=30.0, limit=10)
    assert nxt.id == "ja2"
    done = await store.complete("ja2", now=t + 102)
    assert done is not None and done.state.value == "done"
    assert await store.complete("nope", now=1.0) is None


async def test_resend_runs_a_finished_job_again(store: Store) -> None:
    await store.enqueue([_job(1, "a")], {})
    await store.claim(now=9e9, lease=30.0, limit=10)
    await store.fail("ja1", now=9e9, error="x")
    sent = await store.resend("ja1", now=9e9 + 1)
    assert sent is not None and sent.state.value == "pending" and sent.attempts == 0
    (job,) = await store.claim(now=9e9 + 1, lease=30.0, limit=10)
    assert job.id == "ja1"
    assert await store.resend("nope", now=1.0) is None


async def test_jobs_lists_a_sites_jobs_by_key_prefix_newest_first(store: Store) -> None:
    await store.enqueue([_job(1, "w:e1:c1"), _job(2, "w:e1:c1")], {})
    await store.enqueue([_job(1, "w:e2:c1"), _job(1, "x", site="s_2")], {})
    assert [j.id for j in await store.jobs("s_1", "w:e1:")] == ["jw:e1:c12", "jw:e1:c11"]
    assert len(await store.jobs("s_1")) == 3
    assert len(await store.jobs("s_1", limit=1)) == 1
    assert [j.id for j in await store.jobs("s_2")] == ["jx1"]


async def test_prune_deletes_old_finished_jobs(store: Store) -> None:
    await store.enqueue([_job(1, "a"), _job(1, "b"), _job(1, "c")], {})
    await store.complete("ja1", now=10.0)
    await store.fail("jb1", now=20.0, error="x")
    assert await store.prune(before=15.0) == 1
    assert await store.get_job("ja1") is None
    assert await store.get_job("jb1") is not None
    assert await store.prune(before=1e12) == 1
    assert await store.get_job("jc1") is not None  # pending jobs stay


async def test_concurrent_claims_take_each_job_once(store: Store) -> None:
    await store.enqueue([_job(1, f"k{i}") for i in range(30)], {})
    batches = await asyncio.gather(*(store.claim(now=9e9, lease=30.0, limit=4) for _ in range(12)))
    ids = [j.id for batch in batches for j in batch]
    assert len(ids) == len(set(ids)) == 30
