"""chatserver's threads carry their names to the operating system (``threads.py``):
``top -H``, ``ps -L`` and ``/proc/<pid>/task/*/comm`` tell them apart."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from archive.index import open_archive
from chatserver import security, threads
from chatserver.blobs import DirectoryBlobs
from chatserver.store_sqlite import SQLiteStore

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(sys.platform != "linux", reason="thread names through prctl"),
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def comm(native_id: int | None) -> str:
    return Path(f"/proc/self/task/{native_id}/comm").read_text().strip()


def test_the_os_name_drops_the_prefix_and_keeps_15_bytes() -> None:
    assert threads.os_name("chatserver-sqlite-read") == b"sqlite-read"
    assert threads.os_name("blobs_0") == b"blobs_0"
    assert threads.os_name("chatserver-a-name-longer-than-fifteen") == b"a-name-longer-t"
    assert threads.os_name("é" * 20) == ("é" * 7).encode()  # 14 bytes: no half character


def test_settle_names_the_calling_thread_only() -> None:
    seen: list[str] = []

    def run() -> None:
        threads.settle()
        seen.append(comm(threading.get_native_id()))

    t = threading.Thread(target=run, name="chatserver-probe-thread")
    t.start()
    t.join()
    assert seen == ["probe-thread"]
    assert comm(threading.get_native_id()) != "probe-thread"


async def test_the_store_archive_blob_and_password_threads_are_named(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "chatserver.db")
    await store.start()
    index = open_archive(store)
    await index.start()
    blobs = DirectoryBlobs(tmp_path / "blobs", threads=1)
    try:
        engine = index.engine  # type: ignore[attr-defined]
        assert comm(store._writer._thread.native_id) == "sqlite"
        assert comm(store._reader._thread.native_id) == "sqlite-read"
        assert comm(engine._writer._thread.native_id) == "archive"
        assert comm(engine._reader._thread.native_id) == "archive-read"
        checkpointer = store._checkpointer
        if checkpointer is not None:
            assert comm(checkpointer._thread.native_id) == "sqlite-ckpt"

        await blobs.append("a/b.seg", b"data")
        await security.hash_password_off_loop("a password")
        names = {
            comm(t.native_id)
            for t in threading.enumerate()
            if t.name.startswith(("blobs", "chatserver-password"))
        }
        assert "blobs_0" in names
        assert "password_0" in names
        # the event loop's own thread is left as the OS named it
        assert comm(threading.get_native_id()) not in names
    finally:
        await index.close()
        await store.close()
