"""The BlobStore seam: named byte strings kept outside the Store.

File attachments and recording segments are bytes that the Store only
indexes.  They live behind this seam so that a directory (the default, and
a shared volume when several machines run with Redis) can later be swapped
for object storage without touching the features that use it.

Contract every implementation keeps (``tests/test_blobs.py``):

* **Keys** are ``/``-separated parts of ``[A-Za-z0-9_.-]`` (no empty part, no
  ``.`` or ``..``), at most ``MAX_KEY_CHARS`` long; anything else raises
  ``ValueError`` before any I/O, so a key built from client input can never
  reach outside the store.
* **Durability.** When ``put`` or ``append`` returns, the bytes survive a
  kill -9 and a power cut (written, fsynced, and for ``put`` renamed into
  place, so a reader sees the old blob or the new one, never half of one).
* **Appends** to one key are serialised within a process and return the
  offset at which their bytes start; a blob is only ever appended to by one
  writer at a time (the features make sure of it), so offsets are exact.
* ``read`` of a missing key raises ``NotFound``; ``size`` answers ``None``.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, TypeVar

from .errors import NotFound

T = TypeVar("T")

MAX_KEY_CHARS = 300
_PART = re.compile(r"[A-Za-z0-9_.\-]+")


def check_key(key: str) -> list[str]:
    """The parts of a valid key; ``ValueError`` for anything else."""
    if not key or len(key) > MAX_KEY_CHARS:
        raise ValueError(f"blob key must be 1 to {MAX_KEY_CHARS} characters")
    parts = key.split("/")
    for part in parts:
        if part in ("", ".", "..") or not _PART.fullmatch(part):
            raise ValueError(f"bad blob key part {part!r}")
    return parts


class BlobStore(Protocol):
    async def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``, replacing any blob there, atomically."""

    async def append(self, key: str, data: bytes) -> int:
        """Add ``data`` at the end of ``key`` (created if missing); its start offset."""

    async def read(self, key: str, start: int = 0, length: int | None = None) -> bytes:
        """``length`` bytes (default: to the end) from ``start``; fewer at the end."""

    async def size(self, key: str) -> int | None: ...

    async def delete(self, key: str) -> bool:
        """Remove one blob; ``True`` if it existed."""

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every blob under the folder ``prefix``; how many were removed."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DirectoryBlobs:
    """``BlobStore`` on a local directory, one file per key.

    File work runs on the store's own threads (``threads``) so the event
    loop never waits on a disk; appends to one key take a per-key lock.
    """

    def __init__(self, root: Path | str, threads: int = 32) -> None:
        self.root = Path(root)
        # Striped locks: bounded memory, and appends to one key never overlap.
        self._locks = [asyncio.Lock() for _ in range(64)]
        # File work has threads of its own: appends wait on fsync, and many
        # fsyncs in flight at once let the filesystem commit them together
        # (recordings append thousands of batches a second).
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="blobs")

    async def _io(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key))

    def _put(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)

    async def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        await self._io(self._put, path, data)

    def _append(self, path: Path, data: bytes) -> int:
        new = not path.exists()
        if new:
            path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as fh:
            start = fh.tell()
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if new:
            _fsync_dir(path.parent)
        return start

    async def append(self, key: str, data: bytes) -> int:
        path = self._path(key)
        async with self._locks[hash(key) % len(self._locks)]:
            return await self._io(self._append, path, data)

    @staticmethod
    def _read(path: Path, start: int, length: int | None) -> bytes:
        try:
            with open(path, "rb") as fh:
                fh.seek(start)
                return fh.read() if length is None else fh.read(length)
        except (FileNotFoundError, IsADirectoryError):
            raise NotFound(f"no blob {path.name}") from None

    async def read(self, key: str, start: int = 0, length: int | None = None) -> bytes:
        if start < 0 or (length is not None and length < 0):
            raise ValueError("start and length must not be negative")
        return await self._io(self._read, self._path(key), start, length)

    async def size(self, key: str) -> int | None:
        path = self._path(key)
        try:
            stat = await self._io(path.stat)
        except FileNotFoundError:
            return None
        return stat.st_size if path.is_file() else None

    @staticmethod
    def _delete(path: Path) -> bool:
        try:
            path.unlink()
        except (FileNotFoundError, IsADirectoryError):
            return False
        return True

    async def delete(self, key: str) -> bool:
        return await self._io(self._delete, self._path(key))

    @staticmethod
    def _delete_tree(path: Path) -> int:
        if not path.is_dir():
            return 0
        count = sum(1 for p in path.rglob("*") if p.is_file())
        shutil.rmtree(path, ignore_errors=True)
        return count

    async def delete_prefix(self, prefix: str) -> int:
        return await self._io(self._delete_tree, self._path(prefix.rstrip("/")))
