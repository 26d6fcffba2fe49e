"""The ``ingest`` scenario: session recording batches into one chatserver process.

Workload: the batches of a real recorded visit of the demo shop
(``fixtures/demo_session.json.gz``, made by ``python -m bench.record_demo``),
sent by many visitor connections as the widget sends them: a ``rec`` frame
(JSON text, the batch's own JSON in ``data``) per batch, one at a time per
connection, each waiting for its ``recorded`` reply (stored, fsynced and
indexed), at most ``per_conn_rate`` batches a second per connection (under
the protocol's 20 frames/s).  Each connection replays the visit over and
over, each time as a new recording.

Reported: events and batches acknowledged per second, the server's CPU, and
what storage costs: stored bytes per event and per minute of the recorded
visit against its raw JSON size, for the codec the server uses, plus the
gzip/zstd comparison on the same batches (``compression``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import json
import multiprocessing
import os
import shutil
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import zstandard

from chatserver.cli.admin import with_store
from chatserver.store import Store
from chatserver.types import SiteSettings
from recordings.format import HEADER_SIZE

from .backing import start_chatserver, store_urls
from .servers import ServerProcess, Target

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "demo_session.json.gz"


@dataclass
class Ingest:
    connections: int = 200
    per_conn_rate: float = 15.0  # batches per second per connection, at most
    warmup: float = 2.0
    measure: float = 10.0
    dense: bool = False  # batches full of incremental events (a busy visitor), not as recorded
    # > 0: a fixed amount of work instead of a time window: each connection sends the
    # whole visit this many times and the server's CPU is measured from the first
    # batch to the last reply, so the mix of batches does not depend on speed.
    visits: int = 0
    compression: bool = True  # the gzip/zstd comparison (seconds of CPU; smoke runs skip it)


def dense_batches(
    batches: list[list[dict[str, Any]]], limit: int = 32 * 1024
) -> list[list[dict[str, Any]]]:
    """The recorded visit's first batch (its full snapshot), then 40 batches of its
    incremental events (mouse, scroll, input) cycled and cut at ``limit`` bytes of
    JSON or 500 events, as the widget cuts a busy visitor's batches."""
    moves = [e for b in batches for e in b if e["type"] == 3]
    out = [batches[0]]
    t = max(e["timestamp"] for e in batches[0])
    i = 0
    for _ in range(40):
        batch: list[dict[str, Any]] = []
        size = 2
        while size < limit and len(batch) < 500:
            t += 20
            event = {**moves[i % len(moves)], "timestamp": t}
            i += 1
            batch.append(event)
            size += len(json.dumps(event, separators=(",", ":"))) + 1
        out.append(batch)
    return out


def load_batches(path: Path = FIXTURE) -> list[list[dict[str, Any]]]:
    batches: list[list[dict[str, Any]]] = json.loads(gzip.decompress(path.read_bytes()))
    return batches


def _raw(batch: list[dict[str, Any]]) -> bytes:
    return json.dumps(batch, separators=(",", ":"), ensure_ascii=False).encode()


def compression(batches: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """gzip and zstd levels on whole batches: sizes (with frame headers) and speed."""
    raws = [_raw(b) for b in batches]
    events = sum(len(b) for b in batches)
    stamps = [e["timestamp"] for b in batches for e in b]
    minutes = (max(stamps) - min(stamps)) / 60000.0
    raw_total = sum(map(len, raws))
    codecs: dict[str, Any] = {
        "gzip-1": lambda r: gzip.compress(r, 1, mtime=0),
        "gzip-6": lambda r: gzip.compress(r, 6, mtime=0),
        "gzip-9": lambda r: gzip.compress(r, 9, mtime=0),
        "zstd-1": zstandard.ZstdCompressor(level=1).compress,
        "zstd-2": zstandard.ZstdCompressor(level=2).compress,
        "zstd-3": zstandard.ZstdCompressor(level=3).compress,
        "zstd-9": zstandard.ZstdCompressor(level=9).compress,
        "zstd-19": zstandard.ZstdCompressor(level=19).compress,
    }
    inflate: dict[str, Any] = {
        "gzip": lambda c, n: zlib.decompressobj(wbits=31).decompress(c),
        "zstd": lambda c, n: zstandard.ZstdDecompressor().decompress(c, max_output_size=n),
    }
    out: dict[str, Any] = {
        "batches": len(batches),
        "events": events,
        "minutes": round(minutes, 2),
        "raw_bytes": raw_total,
        "raw_bytes_per_event": round(raw_total / events, 1),
        "raw_bytes_per_minute": round(raw_total / minutes),
        "codecs": {},
    }
    for name, fn in codecs.items():
        rounds = 3
        t = time.perf_counter()
        for _ in range(rounds):
            packed = [fn(r) for r in raws]
        took = (time.perf_counter() - t) / rounds
        family = name.split("-")[0]
        t = time.perf_counter()
        for c, r in zip(packed, raws, strict=True):
            inflate[family](c, len(r))
        back = time.perf_counter() - t
        stored = sum(map(len, packed)) + HEADER_SIZE * len(packed)
        out["codecs"][name] = {
            "stored_bytes": stored,
            "ratio": round(raw_total / stored, 2),
            "bytes_per_event": round(stored / events, 1),
            "bytes_per_minute": round(stored / minutes),
            "compress_mb_s": round(raw_total / took / 1e6, 1),
            "decompress_mb_s": round(raw_total / back / 1e6, 1),
        }
    return out


# -- the load generator (a process on the generator's cores) -----------------------


async def _connection(
    url: str, key: str, frames: list[tuple[str, int]], conf: Ingest, t0: float, n: int
) -> dict[str, float]:
    import websockets
    from websockets.typing import Subprotocol

    counts = {"events": 0.0, "batches": 0.0, "errors": 0.0, "events_all": 0.0}
    stop = t0 + conf.warmup + conf.measure if not conf.visits else float("inf")
    protocols = [Subprotocol("chatserver.json")]
    async with websockets.connect(url, subprotocols=protocols, compression=None) as ws:
        await ws.send(json.dumps({"t": "hello", "v": 1, "kind": "visitor", "site": key, "id": 0}))
        welcome = json.loads(await ws.recv())
        assert welcome["t"] == "welcome", welcome
        while time.monotonic() < t0:
            await asyncio.sleep(0.01)
        rid, cycle, gap = 0, 0, 1.0 / conf.per_conn_rate
        nxt = time.monotonic()
        while time.monotonic() < stop and (not conf.visits or cycle < conf.visits):
            session = f"bench{n:05d}x{cycle:05d}xx"
            for seq, (text, count) in enumerate(frames):
                now = time.monotonic()
                if now >= stop:
                    break
                if now < nxt:
                    await asyncio.sleep(nxt - now)
                nxt = max(nxt + gap, time.monotonic() - gap)
                rid += 1
                await ws.send(  # as the widget sends it: the batch's JSON text in `data`
                    f'{{"t":"rec","id":{rid},"session":"{session}","seq":{seq},'
                    f'"part":0,"parts":1,"data":{text}}}'
                )
                while True:
                    reply = json.loads(await ws.recv())
                    if reply.get("re") == rid or (reply.get("t") == "error" and "re" not in reply):
                        break
                done = time.monotonic()
                if reply.get("t") == "recorded":
                    counts["events_all"] += count
                    if conf.visits or t0 + conf.warmup <= done <= stop:
                        counts["events"] += count
                        counts["batches"] += 1
                else:
                    counts["errors"] += 1
            cycle += 1
    return counts


def _worker(
    urls: list[str],
    key: str,
    conf: Ingest,
    t0: float,
    first: int,
    n: int,
    cores: list[int] | None,
    q: Any,
) -> None:
    if cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(cores))
    batches = load_batches()
    if conf.dense:
        batches = dense_batches(batches)
    frames = [(json.dumps(json.dumps(b, separators=(",", ":"))), len(b)) for b in batches]
    start = time.process_time()

    async def run() -> list[dict[str, float]]:
        return list(
            await asyncio.gather(
                *(
                    _connection(urls[(first + i) % len(urls)], key, frames, conf, t0, first + i)
                    for i in range(n)
                )
            )
        )

    results = asyncio.run(run())
    total = {k: sum(r[k] for r in results) for k in results[0]}
    total["cpu_s"] = time.process_time() - start
    q.put(total)


def _seed(data: Path, urls: dict[str, str]) -> str:
    async def work(store: Store) -> str:
        site = await store.create_site("Bench recordings", settings=SiteSettings(recording=True))
        return site.key

    data.mkdir(parents=True, exist_ok=True)
    return asyncio.run(with_store(data, work, urls.get("redis_url"), urls.get("database_url")))


def _recording_stats(server: Any) -> dict[str, float]:
    """``/healthz``'s recordings counters, summed over the target's processes."""
    total: dict[str, float] = {}
    for http in getattr(server, "https", [server.http]):
        for k, v in httpx.get(f"{http}/healthz").json()["recordings"].items():
            if isinstance(v, int | float):
                total[k] = total.get(k, 0) + v
    return total


def _threads(server: Any) -> dict[str, float]:
    """CPU seconds by thread name of a one-process server (empty for several)."""
    fn = getattr(server, "threads_cpu_seconds", None)
    return dict(fn()) if fn is not None else {}


def _backing(server: Any) -> float:
    fn = getattr(server, "backing_cpu_seconds", None)
    return float(fn()) if fn is not None else 0.0


def ingest(env: Any, target: Target, conf: Ingest) -> dict[str, Any]:
    """Acknowledged ``rec`` batches per second into one chatserver process."""
    data = env.tmp / "ingest"
    shutil.rmtree(data, ignore_errors=True)
    urls = store_urls(target, getattr(env, "backing", None))
    server: Any
    if target.chatserver:
        key = _seed(data, urls)
        server = start_chatserver(env, target, data, urls)
    else:  # a floor (bench.baseline_ingest): no sites, no keys
        key = ""
        server = ServerProcess(target, data, env.cores, env.server_root).start()
    has_backing = bool(urls)
    try:
        before = _recording_stats(server)
        workers = max(1, env.workers)
        q: Any = multiprocessing.get_context("fork").Queue()
        t0 = time.monotonic() + 1.0 + conf.connections / 500
        per = [
            conf.connections // workers + (i < conf.connections % workers) for i in range(workers)
        ]
        procs, first = [], 0
        for n in per:
            p = multiprocessing.get_context("fork").Process(
                target=_worker,
                args=(server.urls, key, conf, t0, first, n, env.cores.generator, q),
            )
            p.start()
            procs.append(p)
            first += n
        if conf.visits:
            while time.monotonic() < t0:
                time.sleep(0.005)
            cpu0, started = server.cpu_seconds(), time.monotonic()
            b0, loop0 = _backing(server), server.loop_cpu_seconds()
            threads0 = _threads(server)
            parts = [q.get(timeout=600) for _ in procs]
            took = time.monotonic() - started
            cpu = (server.cpu_seconds() - cpu0) / took
            loop = (server.loop_cpu_seconds() - loop0) / took
            backing = (_backing(server) - b0) / took
            threads1 = _threads(server)
            conf = dataclasses.replace(conf, measure=took)  # rates over the whole run
        else:
            while time.monotonic() < t0 + conf.warmup:
                time.sleep(0.05)
            cpu0, b0 = server.cpu_seconds(), _backing(server)
            loop0, threads0 = server.loop_cpu_seconds(), _threads(server)
            time.sleep(conf.measure)
            cpu = (server.cpu_seconds() - cpu0) / conf.measure
            loop = (server.loop_cpu_seconds() - loop0) / conf.measure
            threads1 = _threads(server)
            backing = (_backing(server) - b0) / conf.measure
            parts = [q.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(30)
        after = _recording_stats(server)
    finally:
        server.stop()
    got = {k: sum(p[k] for p in parts) for k in parts[0]}
    events = after.get("events", 0) - before.get("events", 0)
    stored = after.get("stored_bytes", 0) - before.get("stored_bytes", 0)
    raw = after.get("raw_bytes", 0) - before.get("raw_bytes", 0)
    blobs = data / "blobs"  # chunks (and segments of recordings from before them)
    blob_bytes = sum(p.stat().st_size for p in [*blobs.rglob("*.chk"), *blobs.rglob("*.seg")])
    result = {
        "config": dataclasses.asdict(conf),
        "events_per_s": round(got["events"] / conf.measure),
        "batches_per_s": round(got["batches"] / conf.measure),
        "errors": int(got["errors"]),
        "server_cpu": round(cpu, 2),
        # what one busy core would do: the machine may be shared (load average)
        "events_per_cpu_s": round(got["events"] / conf.measure / cpu) if cpu > 0 else None,
        # where a batch's CPU goes: the event loop's thread, and the others
        # (SQLite's writer, the blob threads) together
        "cpu_us_per_batch": round(cpu * conf.measure / got["batches"] * 1e6)
        if got["batches"]
        else None,
        "loop_cpu_us_per_batch": round(loop * conf.measure / got["batches"] * 1e6)
        if got["batches"]
        else None,
        # the same by thread (the server's names: loop, sqlite, blobs, ...)
        "thread_us_per_batch": {
            name: round((threads1[name] - threads0.get(name, 0.0)) / got["batches"] * 1e6, 1)
            for name in sorted(threads1)
            if threads1[name] - threads0.get(name, 0.0) > 0
        }
        if got["batches"]
        else {},
        "processes": target.processes,
        # Redis and PostgreSQL (bench.backing), on the server's core too; None for SQLite
        "backing_cpu": round(backing, 2) if has_backing else None,
        "load_average": os.getloadavg()[0],
        "generator_cpu_s": round(got["cpu_s"], 1),
        "stored_bytes_per_event": round(stored / events, 1) if events else None,
        "raw_bytes_per_event": round(raw / events, 1) if events else None,
        "ratio": round(raw / stored, 2) if stored else None,
        "segments_bytes": blob_bytes,
        "server_counts": {k: after.get(k, 0) - before.get(k, 0) for k in after},
        "compression": compression(load_batches()) if conf.compression else None,
    }
    env.log(
        f"    {result['events_per_s']} events/s ({result['batches_per_s']} batches/s), "
        f"server CPU {cpu:.2f} ({result['events_per_cpu_s']} events per CPU second), "
        f"{result['stored_bytes_per_event']} B/event stored; "
        f"{result['cpu_us_per_batch']} us CPU per batch, "
        f"{result['loop_cpu_us_per_batch']} of them on the event loop's thread"
    )
    return result
