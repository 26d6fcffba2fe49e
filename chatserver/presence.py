"""The Presence seam: who is connected right now (a site's visitors, say).

Semantics every implementation keeps:

* ``add(key, member, info)`` marks ``member`` present under ``key`` for this
  process, with a small JSON-like ``info`` (last writer wins).  Calls nest:
  a member added twice by one process (two tabs) stays until removed twice.
* ``remove(key, member)`` undoes one ``add`` of this process.  The member
  stays present while any process still has it.
* ``update(key, member, info)`` replaces the info of a member this process
  holds, leaving the counts as they are (a visitor moved to another page).
* ``drop(key, member)`` forgets the member and its info now, whichever
  process added it (an erasure, after the member's sockets closed
  everywhere); another process's heartbeat may add its own entry again.
* ``members(key)`` maps every present member to its info; ``count(key)`` is
  its size.  Reads may lag writes of other processes by one heartbeat.
* Entries of a process that stops (even by kill -9) disappear at most
  ``ttl`` seconds after its last heartbeat.  One task per process refreshes
  all of that process's entries; there is no timer per connection.
"""

from __future__ import annotations

from typing import Protocol

from .types import JSON


class Presence(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def add(self, key: str, member: str, info: JSON) -> None: ...

    async def remove(self, key: str, member: str) -> None: ...

    async def drop(self, key: str, member: str) -> None: ...

    async def update(self, key: str, member: str, info: JSON) -> None: ...

    async def members(self, key: str) -> dict[str, JSON]: ...

    async def count(self, key: str) -> int: ...


def visitors_key(site_id: str) -> str:
    """The presence key of a site's connected visitors."""
    return f"site:{site_id}:visitors"
