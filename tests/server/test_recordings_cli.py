"""``chatserver recordings settings|purge|delete-visitor``, run as a user would."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chatserver.blobs import DirectoryBlobs
from chatserver.store_sqlite import SQLiteStore
from chatserver.types import RecordingBatch, RecordingMark
from recordings.index import open_index

from ..conftest import Client, Server


def run(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatserver.cli", "recordings", *args, "--data", str(data)],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )


async def _setup(data: Path) -> tuple[str, str, list[str]]:
    """A site, two visitors, three recordings (one of them 40 days old) with segments."""
    store = SQLiteStore(data / "chatserver.db")
    index = open_index(store)
    blobs = DirectoryBlobs(data / "blobs")
    await store.start()
    try:
        site = await store.create_site("Bike shop")
        alice = await store.create_visitor(site.id)
        bob = await store.create_visitor(site.id)
        keys = []
        now_ms = time.time() * 1000
        for rec_id, who, age_days in (
            ("rec_cli_old", alice, 40),
            ("rec_cli_a", alice, 0),
            ("rec_cli_b", bob, 0),
        ):
            key = f"rec/{site.id}/x/{rec_id}.seg"
            await index.claim_recording(rec_id, site.id, who.id, key, 0.0)
            ts = now_ms - age_days * 86400_000
            await blobs.append(key, b"segment bytes")
            snap = RecordingMark("snapshot", ts, {"offset": 0, "seq": 0, "index": 0})
            batch = RecordingBatch(0, ts, ts + 1000, 3, 13, 100, marks=(snap,))
            await index.add_recording_batch(rec_id, batch)
            keys.append(key)
        return site.key, alice.id, keys
    finally:
        await store.close()


async def _ids(data: Path) -> set[str]:
    store = SQLiteStore(data / "chatserver.db")
    await store.start()
    try:
        site = (await store.list_sites())[0]
        return {r.id for r in await open_index(store).list_recordings(site.id)}
    finally:
        await store.close()


def test_settings_purge_and_delete_visitor(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    key, alice, keys = asyncio.run(_setup(data))

    out = run("settings", key, data=data)
    assert out.returncode == 0, out.stderr
    assert "recording off, sample 1, consent not required, retention 30 days" in out.stdout
    out = run(
        "settings",
        key,
        "--on",
        "--sample",
        "0.25",
        "--consent",
        "--retention-days",
        "30",
        "--rewind-seconds",
        "90",
        data=data,
    )
    assert out.returncode == 0, out.stderr
    assert (
        "recording on, sample 0.25, consent required, retention 30 days, rewind 90 s" in out.stdout
    )
    bad = run("settings", key, "--rewind-seconds", "601", data=data)
    assert bad.returncode == 2 and "0 to 600" in bad.stderr
    bad = run("settings", key, "--sample", "2", data=data)
    assert bad.returncode == 2 and "0 to 1" in bad.stderr

    out = run("purge", data=data)
    assert out.returncode == 0 and "deleted 1 recordings" in out.stdout, out.stderr
    assert asyncio.run(_ids(data)) == {"rec_cli_a", "rec_cli_b"}
    assert not (data / "blobs" / keys[0]).exists() and (data / "blobs" / keys[1]).exists()

    out = run("delete-visitor", alice, data=data)
    assert out.returncode == 0 and f"deleted 1 recordings of {alice}" in out.stdout, out.stderr
    assert asyncio.run(_ids(data)) == {"rec_cli_b"}
    assert not (data / "blobs" / keys[1]).exists() and (data / "blobs" / keys[2]).exists()


@pytest.mark.anyio
async def test_settings_reach_the_welcome(tmp_path: Path, close_clients: None) -> None:
    """What ``settings`` stores is what visitors are told (site settings in ``welcome``)."""
    data = tmp_path / "data"
    data.mkdir()
    key, _, _ = await _setup(data)
    out = await asyncio.to_thread(run, "settings", key, "--on", "--consent", data=data)
    assert out.returncode == 0, out.stderr
    server = Server(data).start()
    try:
        visitor = await Client.visitor(server, key)
        settings = visitor.welcome["site"]["settings"]
        assert settings["recording"] is True and settings["recording_consent"] is True
        assert settings["recording_sample"] == 1.0
    finally:
        server.stop()
