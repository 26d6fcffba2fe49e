"""The Redis key layout's version, with numbered steps as SQLite's schema has.

The key ``<prefix>layout`` holds the version of the key layout the data
follows (the layout is described in the docstring of ``chatserver/store/redis/engine.py``).
``STEPS`` is the ordered list of steps; step ``n`` brings the data from
layout ``n - 1`` to ``n``.  ``migrate`` runs when ``RedisStore`` starts,
before it serves anything: it runs the steps the data lacks, raising the
version after each one, and refuses (``StoreError``) data whose layout is
newer than the last step: a newer chatserver wrote it, and this one would
misread it.

Step 1 is the layout as it stood when layout versions began: it changes no
key, so data written before the version key existed (the key is absent, 0)
and an empty database both become layout 1 on their first start.

Redis cannot run a step and its version bump as one transaction, so a step
must be safe to run again: a process that dies half-way leaves the version
where it was, and the next start runs the step again.  Several processes
may start at once; each runs the steps it finds missing, and the version
moves only forward (``lua/set_layout.lua``).  A step that cannot run beside
an older chatserver still serving needs every process stopped first; say so
in docs/storage.md ("Schema versions and migrations") when you add it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib import resources

from redis.asyncio import Redis

from .errors import StoreError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Step:
    """Layout ``version``: ``apply(client, prefix)`` brings data from ``version - 1`` to it."""

    version: int
    name: str
    apply: Callable[[Redis, str], Awaitable[None]]


async def _as_it_is(client: Redis, prefix: str) -> None:
    """Layout 1 is what chatserver wrote before layout versions: nothing to change."""


STEPS: tuple[Step, ...] = (Step(1, "the layout as layout versions began", _as_it_is),)

_SET_LAYOUT = (resources.files(__package__) / "lua" / "set_layout.lua").read_text()


def layout_key(prefix: str) -> str:
    """The key holding the layout version of the data under ``prefix``."""
    return f"{prefix}layout"


async def layout(client: Redis, prefix: str) -> int:
    """The layout version of the data under ``prefix`` (0: no version key yet)."""
    return _version(await client.get(layout_key(prefix)), prefix)


async def migrate(
    client: Redis, prefix: str, steps: Sequence[Step] = STEPS, *, where: str = "Redis"
) -> list[int]:
    """Bring the data under ``prefix`` to the last of ``steps``; the versions applied.

    Raises ``StoreError`` when the data's layout is newer than the last step
    (``where`` names the server in the message); a step's exception
    propagates with the version left at the step before it.  Redis errors
    propagate as redis-py exceptions (the caller turns them into
    ``StoreError``).
    """
    latest = steps[-1].version if steps else 0
    if [s.version for s in steps] != list(range(1, latest + 1)):
        raise ValueError("layout steps must be numbered 1, 2, 3... in order")
    found = await layout(client, prefix)
    applied: list[int] = []
    for step in steps:
        _refuse_newer(found, latest, prefix, where)
        if found >= step.version:
            continue
        await step.apply(client, prefix)
        now = await client.eval(
            _SET_LAYOUT, 1, layout_key(prefix), str(step.version - 1), str(step.version)
        )
        found = _version(now, prefix)
        if found == step.version:
            applied.append(step.version)
            log.info("%s (prefix %r): key layout version %d (%s)", where, prefix, found, step.name)
    _refuse_newer(found, latest, prefix, where)
    return applied


def _version(value: object, prefix: str) -> int:
    if value is None:
        return 0
    text = value.decode() if isinstance(value, bytes) else str(value)
    if not text.isdigit():
        raise StoreError(f"{layout_key(prefix)} holds {text[:20]!r}, not a layout version")
    return int(text)


def _refuse_newer(found: int, latest: int, prefix: str, where: str) -> None:
    if found > latest:
        raise StoreError(
            f"{where} (key prefix {prefix!r}) has key layout version {found}, newer than"
            f" this chatserver knows (up to {latest}): it was written by a newer chatserver;"
            " upgrade chatserver (or restore the backup taken before the upgrade)"
        )
