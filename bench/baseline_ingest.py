"""The floor of durable recording ingest in Python: a bare ``websockets`` server.

The ``ingest`` scenario's clients send ``rec`` frames (JSON text, the batch's
own JSON in ``data``) one at a time and wait for each ``recorded``.  This
server answers them doing only what any durable ingest must: it reads the
frame (``msgspec``), compresses the batch (zstd level 2, as chatserver), and
appends it to one file with one ``write`` and one ``fdatasync`` per group
on a writer thread (``bench.baseline_durable.GroupCommit``: a preallocated
file written in place) before it replies.  No event checks, no index, no
per-recording file, no dedupe, no rate limits: what chatserver does on top
is its product.

``GET /healthz`` answers the scenario's counters (``recordings``: events,
stored and raw bytes), events counted by their ``"timestamp":`` keys.

Run: ``python -m bench.baseline_ingest --port 8765 --data DIR``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from http import HTTPStatus
from pathlib import Path
from typing import Any

import msgspec
import zstandard
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from .baseline_durable import GroupCommit, open_file

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode
Reply = tuple[ServerConnection, str]
FILE_BYTES = 64 << 20  # the log, written in place and wrapped around (open_file)


class Counters:
    def __init__(self) -> None:
        self.events = 0
        self.batches = 0
        self.stored_bytes = 0
        self.raw_bytes = 0


def _framed(data: bytes) -> bytes:
    return len(data).to_bytes(4, "little") + data  # each batch: its length, then its zstd frame


def _reply(replies: list[Reply]) -> None:
    for ws, text in replies:
        broadcast([ws], text)  # a synchronous send; skips a connection gone meanwhile


counters = Counters()
appender: GroupCommit[bytes, Reply] | None = None
_zstd = zstandard.ZstdCompressor(level=2)


async def handler(ws: ServerConnection) -> None:
    assert appender is not None
    try:
        async for text in ws:
            try:
                frame: dict[str, Any] = _decode(text)
            except msgspec.DecodeError:
                await ws.close(1007, "bad frame")
                return
            t = frame.get("t")
            if t == "hello":
                await ws.send(_encode({"t": "welcome", "v": 1, "re": frame.get("id")}).decode())
            elif t == "rec" and isinstance(frame.get("data"), str):
                raw = frame["data"].encode()
                packed = _zstd.compress(raw)
                counters.batches += 1
                counters.events += frame["data"].count('"timestamp":')
                counters.raw_bytes += len(raw)
                counters.stored_bytes += len(packed)
                reply = {
                    "t": "recorded",
                    "re": frame.get("id"),
                    "session": frame.get("session"),
                    "seq": frame.get("seq"),
                    "duplicate": False,
                }
                appender.append(packed, (ws, _encode(reply).decode()))
            else:
                await ws.send(_encode({"t": "error", "code": 202, "re": frame.get("id")}).decode())
    except ConnectionClosed:
        pass


def healthz(connection: ServerConnection, request: Request) -> Response | None:
    if request.path != "/healthz":
        return None
    body = json.dumps({"recordings": vars(counters)}).encode()
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return Response(HTTPStatus.OK.value, "OK", headers, body)


async def main(host: str, port: int, data: Path) -> None:
    global appender
    data.mkdir(parents=True, exist_ok=True)
    appender = GroupCommit(
        "ingest-writer", open_file(data / "ingest.log", FILE_BYTES, _framed), _reply
    )
    appender.start()
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with serve(
        handler,
        host,
        port,
        subprotocols=[Subprotocol("chatserver.json")],
        process_request=healthz,
        compression=None,
        max_size=1024 * 1024,
        backlog=4096,
    ):
        print(f"ingest floor listening on {host}:{port}", flush=True)
        await stop
    appender.stop()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--loop", choices=("asyncio", "uvloop"), default="uvloop", help="the event loop")
    args = p.parse_args()
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(main(args.host, args.port, args.data))
    else:
        asyncio.run(main(args.host, args.port, args.data))
