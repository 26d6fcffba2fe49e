"""The Store contract: erasing a visitor, and retention's reads and deletions
(``ErasureStore``), on every backend of ``conftest.FACTORIES``."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chatserver.store import ERASED, Store
from chatserver.store.outbox import JobState, NewJob
from chatserver.types import AuthorKind, ConvState, EntryKind, Site, Visitor, now

from ..reports_fixture import facts_rows
from .helpers import say

pytestmark = pytest.mark.anyio


async def person(store: Store, site: Site, tag: str) -> tuple[Visitor, list[str]]:
    """A visitor with something in every domain; their conversation ids (closed, open)."""
    v = await store.create_visitor(site.id)
    await store.update_visitor(
        v.id, name=f"Ann {tag}", email=f"{tag}@example.com", attributes={"k": tag}
    )
    await store.set_identity(v.id, f"user-{tag}", verified=True)
    await store.add_page_view(v.id, f"https://shop/{tag}", f"Title {tag}")
    await store.add_visitor_event(v.id, "viewed", {"tag": tag})
    await store.claim_firing(v.id, "t1", visit=1, frequency="visit", gap=0, now=now())
    closed, _ = await store.open_conversation(site.id, v.id)
    await say(store, closed.id, f"first {tag}", author=v.id)
    await store.rate_conversation(closed.id, "good", f"comment {tag}")
    await store.update_conversation(closed.id, state=ConvState.CLOSED)
    row = replace(facts_rows(site.id, "a1", "a2")[0], conv_id=closed.id, visitor_id=v.id)
    await store.save_facts([replace(row, comment=f"comment {tag}")])
    opened, _ = await store.open_conversation(site.id, v.id)
    await say(store, opened.id, f"second {tag}", author=v.id)
    await store.set_read(opened.id, "a1", 1)
    posted = await store.create_attachment(
        site.id, f"visitor:{v.id}", f"{tag}.pdf", "application/pdf", 10
    )
    await store.bind_attachment(posted.id, opened.id)
    data = {"attachment": posted.to_wire()}
    await store.append(
        opened.id, EntryKind.TEXT, AuthorKind.VISITOR, v.id, "Ann", f"{tag}.pdf", data=data
    )
    await store.create_attachment(
        site.id, f"visitor:{v.id}", f"{tag}-draft.pdf", "application/pdf", 5
    )
    job = NewJob(
        f"job-{tag}", site.id, "webhook", f"hook:{opened.id}", 1, {"conv": opened.id, "text": tag}
    )
    await store.enqueue([job], {})
    return v, [closed.id, opened.id]


async def test_erase_visitor_removes_everything_of_theirs_only(store: Store) -> None:
    site = await store.create_site("Shop")
    ann, convs = await person(store, site, "ann")
    bob, bob_convs = await person(store, site, "bob")
    before = await store.attachment_bytes(site.id)
    assert before == (10, 30)

    done = await store.erase_visitor(ann.id)
    assert done.visitors == 1 and sorted(done.conversations) == sorted(convs)
    assert len(done.attachments) == 2 and done.page_views == 1 and done.events == 1
    assert done.jobs == 1
    assert await store.get_visitor(ann.id) is None
    assert await store.page_views(ann.id) == [] and await store.visitor_events(ann.id) == []
    assert await store.visitor_by_identity(site.id, "user-ann") is None
    assert await store.trigger_firings(ann.id) == {}
    assert await store.visitor_conversations(ann.id) == []
    for conv_id in convs:
        assert await store.get_conversation(conv_id) is None
        assert await store.entries(conv_id, after=0) == []
    for att in done.attachments:
        assert await store.get_attachment(att.id) is None
    assert await store.attachment_bytes(site.id) == (5, 15)
    job = await store.get_job("job-ann")
    assert job is not None and job.payload == {} and job.state is JobState.FAILED
    facts = await store.get_facts(convs[0])
    assert facts is not None and facts.visitor_id == ERASED and facts.comment == ""
    assert await store.is_erased(ann.id) and not await store.is_erased(bob.id)
    # Bob is untouched
    assert (await store.get_visitor(bob.id)) is not None
    assert len(await store.page_views(bob.id)) == 1
    assert len(await store.entries(bob_convs[1], after=0)) == 2
    bob_job = await store.get_job("job-bob")
    assert bob_job is not None and bob_job.payload["text"] == "bob"
    bob_facts = await store.get_facts(bob_convs[0])
    assert bob_facts is not None and bob_facts.comment == "comment bob"
    # a second erasure finds nothing more
    again = await store.erase_visitor(ann.id)
    assert again.visitors == 0 and again.conversations == [] and again.jobs == 0


async def test_erase_without_keeping_report_rows(store: Store) -> None:
    site = await store.create_site("Shop")
    ann, convs = await person(store, site, "ann")
    await store.erase_visitor(ann.id, keep_facts=False)
    assert await store.get_facts(convs[0]) is None
    assert await store.report_facts(site.id, 0, 9e12) == []


async def test_retention_reads_and_deletions(store: Store) -> None:
    site = await store.create_site("Shop")
    other = await store.create_site("Other")
    ann, convs = await person(store, site, "ann")
    await person(store, other, "eve")
    later = now() + 60
    # closed conversations, by the time they closed
    assert await store.expired_conversations(site.id, later) == [convs[0]]
    assert await store.expired_conversations(site.id, now() - 3600) == []
    # attachments posted before a time
    files = await store.expired_attachments(site.id, later)
    assert [f.name for f in files] == ["ann.pdf"]
    assert await store.expired_attachments(site.id, now() - 3600) == []
    gone = await store.delete_attachments([f.id for f in files])
    assert [f.id for f in gone] == [f.id for f in files]
    assert await store.get_attachment(files[0].id) is None
    assert await store.delete_attachments([f.id for f in files]) == []
    # conversations past retention go with their entries
    done = await store.erase_conversations(await store.expired_conversations(site.id, later))
    assert done.conversations == [convs[0]] and done.entries >= 1
    assert await store.get_conversation(convs[0]) is None
    assert await store.get_conversation(convs[1]) is not None
    # visitors with no conversation, not seen since
    idle = await store.create_visitor(site.id)
    await store.add_page_view(idle.id, "https://shop/old", ts=now() - 7200)
    seen = await store.create_visitor(site.id)
    await store.add_page_view(seen.id, "https://shop/new", ts=later + 100)
    assert await store.idle_visitors(site.id, later) == [idle.id]
    assert await store.idle_visitors(site.id, now() - 3 * 86400) == []
    # page views and events older than a time, of this site only
    old = await store.create_visitor(site.id)
    await store.add_page_view(old.id, "https://shop/a", ts=now() - 7200)
    await store.add_page_view(old.id, "https://shop/b", ts=now())
    await store.add_visitor_event(old.id, "e", {}, ts=now() - 7200)
    views, events = await store.prune_activity(site.id, now() - 3600)
    assert views == 2 and events == 1  # idle's view too
    assert [p.url for p in await store.page_views(old.id)] == ["https://shop/b"]
    assert await store.visitor_events(old.id) == []
    assert len(await store.page_views(ann.id)) == 1  # newer than the cut
