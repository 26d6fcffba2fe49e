"""The load generator as the coordinator sees it: a pool of worker processes.

Groups (a site with its agents and visitors) are dealt out to workers whole,
so that every conversation lives in one worker.  Each worker is pinned to
one generator core (round-robin); on a machine with two cores that means one
worker on the core the server does not use.  ``--workers`` starts more
processes when one saturates and there are cores for them.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from multiprocessing.connection import Connection
from typing import Any

from .worker import worker_main


class GeneratorError(RuntimeError):
    pass


class Generator:
    def __init__(
        self,
        spec: dict[str, Any],
        groups: list[dict[str, Any]],
        workers: int,
        cores: list[int] | None,
    ) -> None:
        workers = max(1, min(workers, len(groups) or 1))
        shares: list[list[dict[str, Any]]] = [[] for _ in range(workers)]
        sizes = [0] * workers
        for g in sorted(groups, key=lambda g: -len(g["visitors"])):
            i = sizes.index(min(sizes))
            shares[i].append(g)
            sizes[i] += len(g["visitors"]) + len(g["agents"])
        ctx = multiprocessing.get_context("spawn")
        self.conns: list[Connection] = []
        self.procs: list[Any] = []
        for i in range(workers):
            parent, child = ctx.Pipe()
            wspec = {**spec, "groups": shares[i], "index": i}
            pin = [cores[i % len(cores)]] if cores else None
            proc = ctx.Process(target=worker_main, args=(child, wspec, pin), daemon=True)
            proc.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(proc)

    def command(self, cmd: dict[str, Any], timeout: float = 300.0) -> list[dict[str, Any]]:
        """Send ``cmd`` to every worker; return their replies (raise if one failed)."""
        for conn in self.conns:
            conn.send(cmd)
        return self.collect(timeout, cmd["op"])

    def send(self, cmd: dict[str, Any], to: list[int] | None = None) -> None:
        for i, conn in enumerate(self.conns):
            if to is None or i in to:
                conn.send(cmd)

    def collect(self, timeout: float, what: str) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        replies: list[dict[str, Any]] = []
        for i, conn in enumerate(self.conns):
            remaining = deadline - time.monotonic()
            if not conn.poll(max(0.0, remaining)):
                raise GeneratorError(f"worker {i} did not answer {what!r} in {timeout:.0f}s")
            reply = conn.recv()
            if not reply.get("ok"):
                raise GeneratorError(f"worker {i} failed {what!r}: {reply.get('error')}")
            replies.append(reply)
        return replies

    def close(self) -> None:
        for conn in self.conns:
            with contextlib.suppress(BrokenPipeError, OSError):
                conn.send({"op": "stop"})
        for conn in self.conns:
            try:
                if conn.poll(5):
                    conn.recv()
            except (EOFError, OSError):
                pass
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
