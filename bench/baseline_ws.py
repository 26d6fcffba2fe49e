"""Baseline 1: a bare ``websockets`` relay, the floor of what Python does.

``websockets.asyncio.server.serve`` with one handler coroutine per
connection: decode msgpack, let ``bench.pairing.Relay`` decide, encode once
per frame and ``broadcast`` it to the recipients (websockets' non-blocking
fan-out, which skips connections that are not writable).  Nothing is stored.

With ``--durable DIR`` each ``send`` is first appended to a SQLite file in
``DIR`` and its frames leave after the commit (``bench.baseline_durable``:
the floor of a durable server, the ``ws-relay-durable`` target).

Run: ``python -m bench.baseline_ws --port 8765 [--durable DIR]``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

import msgpack
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

from .baseline_durable import DurableLog, fresh, row_of
from .pairing import Member, Out, Relay

relay = Relay()
_pack = msgpack.Packer(use_bin_type=True).pack
durable: DurableLog | None = None  # --durable: sends wait for their commit


def _deliver(out: Out) -> None:
    for members, frame in out:
        broadcast([m.handle for m in members], _pack(frame))


async def handler(ws: ServerConnection) -> None:
    member: Member | None = None
    try:
        async for data in ws:
            frame = msgpack.unpackb(data) if isinstance(data, bytes) else None
            if not isinstance(frame, dict):
                continue
            if member is None:
                if frame.get("t") != "hello":
                    await ws.close(4100, "hello first")
                    return
                member, out = relay.hello(ws, frame)
            else:
                out = relay.handle(member, frame)
                if durable is not None and frame.get("t") == "send":
                    row = row_of(out)
                    if row is not None:
                        durable.append(row, out)
                        continue
            _deliver(out)
    except ConnectionClosed:
        pass  # clients that drop without a close frame are normal here
    finally:
        relay.gone(member)


async def main(host: str, port: int, data: Path | None = None, file: bool = False) -> None:
    global durable
    if data is not None:
        name = "relay.log" if file else "relay.db"
        durable = DurableLog(fresh(data / name), _deliver, file=file)
        durable.start()
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with serve(
        handler,
        host,
        port,
        compression=None,
        max_size=1024 * 1024,
        ping_interval=20,
        ping_timeout=20,
        backlog=4096,
    ):
        print(f"ws relay listening on {host}:{port}", flush=True)
        await stop
    if durable is not None:
        durable.stop()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument(
        "--loop", choices=("asyncio", "uvloop"), default="asyncio", help="the event loop"
    )
    p.add_argument(
        "--durable", type=Path, metavar="DIR", help="append each send to SQLite in DIR first"
    )
    p.add_argument("--file", action="store_true", help="with --durable: a plain file, not SQLite")
    args = p.parse_args()
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(main(args.host, args.port, args.durable, args.file))
    else:
        asyncio.run(main(args.host, args.port, args.durable, args.file))
