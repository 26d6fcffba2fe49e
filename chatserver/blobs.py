"""The BlobStore seam: named byte strings kept outside the Store.

File attachments and recording segments are bytes that the Store only
indexes.  They live behind this seam so that a directory (the default, and
a shared volume when several machines run with Redis) and S3-compatible
object storage (``blobs_s3.py``, which cannot ``append``) serve the features
alike; ``tests/contracts/test_blob_contract.py`` runs the contract on both.

Contract every implementation keeps (``tests/unit/test_blobs.py``):

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
from typing import Any, BinaryIO, Protocol, TypeVar

from . import threads
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
    # Whether ``append`` works: a blob can grow in place (a directory), or not
    # (object storage, where a growing thing is written as new objects).
    appends: bool

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


def ctypes_errno() -> int:
    import ctypes

    return ctypes.get_errno()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _syncfs() -> Callable[[int], int] | None:
    """Linux's ``syncfs(2)`` (flush one filesystem), when the C library has it."""
    try:
        import ctypes

        fn = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_SYNCFS = _syncfs()


def _open_append(path: Path) -> BinaryIO:
    """``path`` opened to append, its folder made if missing (one syscall when it exists)."""
    try:
        return open(path, "ab")
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "ab")


def _open_write(path: Path) -> BinaryIO:
    """``path`` created (or emptied) to write, its folder made if missing."""
    try:
        return open(path, "wb")
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "wb")


def _no_wakeup_preemption() -> None:
    """A blob thread's start: named for the OS, and ``SCHED_BATCH``, so that its
    wake-up does not preempt the event loop's thread (``threads.py``)."""
    threads.settle(threads.BATCH)


Pending = tuple[Path, bytes, "asyncio.Future[int]"]


class DirectoryBlobs:
    """``BlobStore`` on a local directory, one file per key.

    File work runs on the store's own threads (``threads``) so the event
    loop never waits on a disk; appends to one key take a per-key lock.

    Appends and puts are group-committed: those waiting while one group is
    being written form the next group, whose files are all written and then made
    durable together (one ``syncfs`` of the directory's filesystem where Linux
    has it, else an ``fsync`` per file) before any of them returns.  Hundreds
    of recordings appending at once then cost one disk flush, not hundreds.
    """

    appends = True
    GROUP = 256  # appends written and synced together, at most
    PATHS = 4096  # checked keys' paths kept

    def __init__(self, root: Path | str, threads: int = 8) -> None:
        self.root = Path(root)
        self._paths: dict[str, Path] = {}
        # Striped locks: bounded memory, and appends to one key never overlap.
        self._locks = [asyncio.Lock() for _ in range(64)]
        self._pool = ThreadPoolExecutor(
            threads, thread_name_prefix="blobs", initializer=_no_wakeup_preemption
        )
        self._pending: list[Pending] = []
        self._flushing = False
        self._flusher: asyncio.Future[None] | None = None
        self._puts: list[Pending] = []
        self._putting = False
        self._put_flusher: asyncio.Future[None] | None = None

    async def _io(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def _path(self, key: str) -> Path:
        # Keys are checked and joined once: a recording appends to its key many
        # times.  The cache is bounded (cleared when full).
        path = self._paths.get(key)
        if path is None:
            path = self.root.joinpath(*check_key(key))
            if len(self._paths) >= self.PATHS:
                self._paths.clear()
            self._paths[key] = path
        return path

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
        if _SYNCFS is None:
            await self._io(self._put, path, data)
            return
        # Group-committed like appends: the puts waiting meanwhile are written
        # to temporary files, synced together, renamed, and synced again.
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._puts.append((path, data, fut))
        if not self._putting:
            self._putting = True
            self._put_flusher = asyncio.ensure_future(self._flush_puts())
        await fut

    def _put_group(self, group: list[tuple[Path, bytes]]) -> list[int | BaseException]:
        """Write every put of ``group`` beside its place, sync, rename all, sync again."""
        results: list[int | BaseException] = []
        moves: list[tuple[int, Path, Path]] = []
        for i, (path, data) in enumerate(group):
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{i}.tmp")
            try:
                with _open_write(tmp) as fh:
                    fh.write(data)
                moves.append((i, tmp, path))
                results.append(0)
            except OSError as exc:
                results.append(exc)
        try:
            self._sync([(tmp, False) for _, tmp, _ in moves])
            for i, tmp, path in moves:
                try:
                    os.replace(tmp, path)
                except OSError as exc:
                    results[i] = exc
            self._sync([(path, True) for _, _, path in moves])
        except OSError as exc:
            return [exc for _ in group]
        return results

    async def _flush_puts(self) -> None:
        try:
            while self._puts:
                batch, self._puts = self._puts[: self.GROUP], self._puts[self.GROUP :]
                await self._write_group(batch, self._put_group)
        finally:
            self._putting = False

    async def _write_group(
        self,
        batch: list[Pending],
        write: Callable[[list[tuple[Path, bytes]]], list[Any]],
    ) -> None:
        """Write ``batch`` with ``write`` in an I/O thread and settle each request's future."""
        try:
            results = await self._io(write, [(path, data) for path, data, _ in batch])
        except BaseException as exc:  # the group's fate is unknown: fail them all
            results = [exc] * len(batch)
        for (_, _, fut), result in zip(batch, results, strict=True):
            if fut.done():
                continue
            if isinstance(result, BaseException):
                fut.set_exception(result)
            else:
                fut.set_result(result)

    def _append_group(self, group: list[tuple[Path, bytes]]) -> list[int | BaseException]:
        """Write every append of ``group`` (distinct paths), then make them durable."""
        results: list[int | BaseException] = []
        written: list[tuple[Path, bool]] = []
        for path, data in group:
            try:
                with _open_append(path) as fh:
                    start = fh.tell()
                    fh.write(data)
                results.append(start)
                # An empty file may be new: its directory entry is synced too.
                written.append((path, start == 0))
            except OSError as exc:
                results.append(exc)
        try:
            self._sync(written)
        except OSError as exc:
            return [exc for _ in group]
        return results

    def _sync(self, written: list[tuple[Path, bool]]) -> None:
        if not written:
            return
        if _SYNCFS is not None:
            fd = os.open(self.root, os.O_RDONLY)
            try:
                if _SYNCFS(fd) != 0:
                    raise OSError(ctypes_errno(), "syncfs failed")
            finally:
                os.close(fd)
            return
        for path, new in written:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            if new:
                _fsync_dir(path.parent)

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[: self.GROUP], self._pending[self.GROUP :]
                await self._write_group(batch, self._append_group)
        finally:
            self._flushing = False

    async def append(self, key: str, data: bytes) -> int:
        path = self._path(key)
        async with self._locks[hash(key) % len(self._locks)]:
            fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            self._pending.append((path, data, fut))
            if not self._flushing:
                self._flushing = True
                self._flusher = asyncio.ensure_future(self._flush())
            return await fut

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
