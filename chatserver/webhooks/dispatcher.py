"""From the change feed to webhook jobs: the durable half of webhooks.

``Dispatcher.round`` reads the conversations that changed since its position
in the feed (``store.changes``), and for each one of a site with endpoints
reads the entries each endpoint has not taken (its cursor
``wh:<endpoint>:<conv>``), turns those it wants into jobs (one per entry,
key ``wh:<endpoint>:<conv>``, seq the offset, id ``<endpoint>.<conv>.<offset>``:
the delivery id) and stores the jobs, the endpoints' cursors and its own
position in one atomic ``enqueue``.  A kill -9 at any point leaves either
all of a round or none of it: the next round (here or in another process)
redoes what is missing, and ``enqueue`` skips what is there.

On PostgreSQL the position is re-read ``FEED_MARGIN`` behind (feed order is
not commit order there); the cursors make that cheap and harmless.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence

from ..store import Store
from ..store.outbox import Change, NewJob
from ..types import Conversation, Entry, SiteId
from . import events
from .endpoints import Endpoint, cursor_name

FEED_CURSOR = "webhooks:feed"  # the dispatcher's position in the change feed
JOB_KIND = "webhook"
BATCH = 500  # changes read per round (more than FEED_MARGIN)
PAGE = 200  # entries of one conversation read per round


def delivery_id(endpoint_id: str, conv_id: str, offset: int) -> str:
    return f"{endpoint_id}.{conv_id}.{offset}"


class Dispatcher:
    """Feed position and the work of one round (see the module docstring)."""

    SEEN = 10_000  # conversations whose last dispatched offset is remembered

    def __init__(self, store: Store, margin: int = 0) -> None:
        self.store = store
        self.margin = margin
        self.position: int | None = None
        self._seen: OrderedDict[str, int] = OrderedDict()  # conv -> last offset done

    async def load(self, endpoints: Sequence[Endpoint]) -> None:
        """The stored position, or the earliest endpoint's start on a first run."""
        stored = (await self.store.cursors([FEED_CURSOR])).get(FEED_CURSOR)
        if stored is None:
            stored = min((e.from_seq for e in endpoints), default=await self.store.feed_head())
        self.position = stored

    def rewind(self, seq: int) -> None:
        """Look again from ``seq`` (an endpoint appeared or was switched on)."""
        if self.position is not None and seq < self.position:
            self.position = seq
            self._seen.clear()

    async def round(self, by_site: Mapping[SiteId, Sequence[Endpoint]]) -> tuple[int, bool]:
        """One round: ``(jobs added, reached the feed's head)``."""
        if not by_site:  # nothing to deliver: keep up with the feed, in memory only
            self.position = await self.store.feed_head()
            return 0, True
        if self.position is None:
            await self.load([e for eps in by_site.values() for e in eps])
        assert self.position is not None
        changes = await self.store.changes(max(0, self.position - self.margin), BATCH)
        jobs: list[NewJob] = []
        cursors: dict[str, int] = {}
        top = self.position
        done: dict[str, int] = {}
        whole = True
        for change in changes:
            endpoints = by_site.get(change.site_id)
            if endpoints and self._seen.get(change.conv_id) != change.last_offset:
                complete = await self._conversation(change, endpoints, jobs, cursors)
                if not complete:
                    whole = False
                    break  # the rest of it next round, from here
                done[change.conv_id] = change.last_offset
            top = max(top, change.seq)
        cursors[FEED_CURSOR] = top
        added = await self.store.enqueue(jobs, cursors) if jobs or top != self.position else 0
        self.position = top
        for conv_id, offset in done.items():
            self._seen[conv_id] = offset
            self._seen.move_to_end(conv_id)
        while len(self._seen) > self.SEEN:
            self._seen.popitem(last=False)
        return added, whole and len(changes) < BATCH

    async def _conversation(
        self,
        change: Change,
        endpoints: Sequence[Endpoint],
        jobs: list[NewJob],
        cursors: dict[str, int],
    ) -> bool:
        names = {e.id: cursor_name(e.id, change.conv_id) for e in endpoints}
        stored = await self.store.cursors(list(names.values()))
        behind = [e for e in endpoints if stored.get(names[e.id], 0) < change.last_offset]
        if not behind:
            return True
        conv = await self.store.get_conversation(change.conv_id)
        if conv is None:
            return True
        low = min(stored.get(names[e.id], 0) for e in behind)
        entries = await self.store.entries(conv.id, after=low, limit=PAGE)
        for endpoint in behind:
            name = names[endpoint.id]
            jobs.extend(_jobs(endpoint, conv, entries, stored.get(name), name))
            if entries:
                cursors[name] = max(cursors.get(name, 0), entries[-1].offset)
        return not entries or entries[-1].offset >= change.last_offset or len(entries) < PAGE


def _jobs(
    endpoint: Endpoint, conv: Conversation, entries: Sequence[Entry], cursor: int | None, name: str
) -> list[NewJob]:
    out: list[NewJob] = []

    def job(kind: str, entry: Entry | None) -> None:
        offset = entry.offset if entry is not None else 0
        delivery = delivery_id(endpoint.id, conv.id, offset)
        payload = {"endpoint": endpoint.id, "body": events.body(delivery, kind, conv, entry)}
        out.append(NewJob(delivery, conv.site_id, JOB_KIND, name, offset, payload, name))

    if (
        cursor is None
        and conv.created_at >= endpoint.created_at
        and "conversation.opened" in endpoint.events
    ):
        job("conversation.opened", None)
    for entry in entries:
        if entry.offset <= (cursor or 0) or entry.ts < endpoint.created_at:
            continue
        kind = events.event_type(entry)
        if kind is not None and kind in endpoint.events:
            job(kind, entry)
    return out
