"""``chatserver archive reindex`` (archive/cli.py): the index rebuilt from the record,
by the real command in a subprocess, on the SQLite file a server would use."""

from __future__ import annotations

import asyncio
from pathlib import Path

from archive.index import open_archive
from archive.query import ArchiveQuery
from chatserver.store_sqlite import SQLiteStore
from chatserver.types import AuthorKind, EntryKind

from .test_cli import run


async def _write(data: Path) -> tuple[str, str]:
    """A conversation about an "envío" written to the record only (no events); site, conv."""
    store = SQLiteStore(data / "chatserver.db")
    await store.start()
    index = open_archive(store)
    await index.start()  # the archive's file exists (as a server made it), then is not told
    await index.close()
    try:
        site = await store.create_site("Shop")
        visitor = await store.create_visitor(site.id)
        conv, _ = await store.open_conversation(site.id, visitor.id)
        await store.append(
            conv.id, EntryKind.TEXT, AuthorKind.VISITOR, visitor.id, "", "¿Y mi envío?"
        )
        return site.id, conv.id
    finally:
        await store.close()


async def _search(data: Path, site_id: str) -> list[str]:
    store = SQLiteStore(data / "chatserver.db")
    await store.start()
    try:
        index = open_archive(store)
        try:
            page = await index.search(ArchiveQuery(site_id, text="envio"))
        finally:
            await index.close()
        return [h.conv.id for h in page.hits]
    finally:
        await store.close()


def test_reindex_finds_what_the_events_never_indexed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    site_id, conv_id = asyncio.run(_write(data))
    assert asyncio.run(_search(data, site_id)) == []
    done = run("archive", "reindex", data=data)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("indexed 1 conversations in ")
    assert asyncio.run(_search(data, site_id)) == [conv_id]
    helped = run("archive", "--help", data=Path())
    assert "reindex" in helped.stdout
