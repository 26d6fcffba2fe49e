"""The segment format: a recording's batches, one compressed frame each.

A segment is the concatenation of frames, appended in the order batches are
stored.  Each frame is a fixed header and the batch's events as a compact
JSON array (UTF-8), compressed as a whole: compressing whole batches, not
single events, is what makes them small (``docs/recordings.md`` has the
figures), and one frame per batch keeps every frame decodable on its own, so
a reader can start at any frame boundary, such as a full snapshot's.

Header (44 bytes, little-endian)::

    0  2  magic b"RB"
    2  1  codec: 0 none, 1 zstd, 2 gzip
    3  1  reserved, 0
    4  4  payload length (compressed bytes that follow the header)
    8  4  raw length (the JSON's bytes)
    12 4  CRC-32 of the payload
    16 4  number of events
    20 8  seq of the batch (unsigned)
    28 8  first event timestamp (float64, ms)
    36 8  last event timestamp (float64, ms)

Readers check the magic and the CRC.  A frame that fails either (the torn
end of an append interrupted by a crash, followed by later appends) is
skipped by scanning forward to the next valid header, so one bad write never
hides the frames after it.  A seq at or below one already read is a copy
(the same batch appended twice by a race between two processes) and is
skipped too.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum

import zstandard

MAGIC = b"RB"
HEADER = struct.Struct("<2sBBIIIIQdd")
HEADER_SIZE = HEADER.size  # 44
MAX_RAW_BYTES = 8 * 1024 * 1024  # a frame never inflates beyond this


class Codec(IntEnum):
    NONE = 0
    ZSTD = 1
    GZIP = 2


ZSTD_LEVEL = 2
GZIP_LEVEL = 6

_zstd_c = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
_zstd_d = zstandard.ZstdDecompressor()


def compress(codec: Codec, raw: bytes) -> bytes:
    if codec is Codec.ZSTD:
        return _zstd_c.compress(raw)
    if codec is Codec.GZIP:
        return gzip.compress(raw, GZIP_LEVEL, mtime=0)
    return raw


def decompress(codec: Codec, payload: bytes, raw_len: int) -> bytes:
    """The payload inflated; ``ValueError`` when it is not ``raw_len`` bytes of ``codec``."""
    if raw_len > MAX_RAW_BYTES:
        raise ValueError("frame claims too many raw bytes")
    try:
        if codec is Codec.ZSTD:
            raw = _zstd_d.decompress(payload, max_output_size=raw_len)
        elif codec is Codec.GZIP:
            d = zlib.decompressobj(wbits=31)
            raw = d.decompress(payload, raw_len)
        else:
            raw = payload
    except (zstandard.ZstdError, zlib.error) as exc:
        raise ValueError(f"cannot inflate frame: {exc}") from exc
    if len(raw) != raw_len:
        raise ValueError("frame inflates to a different length")
    return raw


@dataclass(frozen=True, slots=True)
class FrameInfo:
    """A frame found in a segment: where it is and what its header says."""

    offset: int  # of the header, in the segment
    codec: Codec
    size: int  # header + payload
    raw_len: int
    events: int
    seq: int
    first_ts: float
    last_ts: float

    @property
    def end(self) -> int:
        return self.offset + self.size


def encode_frame(
    raw: bytes, *, seq: int, events: int, first_ts: float, last_ts: float, codec: Codec
) -> bytes:
    """One frame holding ``raw`` (the batch's JSON), compressed with ``codec``."""
    payload = compress(codec, raw)
    header = HEADER.pack(
        MAGIC,
        int(codec),
        0,
        len(payload),
        len(raw),
        zlib.crc32(payload),
        events,
        seq,
        first_ts,
        last_ts,
    )
    return header + payload


def _header(data: bytes | memoryview, pos: int, base: int) -> FrameInfo | None:
    """The valid frame at ``pos`` of ``data`` (``base`` is data's segment offset)."""
    if pos + HEADER_SIZE > len(data):
        return None
    magic, codec, _, size, raw_len, crc, events, seq, first, last = HEADER.unpack_from(data, pos)
    if magic != MAGIC or codec not in (0, 1, 2):
        return None
    end = pos + HEADER_SIZE + size
    if end > len(data) or zlib.crc32(data[pos + HEADER_SIZE : end]) != crc:
        return None
    return FrameInfo(
        base + pos, Codec(codec), HEADER_SIZE + size, raw_len, events, seq, first, last
    )


def scan(data: bytes, base: int = 0) -> Iterator[FrameInfo]:
    """The valid frames in ``data`` (which starts at segment offset ``base``), in order.

    Damaged bytes are skipped up to the next valid header.  A frame cut by
    the end of ``data`` ends the scan (a reader with more bytes continues
    from its offset).
    """
    view = memoryview(data)
    pos = 0
    while pos + HEADER_SIZE <= len(data):
        info = _header(view, pos, base)
        if info is not None:
            yield info
            pos += info.size
            continue
        # Either a frame that goes past the end of ``data`` (stop: the caller
        # reads on) or damage (resynchronise on the next magic).
        magic, codec, _, size, *_ = HEADER.unpack_from(view, pos)
        cut = magic == MAGIC and codec in (0, 1, 2) and pos + HEADER_SIZE + size > len(data)
        if cut and _next_valid(view, pos + 1, base) is None:
            return
        nxt = data.find(MAGIC, pos + 1)
        if nxt < 0:
            return
        pos = nxt


def _next_valid(view: memoryview, start: int, base: int) -> int | None:
    data = view.obj
    assert isinstance(data, bytes)
    pos = data.find(MAGIC, start)
    while pos >= 0:
        if _header(view, pos, base) is not None:
            return pos
        pos = data.find(MAGIC, pos + 1)
    return None


def payload(data: bytes, info: FrameInfo, base: int = 0) -> bytes:
    """The inflated JSON of the frame ``info`` found in ``data``."""
    start = info.offset - base + HEADER_SIZE
    return decompress(info.codec, data[start : info.offset - base + info.size], info.raw_len)
