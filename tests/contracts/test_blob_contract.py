"""The BlobStore contract, run on every implementation: a directory and S3.

S3 is a real SeaweedFS server (``tests/s3_server.py``).  Appending is the
directory's alone (objects are immutable); ``tests/unit/test_blobs.py`` keeps
the directory's own tests (appends, group commit, key checks).
"""

from __future__ import annotations

import asyncio
import logging
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chatserver import redact
from chatserver.blobs import BlobStore, DirectoryBlobs
from chatserver.blobs_s3 import BlobError, BlobsUnsupported, S3Blobs, S3Settings, parse_s3_url
from chatserver.errors import NotFound

from ..s3_server import BUCKET, S3Server

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["directory", "s3"])
async def blobs(
    request: pytest.FixtureRequest, tmp_path: Path, s3_prefix: str
) -> AsyncIterator[BlobStore]:
    if request.param == "directory":
        yield DirectoryBlobs(tmp_path / "blobs")
    else:
        server: S3Server = request.getfixturevalue("s3_server")
        yield S3Blobs(S3Settings(**server.settings(s3_prefix)))


async def test_put_read_ranges(blobs: BlobStore) -> None:
    await blobs.put("a/b.bin", b"hello")
    assert await blobs.read("a/b.bin") == b"hello"
    assert await blobs.read("a/b.bin", 1, 3) == b"ell"
    assert await blobs.read("a/b.bin", 4) == b"o"
    assert await blobs.read("a/b.bin", 3, 100) == b"lo"  # fewer at the end
    assert await blobs.read("a/b.bin", 5) == b""  # from the end: nothing
    assert await blobs.read("a/b.bin", 9, 4) == b""  # past the end: nothing
    assert await blobs.read("a/b.bin", 2, 0) == b""
    assert await blobs.size("a/b.bin") == 5


async def test_put_replaces_whole(blobs: BlobStore) -> None:
    await blobs.put("k", b"a" * 1000)
    await blobs.put("k", b"x")
    assert await blobs.read("k") == b"x"
    assert await blobs.size("k") == 1


async def test_binary_and_empty(blobs: BlobStore) -> None:
    data = bytes(range(256)) * 1024
    await blobs.put("bin/all", data)
    assert await blobs.read("bin/all") == data
    assert await blobs.read("bin/all", 255, 2) == bytes([255, 0])
    await blobs.put("bin/empty", b"")
    assert await blobs.read("bin/empty") == b""
    assert await blobs.size("bin/empty") == 0


async def test_missing(blobs: BlobStore) -> None:
    assert await blobs.size("nope") is None
    with pytest.raises(NotFound):
        await blobs.read("nope")
    with pytest.raises(NotFound):
        await blobs.read("nope", 10, 5)
    assert not await blobs.delete("nope")


async def test_delete_and_delete_prefix(blobs: BlobStore) -> None:
    await blobs.put("site/v1/one", b"1")
    await blobs.put("site/v1/deep/two", b"2")
    await blobs.put("site/v10/one", b"x")  # a longer name, not inside site/v1
    await blobs.put("site/v2/one", b"3")
    assert await blobs.delete("site/v2/one")
    assert await blobs.size("site/v2/one") is None
    assert await blobs.delete_prefix("site/v1") == 2
    assert await blobs.size("site/v1/one") is None
    assert await blobs.size("site/v1/deep/two") is None
    assert await blobs.read("site/v10/one") == b"x"
    assert await blobs.delete_prefix("site/v1/") == 0


async def test_bad_keys_refused(blobs: BlobStore) -> None:
    for key in ("../x", "a//b", "a/./b", "a b", "é"):
        with pytest.raises(ValueError):
            await blobs.put(key, b"x")
        with pytest.raises(ValueError):
            await blobs.read(key)
    with pytest.raises(ValueError):
        await blobs.read("ok", -1)


async def test_concurrent_puts_and_reads(blobs: BlobStore) -> None:
    keys = [f"many/{i}" for i in range(40)]
    await asyncio.gather(*(blobs.put(k, k.encode() * 100) for k in keys))
    got = await asyncio.gather(*(blobs.read(k) for k in keys))
    assert got == [k.encode() * 100 for k in keys]
    assert await blobs.delete_prefix("many") == 40


# -- S3 only -----------------------------------------------------------------


@pytest.fixture
def s3(s3_server: S3Server, s3_prefix: str) -> S3Blobs:
    return S3Blobs(S3Settings(**s3_server.settings(s3_prefix)))


async def test_s3_append_is_refused_clearly(s3: S3Blobs) -> None:
    with pytest.raises(BlobsUnsupported, match="cannot be appended"):
        await s3.append("seg", b"x")
    assert await s3.size("seg") is None


async def test_s3_presigned_get(s3: S3Blobs) -> None:
    await s3.put("files/a.pdf", b"%PDF-1.4 body")
    url = await s3.presign("files/a.pdf", 60)
    assert "X-Amz-Signature=" in url
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.read() == b"%PDF-1.4 body"
    # The signature covers the key: another key with it is refused.
    other = url.replace("files/a.pdf", "files/b.pdf")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(other, timeout=10)
    err.value.close()
    assert err.value.code == 403
    for seconds in (0, 8 * 24 * 3600):
        with pytest.raises(ValueError, match="1 to"):
            await s3.presign("files/a.pdf", seconds)


async def test_s3_prefix_isolates(s3_server: S3Server, s3_prefix: str) -> None:
    one = S3Blobs(S3Settings(**s3_server.settings(f"{s3_prefix}/one")))
    two = S3Blobs(S3Settings(**s3_server.settings(f"{s3_prefix}/two")))
    await one.put("k", b"1")
    assert await two.size("k") is None
    assert await one.delete_prefix("k") == 0  # a key is not a folder
    assert await one.read("k") == b"1"


async def test_s3_wrong_secret_fails_without_leaking_it(
    s3_server: S3Server, s3_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    redact.install()
    wrong = "not-the-secret-but-still-a-secret-77"
    settings = {**s3_server.settings(s3_prefix), "secret_key": wrong}
    blobs = S3Blobs(S3Settings(**settings))
    assert wrong not in repr(blobs) and wrong not in repr(blobs.settings)
    with pytest.raises(BlobError) as err:
        await blobs.put("k", b"x")
    assert wrong not in str(err.value)
    assert "S3 put of 'k' failed" in str(err.value)
    with caplog.at_level(logging.ERROR):
        logging.getLogger("test").error("failed: %s %s", err.value, wrong)
    assert wrong not in caplog.text


async def test_s3_unreachable_endpoint_is_a_blob_error(s3_prefix: str) -> None:
    from ..redis_server import free_port

    settings = S3Settings(
        url=f"s3://{BUCKET}/{s3_prefix}",
        endpoint=f"http://127.0.0.1:{free_port()}",
        region="us-east-1",
        access_key="unreachable-access",
        # Long, as real ones are: every log line in this process is scrubbed of it.
        secret_key="unreachable-secret-key-0123456789",
        timeout=2.0,
        retries=0,
    )
    with pytest.raises(BlobError, match="S3 get of 'k' failed"):
        await S3Blobs(settings).read("k")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://bucket/x", "must look like s3://"),
        ("s3://Bad_Bucket/x", "not a valid bucket name"),
        ("s3://ab/x", "not a valid bucket name"),
        ("s3://user:pw@bucket/x", "no credentials"),
        ("s3://bucket/x?sig=1", "no credentials"),
        ("s3://bucket/a/../b", "bad prefix"),
    ],
)
def test_s3_url_refused_clearly(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_s3_url(url)


def test_s3_url_parts() -> None:
    assert parse_s3_url("s3://my-bucket") == ("my-bucket", "")
    assert parse_s3_url("s3://my.bucket/chat/prod/") == ("my.bucket", "chat/prod")


def test_s3_settings_checked() -> None:
    with pytest.raises(ValueError, match="both"):
        S3Settings(url="s3://bucket/x", access_key="a")
    with pytest.raises(ValueError, match="endpoint"):
        S3Settings(url="s3://bucket/x", endpoint="ftp://host")
    with pytest.raises(ValueError, match="endpoint"):
        S3Settings(url="s3://bucket/x", endpoint="http://key:secret@host")
