"""A batch of the archive's listener lost with its process is indexed at the next start.

The listener writes the index a batch at a time (``archive.Archive``); what it
gathered when the process died is not in the index, and the events are gone.
The next node's start-up catch-up finds those texts in the record.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

import archive
from archive.query import ArchiveQuery
from chatserver.events import ConversationEvent, EventKind
from chatserver.types import AuthorKind, Entry, EntryKind

from ..node import Node

pytestmark = pytest.mark.anyio


async def test_a_lost_batch_is_indexed_when_the_next_process_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archive.Archive, "DELAY", 3600.0)  # the batch waits: then "dies"
    first = await Node(tmp_path).start()
    try:
        shop = await first.seed(agents=1)
        visitor = await first.visitor(shop.key)
        ack = await visitor.request({"t": "send", "cid": "m1", "body": "¿Hacéis envíos a Vigo?"})
        assert ack["t"] == "ack", ack
        await first.parts.convs.events.idle()
        lost = first.parts.archive
        assert lost._entries and lost._convs  # gathered, not written
        lost._entries, lost._convs = [], []  # what a kill -9 loses
    finally:
        await first.close()
    second = await Node(tmp_path).start()
    try:
        assert await second.parts.archive.caught_up() == 2  # the conversation and its text
        page = await second.parts.archive.index.search(ArchiveQuery(shop.site.id, text="envio"))
        assert [h.conv.id for h in page.hits] == [ack["conv"]]
        assert await second.parts.archive.index.catch_up(0) == 0
    finally:
        await second.close()


async def test_a_burst_of_messages_makes_one_flush_per_full_batch(tmp_path: Path) -> None:
    """The inline listener schedules one write for a full batch, however many
    messages follow it in the same loop iteration; each is indexed once."""
    node = await Node(tmp_path).start()
    try:
        shop = await node.seed(agents=1)
        visitor = await node.visitor(shop.key)
        ack = await visitor.request({"t": "send", "cid": "m0", "body": "first words"})
        assert ack["t"] == "ack", ack
        await node.parts.archive.flush()
        conv_id = ack["conv"]
        index = node.parts.archive
        last = ack["offset"]
        count = index.BATCH * 3 // 2  # one full batch and half of the next
        entries = [
            Entry(conv_id, last + n, EntryKind.TEXT, AuthorKind.VISITOR, "v", "", f"burst{n}", 0.0)
            for n in range(1, count + 1)
        ]
        for entry in entries:  # one loop iteration: no await between the notes
            index.note(ConversationEvent(EventKind.ENTRY, shop.site.id, conv_id, entry=entry))
        assert len(index._flushes) == 1
        await asyncio.gather(*index._flushes)
        assert index._entries == [] and not index._full
        page = await index.index.search(ArchiveQuery(shop.site.id, text=f"burst{count}"))
        assert [h.conv.id for h in page.hits] == [conv_id]
    finally:
        await node.close()


async def test_an_index_far_behind_skips_and_then_catches_up_from_the_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While ``BEHIND`` full batches wait for the index's writer (its thread runs
    on spare CPU only, so a busy machine can starve it), the listener gathers
    nothing more; once they are written, what it skipped is indexed from the
    record."""
    monkeypatch.setattr(archive.Archive, "BATCH", 3)
    monkeypatch.setattr(archive.Archive, "BEHIND", 2)
    node = await Node(tmp_path).start()
    try:
        shop = await node.seed(agents=1)
        visitor = await node.visitor(shop.key)
        listener = node.parts.archive
        gate = threading.Event()
        # The index's writer is busy elsewhere (as if starved) until the gate opens.
        held = asyncio.ensure_future(listener.index.engine.run(lambda db: gate.wait(30)))
        conv = None
        try:
            for n in range(12):
                ack = await visitor.request({"t": "send", "cid": f"m{n}", "body": f"palabra{n}"})
                assert ack["t"] == "ack", ack
                conv = ack["conv"]
                await node.parts.convs.events.idle()
            assert len(listener._flushes) == listener.BEHIND  # waiting, no more than that
            assert listener._skipped_since is not None
            assert len(listener._entries) + len(listener._convs) < listener.BATCH
        finally:
            gate.set()
        await held
        await listener.mended()
        assert listener._skipped_since is None
        for n in range(12):  # the batches written, then the skipped texts from the record
            page = await listener.index.search(ArchiveQuery(shop.site.id, text=f"palabra{n}"))
            assert [h.conv.id for h in page.hits] == [conv], n
    finally:
        await node.close()
