"""The BlobStore contract, on the directory implementation."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from chatserver.blobs import DirectoryBlobs, check_key
from chatserver.errors import NotFound

pytestmark = pytest.mark.anyio


@pytest.fixture
def blobs(tmp_path: Path) -> DirectoryBlobs:
    return DirectoryBlobs(tmp_path / "blobs")


async def test_put_read_replace(blobs: DirectoryBlobs) -> None:
    await blobs.put("a/b.bin", b"hello")
    assert await blobs.read("a/b.bin") == b"hello"
    assert await blobs.read("a/b.bin", 1, 3) == b"ell"
    assert await blobs.read("a/b.bin", 4) == b"o"
    await blobs.put("a/b.bin", b"x")
    assert await blobs.read("a/b.bin") == b"x"
    assert await blobs.size("a/b.bin") == 1
    # no temporary file is left next to the blob
    assert sorted(p.name for p in (blobs.root / "a").iterdir()) == ["b.bin"]


async def test_append_returns_start_offsets_in_order(blobs: DirectoryBlobs) -> None:
    offsets = await asyncio.gather(*(blobs.append("seg/s1", bytes([i]) * 10) for i in range(20)))
    assert sorted(offsets) == list(range(0, 200, 10))
    data = await blobs.read("seg/s1")
    for start in offsets:
        chunk = data[start : start + 10]
        assert len(set(chunk)) == 1  # appends never interleave


async def test_missing_and_delete(blobs: DirectoryBlobs) -> None:
    assert await blobs.size("nope") is None
    with pytest.raises(NotFound):
        await blobs.read("nope")
    assert not await blobs.delete("nope")
    await blobs.put("site/v1/one", b"1")
    await blobs.put("site/v1/two", b"2")
    await blobs.put("site/v2/one", b"3")
    assert await blobs.delete("site/v2/one")
    assert await blobs.delete_prefix("site/v1") == 2
    assert await blobs.size("site/v1/one") is None
    assert await blobs.delete_prefix("site/v1") == 0


@pytest.mark.parametrize(
    "key", ["", "../x", "a/../b", "/abs", "a//b", "a/./b", "a\\b", "é", "a b", "x" * 301]
)
def test_bad_keys_refused_before_io(key: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        check_key(key)


async def test_bad_key_never_escapes(blobs: DirectoryBlobs, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        await blobs.put("../escape", b"x")
    assert not (tmp_path / "escape").exists()
