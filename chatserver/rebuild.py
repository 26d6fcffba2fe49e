"""Rebuilding the shared routing state from the record after Redis lost it.

When Redis holds only coordination (fan-out, presence, routing), losing its
data (a FLUSHALL, a restart without persistence, a failover to an empty
replica) loses no record: conversations, messages and agents live in the
record store.  ``RedisRouter`` notices the loss (its epoch key is gone, or a
site's state is missing), registers this process's own agents again and
calls ``rebuild_routing``, which restores what the record says is open:

* every agent of every site is known again (``track_agent``), so chats held
  by an agent connected nowhere are requeued after the grace period;
* every queued conversation is back in its site's queue (in ``queued_at``
  order) and every active one counts toward its agents' load;
* each site's queue is routed, so visitors who waited meanwhile are served.

Every process does this when it notices (``restore`` is idempotent), so
agents connected to any process are counted.  Presence heals by itself:
each process writes its own entries again on its next heartbeat, and the
rebuild runs that heartbeat at once.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .types import ConvState

if TYPE_CHECKING:
    from .hub import Hub

log = logging.getLogger("chatserver.rebuild")


async def rebuild_routing(hub: Hub) -> None:
    beat = getattr(hub.presence, "beat", None)
    if beat is not None:
        await beat()
    restored = 0
    for site in await hub.store.list_sites():
        for agent in await hub.store.list_agents(site.id):
            await hub.router.track_agent(agent)
        for conv in await hub.store.list_conversations(
            site.id, [ConvState.QUEUED, ConvState.ACTIVE], limit=100_000
        ):
            await hub.router.restore(conv)
            restored += 1
        await hub.agents_changed(site)  # routes the queue, tells visitors the count
    log.warning("routing state rebuilt from the record: %d open conversations", restored)
