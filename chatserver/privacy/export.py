"""Export one visitor: everything stored about a person, as one zip archive.

``find`` picks the visitors an access request names (a visitor id, the shop's
customer id from ``identify``, or an e-mail address: one person may be several
visitor records, one per browser).  ``export`` gathers, for each, from the
Store, the recordings index and the blob store of any backend:

* ``visitor.json``: the record (name, e-mail, attributes, identity), every
  page view, every custom event, the trigger firings, every conversation
  with all its entries (notes only when asked), tags, rating and comment,
  the files, the co-browse steps, and the recordings' index rows with a link
  to their replay;
* ``transcript.txt``: the conversations as people read them;
* ``attachments/<id>-<name>``: the bytes of every file posted in them.

A recording's events are not copied (a replay is the readable form of them,
and they can be tens of megabytes); the archive lists each one with its
replay link (docs/privacy.md, "Answering an access request").
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..blobs import BlobStore
from ..store import Store
from ..types import JSON, Conversation, Entry, EntryKind, SiteId, Visitor, VisitorId

if TYPE_CHECKING:
    from recordings.index import RecordingIndex

    from ..node import Node

# Read limits high enough to mean "all": the store keeps at most
# ``store.MAX_PAGE_VIEWS`` page views per visitor and bounds events likewise.
ALL = 1_000_000
PAGE = 500  # entries read at a time


@dataclass(frozen=True)
class Sources:
    """Where a visitor's data lives: the record, the bytes, the recordings' index."""

    store: Store
    blobs: BlobStore
    recordings: RecordingIndex

    @classmethod
    def of(cls, node: Node) -> Sources:
        return cls(node.store, node.blobs, node.recordings.index)


@dataclass
class Request:
    """Who an access or erasure request names (at least one of the three)."""

    visitor_id: str = ""
    user_id: str = ""
    email: str = ""

    def __bool__(self) -> bool:
        return bool(self.visitor_id or self.user_id or self.email)


@dataclass
class Gathered:
    """What ``gather`` found for one visitor."""

    visitor: Visitor
    data: JSON = field(default_factory=dict)
    transcript: str = ""
    files: list[tuple[str, bytes]] = field(default_factory=list)  # (path in the zip, bytes)


async def find(src: Sources, site_id: SiteId, request: Request) -> list[Visitor]:
    """The site's visitors the request names, oldest first (none: an empty list)."""
    store = src.store
    found: dict[VisitorId, Visitor] = {}
    if request.visitor_id:
        v = await store.get_visitor(request.visitor_id)
        if v is not None and v.site_id == site_id:
            found[v.id] = v
    if request.user_id or request.email:
        named = await store.find_visitors(site_id, email=request.email, user_id=request.user_id)
        found.update((v.id, v) for v in named)
    return sorted(found.values(), key=lambda v: (v.created_at, v.id))


async def _entries(store: Store, conv: Conversation, notes: bool) -> list[Entry]:
    out: list[Entry] = []
    after = 0
    while True:
        page = await store.entries(conv.id, after=after, limit=PAGE, include_notes=notes)
        out.extend(page)
        if len(page) < PAGE:
            return out
        after = page[-1].offset


def _stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _file_name(attachment_id: str, name: str) -> str:
    safe = _UNSAFE.sub("_", name).strip("._")[:80] or "file"
    return f"attachments/{attachment_id}-{safe}"


def _line(e: Entry, visitor_name: str) -> str:
    who = visitor_name if e.author_kind.value == "visitor" else e.author_name or e.author_kind.value
    data = e.data or {}
    if e.kind is EntryKind.EVENT:
        what = data.get("event", "event")
        return f"[{_stamp(e.ts)}] ({what}{': ' + str(data['rating']) if 'rating' in data else ''})"
    body = e.body
    attachment = data.get("attachment")
    if isinstance(attachment, dict):
        body = f"[file: {attachment.get('name', '')}]"
    note = " (internal note)" if e.kind is EntryKind.NOTE else ""
    return f"[{_stamp(e.ts)}] {who}{note}: {body}"


async def gather(src: Sources, visitor: Visitor, *, notes: bool = False) -> Gathered:
    """Everything stored about one visitor (the module docstring)."""
    store = src.store
    out = Gathered(visitor)
    pages = await store.page_views(visitor.id, limit=ALL)
    events = await store.visitor_events(visitor.id, limit=ALL)
    firings = await store.trigger_firings(visitor.id)
    convs = await store.visitor_conversations(visitor.id, limit=ALL)
    label = visitor.name or visitor.email or "Visitor"
    conversations: list[JSON] = []
    attachments: list[JSON] = []
    cobrowse: list[JSON] = []
    text: list[str] = []
    for conv in sorted(convs, key=lambda c: (c.created_at, c.id)):
        entries = await _entries(store, conv, notes)
        text.append(f"Conversation {conv.id}, started {_stamp(conv.created_at)}")
        for e in entries:
            text.append(_line(e, label))
            data = e.data or {}
            if data.get("event") == "cobrowse":
                cobrowse.append({"conversation": conv.id, "offset": e.offset, "ts": e.ts, **data})
            ref = data.get("attachment")
            if isinstance(ref, dict) and isinstance(ref.get("id"), str):
                att = await store.get_attachment(ref["id"])
                if att is None or att.site_id != visitor.site_id:
                    continue
                path = _file_name(att.id, att.name)
                try:
                    out.files.append((path, await src.blobs.read(att.blob_key)))
                except Exception:  # gone from the blob store (deleted meanwhile)
                    path = ""
                attachments.append(
                    {
                        "id": att.id,
                        "conversation": conv.id,
                        "name": att.name,
                        "type": att.content_type,
                        "size": att.size,
                        "uploaded_by": att.uploader,
                        "created_at": att.created_at,
                        "file": path,
                    }
                )
        text.append("")
        conversations.append(
            {
                **conv.summary(),
                "tags": list(conv.tags),
                "rating": conv.rating,
                "rating_comment": conv.rating_comment,
                "closed_at": conv.closed_at,
                "entries": [e.to_wire() for e in entries],
            }
        )
    recordings = await src.recordings.visitor_recordings(visitor.id)
    out.data = {
        "exported_at": _stamp(datetime.now(UTC).timestamp()),
        "visitor": {
            **visitor.to_wire(),
            "site": visitor.site_id,
            "created_at": visitor.created_at,
            "last_agent": visitor.last_agent_id,
        },
        "page_views": [{**p.to_wire(), "visit": p.visit} for p in pages],
        "events": [e.to_wire() for e in events],
        "trigger_firings": {
            rule: {"visit": f.visit, "at": f.at, "followed": f.followed}
            for rule, f in firings.items()
        },
        "conversations": conversations,
        "internal_notes_included": notes,
        "attachments": attachments,
        "cobrowse": cobrowse,
        "recordings": [
            {
                "id": r.id,
                "started": r.started,
                "ended": r.ended,
                "pages": r.pages,
                "clicks": r.clicks,
                "events": r.events,
                "replay": f"/console/recordings/{r.id}",
            }
            for r in recordings
        ],
    }
    out.transcript = "\n".join(text)
    return out


README = """This archive holds everything {shop} stores about the person it was made for,
as of {when}: for each of their visitor records (one per browser), visitor.json
(record, page views, events, conversations with every message, files, co-browse
steps, session recordings' index with a replay link) and transcript.txt; the
files they exchanged are under attachments/.
"""


def archive(shop: str, found: Sequence[Gathered]) -> bytes:
    """The zip of one request: a folder per visitor record when there are several."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        when = _stamp(datetime.now(UTC).timestamp())
        z.writestr("README.txt", README.format(shop=shop, when=when))
        for g in found:
            base = f"{g.visitor.id}/" if len(found) > 1 else ""
            z.writestr(base + "visitor.json", json.dumps(g.data, indent=1, ensure_ascii=False))
            z.writestr(base + "transcript.txt", g.transcript + "\n")
            for path, data in g.files:
                z.writestr(base + path, data)
    return buffer.getvalue()


async def export(src: Sources, site_id: SiteId, request: Request, *, notes: bool = False) -> bytes:
    """The archive for a request, or ``LookupError`` when it names nobody of the site."""
    visitors = await find(src, site_id, request)
    if not visitors:
        raise LookupError("no visitor of this site matches")
    site = await src.store.get_site(site_id)
    found = [await gather(src, v, notes=notes) for v in visitors]
    return archive(site.name if site else site_id, found)
