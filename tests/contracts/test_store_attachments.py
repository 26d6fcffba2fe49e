"""The Store contract: attachments and their byte counters (``AttachmentStore``).

Every test runs on each backend of ``conftest.FACTORIES``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

from chatserver.errors import NotFound
from chatserver.store import Store

pytestmark = pytest.mark.anyio


async def test_attachments(store: Store) -> None:
    site = await store.create_site("Shop")
    before = time.time()
    att = await store.create_attachment(site.id, "visitor:v_1", "cat.png", "image/png", 1234)
    assert att.id.startswith("f_") and att.site_id == site.id
    assert (att.uploader, att.name, att.content_type, att.size, att.conv_id) == (
        "visitor:v_1",
        "cat.png",
        "image/png",
        1234,
        None,
    )
    assert before <= att.created_at <= time.time()
    assert await store.get_attachment(att.id) == att
    assert await store.get_attachment("f_nope") is None
    other = await store.create_attachment(site.id, "agent:a_1", "x.pdf", "application/pdf", 9)
    assert other.id != att.id

    bound = await store.bind_attachment(att.id, "c_1")
    assert bound == dataclasses.replace(att, conv_id="c_1")
    # the first conversation stays
    assert await store.bind_attachment(att.id, "c_2") == bound
    assert await store.get_attachment(att.id) == bound
    with pytest.raises(NotFound):
        await store.bind_attachment("f_nope", "c_1")
    assert await store.get_attachment("f_nope") is None  # not created by the failed bind


async def test_attachment_bytes_follow_uploads_binds_and_sweeps(store: Store) -> None:
    site = await store.create_site("Shop")
    other_site = await store.create_site("Other")
    assert await store.attachment_bytes(site.id) == (0, 0)
    a = await store.create_attachment(site.id, "visitor:v_1", "a.png", "image/png", 100)
    b = await store.create_attachment(site.id, "visitor:v_1", "b.png", "image/png", 30)
    c = await store.create_attachment(other_site.id, "visitor:v_2", "c.png", "image/png", 7)
    assert await store.attachment_bytes(site.id) == (130, 130)
    assert await store.attachment_bytes(other_site.id) == (7, 7)
    await store.bind_attachment(a.id, "c_1")
    await store.bind_attachment(a.id, "c_2")  # bound already: counted once
    assert await store.attachment_bytes(site.id) == (30, 130)

    later = time.time() + 1
    listed = await store.unposted_attachments(later)
    assert [x.id for x in listed] == [b.id, c.id]
    assert await store.unposted_attachments(b.created_at) == []  # strictly before
    assert [x.id for x in await store.unposted_attachments(later, limit=1)] == [b.id]

    # a bound attachment is never deleted; an unbound one once, by one caller
    assert await store.delete_unposted_attachment(a.id) is None
    assert await store.get_attachment(a.id) is not None
    results = await asyncio.gather(*(store.delete_unposted_attachment(b.id) for _ in range(5)))
    assert [r for r in results if r is not None] == [b]
    assert await store.get_attachment(b.id) is None
    assert await store.delete_unposted_attachment("f_nope") is None
    assert await store.attachment_bytes(site.id) == (0, 100)
    assert [x.id for x in await store.unposted_attachments(later)] == [c.id]


async def test_concurrent_binds_keep_one_conversation(store: Store) -> None:
    site = await store.create_site("Shop")
    att = await store.create_attachment(site.id, "visitor:v_1", "a.gif", "image/gif", 1)
    results = await asyncio.gather(*(store.bind_attachment(att.id, f"c_{i}") for i in range(8)))
    assert len({r.conv_id for r in results}) == 1
