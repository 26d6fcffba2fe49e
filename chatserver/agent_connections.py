"""Agents' connections in this process: tokens, who is connected, the grace period (the hub's part).

``AgentConnections`` is a part of ``Hub`` (its base class), kept apart as one
concern: an agent's hello token and its check, the agent's live connections
here, and the grace period an agent who dropped keeps their chats for
(docs/routing.md) before they are requeued, also when a shared router
reports agents of a process that died.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from . import logins
from .broker import Broker
from .conversations import Conversations, frame_event, site_visitors_channel
from .logins import Grant
from .routing import Router
from .security import Signer
from .session import Session
from .store import Store
from .types import Agent, ConversationId, Site


class AgentConnections:
    """Agent tokens, connections and grace periods (see the module docstring)."""

    if TYPE_CHECKING:  # what it uses of Hub, which inherits it
        store: Store
        broker: Broker
        router: Router
        signer: Signer
        convs: Conversations
        grace: float
        _agent_sessions: dict[str, set[Session]]
        _grace: dict[str, asyncio.TimerHandle]

        def spawn(self, coro: Awaitable[Any]) -> None: ...
        async def site(self, site_id: str) -> Site: ...

    def agent_token(self, grant: Grant) -> str:
        """A token for an agent's ``hello``, valid as long as the sign-in ``grant``."""
        return logins.token(self.signer, grant)

    async def agent_from_token(self, token: str) -> Agent | None:
        """The agent of a valid token: signed, unexpired, its sign-in not ended, not disabled."""
        grant = logins.from_token(self.signer, token)
        if grant is None:
            return None
        agent = await self.store.get_agent(grant.agent_id)
        if agent is None or agent.disabled or await logins.ended(self.store, grant):
            return None
        return agent

    def agent_connected(self, agent_id: str, session: Session) -> None:
        """One more live connection of an agent: any grace period is over."""
        self._agent_sessions.setdefault(agent_id, set()).add(session)
        grace = self._grace.pop(agent_id, None)
        if grace is not None:
            grace.cancel()

    def agent_sessions(self, agent_id: str) -> list[Session]:
        """This process's live connections of an agent."""
        return list(self._agent_sessions.get(agent_id, ()))

    def all_agent_sessions(self) -> list[Session]:
        """This process's live connections of every agent."""
        return [session for sessions in self._agent_sessions.values() for session in sessions]

    async def agents_changed(self, site: Site) -> None:
        """Routing after agents came, went or changed status; tell visitors the count.

        The count is published every time, and every process's fan-out gives
        a visitor's connection the ``agents`` frame only when the count differs
        from the one it was last told (``Session.agents_online``, from its
        ``welcome`` on).  A count remembered per process instead would repeat
        a number another process announced, or hold back one it had announced
        itself before another process announced a different one.
        """
        await self.convs.route(site)
        online = await self.router.available_agents(site.id)
        frame = {"t": "agents", "online": online}
        await self.broker.publish(site_visitors_channel(site.id), frame_event(frame))

    def _start_grace(self, agent_id: str, site_id: str) -> None:
        if agent_id in self._grace:
            return
        loop = asyncio.get_running_loop()
        self._grace[agent_id] = loop.call_later(
            self.grace, lambda: self.spawn(self._grace_over(agent_id, site_id))
        )

    async def _grace_over(self, agent_id: str, site_id: str) -> None:
        self._grace.pop(agent_id, None)
        if agent_id in self._agent_sessions:
            return
        convs = await self.router.agent_gone(agent_id)
        site = await self.site(site_id)
        for conv_id in convs:
            await self.convs.requeue(site, conv_id, [agent_id])
        await self.agents_changed(site)

    async def _expired(self, site_id: str, pairs: list[tuple[str, ConversationId]]) -> None:
        """Requeue chats a shared router took from agents whose processes died, and
        route the site (also with no chats: agents silent a while were heard again)."""
        site = await self.site(site_id)
        for agent_id, conv_id in pairs:
            await self.convs.requeue(site, conv_id, [agent_id])
        await self.agents_changed(site)
