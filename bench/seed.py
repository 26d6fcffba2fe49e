"""Seed chatserver's SQLite file directly, before the server starts.

Our own copy of the tests' ``seed`` helper (``bench`` does not import
``tests``): sites and agents are written through ``SQLiteStore`` so that the
run does not pay for hundreds of ``agent add`` commands.  Every agent gets
the same password; its hash is computed once (password hashing is deliberately slow).
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

import httpx

from chatserver.security import hash_password
from chatserver.store_sqlite import SQLiteStore
from chatserver.types import Role, SiteSettings

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


async def _seed(db: Path, sites: list[tuple[int, int]], routing: str) -> list[SeededSite]:
    store = SQLiteStore(db)
    await store.start()
    made: list[SeededSite] = []
    try:
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
    finally:
        await store.close()
    return made


def seed(
    data: Path, sites: list[tuple[int, int]], routing: str = "auto", root: Path | None = None
) -> list[SeededSite]:
    """Create one site per ``(agents, capacity)`` pair in ``data/chatserver.db``.

    ``root``: the checkout whose server will read the file (``bench.probe
    --base``): it is written by that checkout's own code, in a subprocess, so
    an older server finds the schema version it knows.
    """
    data.mkdir(parents=True, exist_ok=True)
    if root is None or root.resolve() == ROOT:
        return asyncio.run(_seed(data / "chatserver.db", sites, routing))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "bench.seed", str(data), json.dumps(sites), routing],
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return [SeededSite(d["key"], d["agents"]) for d in json.loads(done.stdout)]


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
    made = seed(Path(sys.argv[1]), [tuple(x) for x in json.loads(sys.argv[2])], sys.argv[3])
    print(json.dumps([{"key": m.key, "agents": m.agents} for m in made]))
