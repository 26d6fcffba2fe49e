"""``chatserver privacy export`` (chatserver/privacy/cli.py) by the real command in a
subprocess, on the SQLite file and blob directory a server would use."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from pathlib import Path

from chatserver.audit import AuditEntry, AuditQuery, open_audit
from chatserver.blobs import DirectoryBlobs
from chatserver.store_sqlite import SQLiteStore
from chatserver.types import AuthorKind, EntryKind

from .test_cli import run


async def _write(data: Path) -> str:
    """A visitor with an e-mail, a message and a file; the site's key."""
    store = SQLiteStore(data / "chatserver.db")
    await store.start()
    blobs = DirectoryBlobs(data / "blobs")
    try:
        site = await store.create_site("Shop")
        visitor = await store.create_visitor(site.id)
        await store.update_visitor(visitor.id, name="Ann", email="ann@example.com")
        conv, _ = await store.open_conversation(site.id, visitor.id)
        await store.append(conv.id, EntryKind.TEXT, AuthorKind.VISITOR, visitor.id, "", "Hello")
        att = await store.create_attachment(
            site.id, f"visitor:{visitor.id}", "bill.pdf", "application/pdf", 4
        )
        await blobs.put(att.blob_key, b"%PDF")
        await store.bind_attachment(att.id, conv.id)
        ref = {"attachment": {"id": att.id, "name": "bill.pdf"}}
        await store.append(
            conv.id, EntryKind.TEXT, AuthorKind.VISITOR, visitor.id, "", "bill.pdf", data=ref
        )
        return site.key
    finally:
        await store.close()


async def _trail(data: Path) -> list[AuditEntry]:
    store = SQLiteStore(data / "chatserver.db")
    await store.start()
    try:
        (site,) = await store.list_sites()
        return await open_audit(store).entries(AuditQuery(site.id))
    finally:
        await store.close()


def test_export_by_email_writes_the_archive(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    key = asyncio.run(_write(data))
    out = tmp_path / "ann.zip"
    done = run(
        "privacy",
        "export",
        "--site",
        key,
        "--email",
        "ANN@example.com",
        "--out",
        str(out),
        data=data,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"wrote {out} (")
    archive = zipfile.ZipFile(io.BytesIO(out.read_bytes()))
    record = json.loads(archive.read("visitor.json"))
    assert record["visitor"]["email"] == "ann@example.com"
    (att,) = record["attachments"]
    assert archive.read(att["file"]) == b"%PDF"
    nobody = run(
        "privacy", "export", "--site", key, "--email", "x@y.z", "--out", str(out), data=data
    )
    assert nobody.returncode == 2 and "no visitor of site" in nobody.stderr
    (entry,) = asyncio.run(_trail(data))
    assert (entry.actor, entry.action) == ("cli", "visitor.export") and entry.target.startswith(
        "v_"
    )
    unnamed = run("privacy", "export", "--site", key, "--out", str(out), data=data)
    assert unnamed.returncode == 2 and "--visitor, --user-id or --email" in unnamed.stderr
