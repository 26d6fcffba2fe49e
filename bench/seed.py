"""Seed chatserver's record directly, before the server starts.

Our own copy of the tests' ``seed`` helper (``bench`` does not import
``tests``): sites and agents are written through ``SQLiteStore`` so that the
run does not pay for hundreds of ``agent add`` commands.  Every agent gets
the same password; its hash is computed once (password hashing is
deliberately slow).  The record is the SQLite file, or Redis or PostgreSQL
when their URLs are given (``bench.backing``).
Agents then log in over HTTP once each (``login_all``), as the console does.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from chatserver.security import hash_password
from chatserver.types import Role, SiteSettings

if TYPE_CHECKING:
    from chatserver.store import Store

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench password, not secret"
_hash: str | None = None


def password_hash() -> str:
    global _hash
    if _hash is None:
        _hash = hash_password(PASSWORD)
    return _hash


@dataclass
class SeededSite:
    key: str
    agents: list[str] = field(default_factory=list)  # e-mails


async def _seed(store: Store, sites: list[tuple[int, int]], routing: str) -> list[SeededSite]:
    made: list[SeededSite] = []
    for n, (agents, capacity) in enumerate(sites):
        site = await store.create_site(f"Bench shop {n}", (), SiteSettings(routing=routing))
        seeded = SeededSite(site.key)
        for i in range(agents):
            email = f"agent{i}-{site.id}@bench.test"
            await store.create_agent(
                site.id, email, f"Agent {n}.{i}", password_hash(), Role.AGENT, capacity, ()
            )
            seeded.agents.append(email)
        made.append(seeded)
    return made


def seed(
    data: Path,
    sites: list[tuple[int, int]],
    routing: str = "auto",
    redis_url: str | None = None,
    database_url: str | None = None,
    root: Path | None = None,
) -> list[SeededSite]:
    """Create one site per ``(agents, capacity)`` pair in ``data/chatserver.db``
    (or in the Redis / PostgreSQL record the URLs name).

    ``root``: the checkout whose server will read the SQLite file (``bench.probe
    --base``): it is written by that checkout's own code, in a subprocess, so
    an older server finds the schema version it knows.
    """
    data.mkdir(parents=True, exist_ok=True)
    if root is not None and root.resolve() != ROOT:
        assert redis_url is None and database_url is None, "another checkout seeds SQLite only"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(root), str(ROOT), env.get("PYTHONPATH")])
        )
        done = subprocess.run(
            [sys.executable, "-m", "bench.seed", str(data), json.dumps(sites), routing],
            cwd=root,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        return [SeededSite(d["key"], d["agents"]) for d in json.loads(done.stdout)]
    from chatserver.cli.admin import with_store  # not at import: older checkouts lack it

    async def work(store: Store) -> list[SeededSite]:
        return await _seed(store, sites, routing)

    return asyncio.run(with_store(data, work, redis_url, database_url))


async def _seed_file(db: Path, sites: list[tuple[int, int]], routing: str) -> list[SeededSite]:
    """``_seed`` into the SQLite file ``db`` (any checkout's ``SQLiteStore``)."""
    from chatserver.store_sqlite import SQLiteStore

    store = SQLiteStore(db)
    await store.start()
    try:
        return await _seed(store, sites, routing)
    finally:
        await store.close()


def login_all(base_url: str, emails: list[str], threads: int = 4) -> dict[str, str]:
    """``POST /api/login`` once per agent; return e-mail → token."""

    def one(email: str) -> tuple[str, str]:
        with httpx.Client(timeout=60) as http:
            r = http.post(f"{base_url}/api/login", json={"email": email, "password": PASSWORD})
            r.raise_for_status()
            return email, str(r.json()["token"])

    with ThreadPoolExecutor(threads) as pool:
        return dict(pool.map(one, emails))


if __name__ == "__main__":  # ``seed(..., root=)``: run with that checkout's chatserver
    pairs = [(int(a), int(c)) for a, c in json.loads(sys.argv[2])]
    made = asyncio.run(_seed_file(Path(sys.argv[1]) / "chatserver.db", pairs, sys.argv[3]))
    print(json.dumps([{"key": m.key, "agents": m.agents} for m in made]))
