"""``chatserver reports rebuild`` as a process, on a SQLite data directory."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from chatserver.store_sqlite import SQLiteStore
from chatserver.types import AuthorKind, ConvState, EntryKind


async def _closed_chat(data: Path) -> tuple[str, str]:
    store = SQLiteStore(data / "chatserver.db")
    await store.start()
    try:
        site = await store.create_site("Shop")
        visitor = await store.create_visitor(site.id)
        conv, _ = await store.open_conversation(site.id, visitor.id)
        await store.append(conv.id, EntryKind.TEXT, AuthorKind.VISITOR, visitor.id, "", "hola")
        await store.update_conversation(conv.id, state=ConvState.CLOSED)
        return site.key, conv.id
    finally:
        await store.close()


async def _row(data: Path, conv_id: str) -> tuple[bool, int] | None:
    store = SQLiteStore(data / "chatserver.db")
    await store.start()
    try:
        f = await store.get_facts(conv_id)
        return None if f is None else (f.missed, f.msgs_visitor)
    finally:
        await store.close()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatserver.cli", "reports", "rebuild", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_rebuild_writes_every_row(tmp_path: Path) -> None:
    key, conv_id = asyncio.run(_closed_chat(tmp_path))
    assert asyncio.run(_row(tmp_path, conv_id)) is None
    done = _cli("--data", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("rebuilt 1 conversation facts rows of 1 site(s)")
    assert asyncio.run(_row(tmp_path, conv_id)) == (True, 1)
    again = _cli("--data", str(tmp_path), "--site", key)
    assert again.returncode == 0 and "rebuilt 1 " in again.stdout
    bad = _cli("--data", str(tmp_path), "--site", "nope")
    assert bad.returncode == 2 and "no site with key or id 'nope'" in bad.stderr
