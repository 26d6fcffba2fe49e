"""Small steps the Store contract tests share."""

from __future__ import annotations

from typing import Any

from chatserver.store import Store
from chatserver.types import (
    AuthorKind,
    Conversation,
    Entry,
    EntryKind,
    Site,
    Visitor,
)


async def site_and_visitor(store: Store) -> tuple[Site, Visitor]:
    site = await store.create_site("Shop")
    return site, await store.create_visitor(site.id)


async def new_conv(store: Store, **kwargs: Any) -> Conversation:
    site, visitor = await site_and_visitor(store)
    conv, created = await store.open_conversation(site.id, visitor.id, **kwargs)
    assert created
    return conv


async def say(
    store: Store,
    conv_id: str,
    body: str,
    *,
    kind: EntryKind = EntryKind.TEXT,
    author: str = "v_1",
    cid: str | None = None,
) -> tuple[Entry, bool]:
    author_kind = AuthorKind.AGENT if author.startswith("a") else AuthorKind.VISITOR
    return await store.append(conv_id, kind, author_kind, author, author.upper(), body, cid=cid)
