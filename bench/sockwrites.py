"""``python -m bench.sockwrites``: CPU per message of the socket writes alone, one per
frame or one per connection.

What the cork in ``chatserver/web/uvicorn_ws.py`` saves, without a server:
asyncio transports on loopback TCP (the event loop pinned to core 0, a
reader process draining every socket on core 1), ``--messages`` messages
each writing what a relayed visitor message writes (an ``ack`` and a
``msg`` to the visitor, a ``msg`` to the agent), ``--per-iteration`` of
them per loop iteration, over ``--pairs`` visitor/agent connection pairs.
``frame`` writes each frame on its own (three writes per message),
``connection`` the visitor's two frames joined (two).  Rounds alternate
the two; it prints this process's CPU µs per message (user and system:
on loopback the kernel's receive path runs in the sender's time too).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import selectors
import socket
import statistics

ACK = b"\x82\x30" + b"a" * 48  # a binary frame of 48 bytes, about an ack's size
MSG = b"\x82\x7e\x00\x80" + b"m" * 128  # and of 128, about a msg's


def _drain(port: int, connections: int) -> None:
    """Connect ``connections`` sockets and read them until the server closes them all."""
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(connections)]
    try:
        sel = selectors.DefaultSelector()
        for s in socks:
            sel.register(s, selectors.EVENT_READ)
        left = len(socks)
        while left:
            for key, _ in sel.select():
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                if not sock.recv(1 << 16):
                    sel.unregister(sock)
                    left -= 1
    finally:
        for s in socks:
            s.close()


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def run(joined: bool, args: argparse.Namespace) -> float:
    """CPU µs per message, writing the visitor's frames ``joined`` or not."""
    transports: list[asyncio.Transport] = []
    ready = asyncio.Event()
    want = 2 * args.pairs

    class Server(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            transports.append(transport)
            if len(transports) == want:
                ready.set()

    loop = asyncio.get_running_loop()
    server = await loop.create_server(Server, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader = multiprocessing.Process(target=_drain, args=(port, want))
    reader.start()
    await ready.wait()
    if reader.pid is not None and hasattr(os, "sched_setaffinity") and os.cpu_count() != 1:
        os.sched_setaffinity(reader.pid, {1})
    start = _cpu()
    for k in range(args.messages):
        visitor, agent = transports[2 * (k % args.pairs)], transports[2 * (k % args.pairs) + 1]
        if joined:
            visitor.write(ACK + MSG)
        else:
            visitor.write(ACK)
            visitor.write(MSG)
        agent.write(MSG)
        if k % args.per_iteration == args.per_iteration - 1:
            await asyncio.sleep(0)
    spent = _cpu() - start
    for transport in transports:
        transport.close()
    server.close()
    await asyncio.sleep(0.2)  # the buffers flushed, so the reader sees every close
    await loop.run_in_executor(None, reader.join)
    return spent / int(args.messages) * 1e6


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.sockwrites", description=__doc__.split("\n")[0]
    )
    p.add_argument("--messages", type=int, default=20_000)
    p.add_argument("--pairs", type=int, default=100)
    p.add_argument("--per-iteration", type=int, default=10)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    runs: dict[str, list[float]] = {"frame": [], "connection": []}
    for _ in range(args.rounds):
        for name in runs:
            runs[name].append(asyncio.run(run(name == "connection", args)))
    print(
        f"{args.messages} messages (ack + msg to the visitor, msg to the agent),"
        f" {args.per_iteration} per loop iteration: CPU µs per message"
    )
    for name, values in runs.items():
        shown = ", ".join(f"{v:.1f}" for v in values)
        print(f"  one write per {name:>10}: median {statistics.median(values):.1f}   runs: {shown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
