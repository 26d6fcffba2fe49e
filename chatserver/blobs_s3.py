"""``S3Blobs``: the BlobStore seam on S3-compatible object storage.

Chosen with ``--blobs s3://bucket/prefix`` (``S3Settings``, filled in by the
CLI from ``--s3-endpoint``, ``--s3-region``, ``--s3-access-key`` and
``CHATSERVER_S3_SECRET_KEY``).  Each key of the seam is one object,
``prefix/key``, in the bucket.  The client is obstore (Rust's
``object_store`` behind a small Python layer, with native ``async``): one
wheel of about 15 MB with no Python dependencies, against aioboto3's
botocore and aiohttp stack (docs/storage.md, "Object storage").

What S3 can do of the contract (``chatserver/blobs.py``):

* ``put`` is atomic (a reader sees the old object or the new one) and
  durable when it returns (the service acknowledged the write);
* ``read`` with a byte range, ``size``, ``delete``, ``delete_prefix``;
* ``presign``: a short-lived signed GET URL for one object;
* ``append`` is **not** possible: objects are immutable.  It raises
  ``BlobsUnsupported``; features that grow a blob (recordings) write new
  objects instead.

Errors of the service come out as ``BlobError`` (an ``OSError``, which the
features already treat as "storage unavailable") with the secret key and
any signature scrubbed from their text; a missing object is ``NotFound``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

import obstore
from obstore.store import S3Store

from . import redact
from .blobs import check_key
from .errors import NotFound

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig

# HTTP 416 in a service error, not the digits of a port or a key that happen to
# spell it ("127.0.0.1:41671" once took an unreachable server for a short object).
_RANGE_REFUSED = re.compile(r"(?<![\w:./-])416(?![\w.])")

T = TypeVar("T")

# Bucket names as S3 allows them (3 to 63 of a-z 0-9 . -, a letter or digit
# at each end); the prefix is a key of the seam (chatserver/blobs.check_key).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
PRESIGN_MAX = 7 * 24 * 3600  # seconds: what SigV4 allows


class BlobError(OSError):
    """The object store failed or refused an operation (text without secrets)."""


class BlobsUnsupported(BlobError):
    """An operation this kind of store cannot do (``append`` on S3)."""


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` as ``(bucket, prefix)``; ``ValueError`` saying
    what is wrong for anything else (the prefix may be empty)."""
    parts = urlsplit(url)
    if parts.scheme != "s3":
        raise ValueError("the blob store URL must look like s3://bucket/prefix")
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(
            "s3:// URL: no credentials, query or fragment in it "
            "(use --s3-access-key and CHATSERVER_S3_SECRET_KEY)"
        )
    bucket = parts.netloc
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ValueError(f"s3:// URL: {bucket!r} is not a valid bucket name")
    prefix = parts.path.strip("/")
    if prefix:
        try:
            check_key(prefix)
        except ValueError as exc:
            raise ValueError(f"s3:// URL: bad prefix: {exc}") from None
    return bucket, prefix


@dataclass(frozen=True, slots=True)
class S3Settings:
    """Where the objects live and how to reach them.

    Unset ``endpoint`` means AWS itself; unset credentials mean obstore's
    usual chain (``AWS_*`` environment variables, web identity, the instance's
    role).  ``secret_key`` is never shown (``repr``, logs, errors).
    """

    url: str  # s3://bucket/prefix
    endpoint: str | None = None  # http(s)://host:port of an S3-compatible service
    region: str | None = None
    access_key: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    timeout: float = 30.0  # seconds for one request
    retries: int = 3  # of a failed request (with backoff), within ``timeout`` x 2

    def __post_init__(self) -> None:
        parse_s3_url(self.url)
        if self.endpoint is not None:
            ends = urlsplit(self.endpoint)
            if ends.scheme not in ("http", "https") or not ends.netloc or "@" in ends.netloc:
                raise ValueError(
                    "S3 endpoint must be http(s)://host[:port] without credentials in it"
                )
        if (self.access_key is None) != (self.secret_key is None):
            raise ValueError("give both the S3 access key and its secret key, or neither")

    @property
    def bucket(self) -> str:
        return parse_s3_url(self.url)[0]

    @property
    def prefix(self) -> str:
        return parse_s3_url(self.url)[1]


class S3Blobs:
    """``BlobStore`` on one bucket (and prefix) of an S3-compatible service."""

    appends = False

    def __init__(self, settings: S3Settings) -> None:
        self.settings = settings
        redact.protect_value(settings.secret_key)
        client: ClientConfig = {
            "timeout": timedelta(seconds=settings.timeout),
            "connect_timeout": timedelta(seconds=min(10.0, settings.timeout)),
        }
        if settings.endpoint is not None and settings.endpoint.startswith("http://"):
            client["allow_http"] = True
        retry: RetryConfig = {
            "max_retries": settings.retries,
            "retry_timeout": timedelta(seconds=settings.timeout * 2),
        }
        kwargs: dict[str, str | bool] = {}
        if settings.endpoint is not None:
            kwargs["endpoint"] = settings.endpoint
            # Path-style requests (endpoint/bucket/key): what self-hosted
            # services (MinIO, SeaweedFS, Garage) answer without DNS set-up.
            kwargs["virtual_hosted_style_request"] = False
        if settings.region is not None:
            kwargs["region"] = settings.region
        if settings.access_key is not None and settings.secret_key is not None:
            kwargs["access_key_id"] = settings.access_key
            kwargs["secret_access_key"] = settings.secret_key
        self._store = S3Store(
            settings.bucket,
            prefix=settings.prefix or None,
            client_options=client,
            retry_config=retry,
            **kwargs,  # type: ignore[arg-type]
        )

    def __repr__(self) -> str:
        return f"S3Blobs({self.settings.url!r}, endpoint={self.settings.endpoint!r})"

    async def _call(self, what: str, key: str, call: Awaitable[T]) -> T:
        """``call``'s result; the service's errors as ``NotFound`` or ``BlobError``."""
        try:
            return await call
        except FileNotFoundError:
            raise NotFound(f"no blob {key}") from None
        except obstore.exceptions.BaseError as exc:
            raise BlobError(f"S3 {what} of {key!r} failed: {self._clean(exc)}") from None

    def _clean(self, exc: BaseException) -> str:
        # The first line names the error and the request; the rest is a debug dump.
        text = str(exc).split("\n", 1)[0][:500]
        return redact.scrub(text)

    async def put(self, key: str, data: bytes) -> None:
        check_key(key)
        await self._call("put", key, obstore.put_async(self._store, key, data))

    async def append(self, key: str, data: bytes) -> int:
        raise BlobsUnsupported(
            "S3 objects cannot be appended to: write each piece as an object of its own"
        )

    async def read(self, key: str, start: int = 0, length: int | None = None) -> bytes:
        if start < 0 or (length is not None and length < 0):
            raise ValueError("start and length must not be negative")
        check_key(key)
        if length == 0:
            if await self.size(key) is None:
                raise NotFound(f"no blob {key}")
            return b""
        try:
            return await self._get(key, start, length)
        except BlobError as exc:
            # A range that starts at or past the end is refused (416): the
            # contract answers what is there, which is nothing.
            if not _RANGE_REFUSED.search(str(exc)):
                raise
            size = await self.size(key)
            if size is None:
                raise NotFound(f"no blob {key}") from None
            if start >= size:
                return b""
            raise

    async def _get(self, key: str, start: int, length: int | None) -> bytes:
        if start == 0 and length is None:
            got = await self._call("get", key, obstore.get_async(self._store, key))
        elif length is None:
            got = await self._call(
                "get",
                key,
                obstore.get_async(self._store, key, options={"range": {"offset": start}}),
            )
        else:
            got = await self._call(
                "get",
                key,
                obstore.get_async(self._store, key, options={"range": (start, start + length)}),
            )
        try:
            return bytes(await got.bytes_async())
        except obstore.exceptions.BaseError as exc:
            raise BlobError(f"S3 get of {key!r} failed: {self._clean(exc)}") from None

    async def size(self, key: str) -> int | None:
        check_key(key)
        try:
            meta = await self._call("head", key, obstore.head_async(self._store, key))
        except NotFound:
            return None
        return int(meta["size"])

    async def delete(self, key: str) -> bool:
        # S3 answers a delete of a missing object with success: ask first.
        if await self.size(key) is None:
            return False
        await self._call("delete", key, obstore.delete_async(self._store, key))
        return True

    async def delete_prefix(self, prefix: str) -> int:
        folder = prefix.rstrip("/")
        check_key(folder)
        paths: list[str] = []
        try:
            async for batch in obstore.list(self._store, folder + "/", chunk_size=1000):
                paths.extend(meta["path"] for meta in batch)
        except obstore.exceptions.BaseError as exc:
            raise BlobError(f"S3 list of {folder!r} failed: {self._clean(exc)}") from None
        for start in range(0, len(paths), 1000):  # DeleteObjects takes 1000 at most
            await self._call(
                "delete", folder, obstore.delete_async(self._store, paths[start : start + 1000])
            )
        return len(paths)

    async def presign(self, key: str, seconds: int) -> str:
        """A URL that GETs ``key`` without credentials for ``seconds`` (1 to 7 days)."""
        check_key(key)
        if not 1 <= seconds <= PRESIGN_MAX:
            raise ValueError(f"a presigned URL lasts 1 to {PRESIGN_MAX} seconds")
        return await self._call(
            "sign",
            key,
            obstore.sign_async(self._store, "GET", key, timedelta(seconds=seconds)),
        )
