"""Routing: which agent gets which conversation, and the waiting queue.

The ``Router`` seam holds the routing state (agents' status, capacity and
load; each site's FIFO queue) and makes every decision atomically: two
processes asking at once can never push an agent past their capacity.  The
hub turns decisions into store writes and events.

Policy (``pick``): among agents who are connected, online, below capacity and
serve the conversation's department, prefer the visitor's previous agent,
then the least loaded, then the one who waited longest since an assignment.
A conversation with no department can go to any agent; an agent serves a
department when it is in their list.

Status: the router holds the status each agent chose (``online``, ``away``,
``offline``) for the agent, not for a connection: every tab and every
process sees the same one, and it survives a reconnect (to any process)
until the grace period after the agent's last connection ends; then it is
forgotten and the agent's next connection starts ``online``.

Queue: one FIFO per site ordered by ``queued_at``.  ``drain`` walks it in
order and gives each conversation to the best free agent who serves it, so a
conversation another agent cannot serve does not block the ones behind it.

A conversation is waiting (in the queue) or held (in agents' loads), never
both.  ``submit`` keeps that true against a join that overtakes it: a
waiting chat's ``queued`` record is published before ``submit``
(``Conversations.enqueue``), so an agent may ``attach`` it first; ``submit``
then leaves it to them, as it takes a chat from no agent (docs/routing.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from .types import (
    Agent,
    AgentId,
    AgentStatus,
    Conversation,
    ConversationId,
    DepartmentId,
    SiteId,
)


@dataclass(slots=True)
class AgentSlot:
    """What routing knows of one agent (``status``: the one they chose; ``None``: none)."""

    id: AgentId
    site_id: SiteId
    capacity: int
    departments: frozenset[DepartmentId]
    status: AgentStatus | None = None
    connected: bool = False
    convs: set[ConversationId] = field(default_factory=set)
    last_assigned: float = 0.0

    @property
    def available(self) -> bool:
        return self.connected and self.status is AgentStatus.ONLINE

    @property
    def has_room(self) -> bool:
        return len(self.convs) < self.capacity

    def serves(self, department: DepartmentId | None) -> bool:
        return department is None or department in self.departments


@dataclass(slots=True)
class Waiting:
    """A queued conversation."""

    conv_id: ConversationId
    site_id: SiteId
    queued_at: float
    department: DepartmentId | None = None
    preferred: AgentId | None = None
    exclude: frozenset[AgentId] = frozenset()


def pick(
    slots: Iterable[AgentSlot],
    department: DepartmentId | None,
    preferred: AgentId | None,
    exclude: frozenset[AgentId] = frozenset(),
) -> AgentSlot | None:
    """The best agent for a conversation, or ``None`` when nobody is free."""
    best: AgentSlot | None = None
    for slot in slots:
        if not (slot.available and slot.has_room and slot.serves(department)):
            continue
        if slot.id in exclude:
            continue
        if slot.id == preferred:
            return slot
        if best is None or (len(slot.convs), slot.last_assigned) < (
            len(best.convs),
            best.last_assigned,
        ):
            best = slot
    return best


Expired = Callable[[SiteId, list[tuple[AgentId, ConversationId]]], Awaitable[None]]


class Router(Protocol):
    """Routing state; every method is atomic with respect to the others."""

    async def start(self, on_expired: Expired | None = None) -> None:
        """Begin; ``on_expired`` gets chats of agents whose processes died.

        A shared router calls it (from one task per process) with the
        ``(agent, conversation)`` pairs it took from agents silent for longer
        than the grace period, for the hub to requeue, and with no pairs when
        agents silent a while are heard again (the hub routes the site's
        queue).  A process-local router never calls it: its own disconnects
        run the grace timer.
        """

    async def close(self) -> None: ...

    async def agent_connected(self, agent: Agent, status: AgentStatus | None) -> AgentStatus | None:
        """The agent has at least one live connection; returns the status they had chosen.

        ``status`` becomes the agent's status; with ``None`` the one they
        chose before (on any connection, any process) stays, or ``online``
        when there is none.  Returns the status held before (``None``: none
        was), so the caller knows the status now and whether it changed.
        """

    async def agent_disconnected(self, agent_id: AgentId) -> None:
        """The agent's last connection dropped: keep their chats, assign no more."""

    async def agent_gone(self, agent_id: AgentId) -> list[ConversationId]:
        """Grace period over: forget the agent's chats and status; return the chats.

        Does nothing (returns ``[]``) while the agent is connected somewhere.
        """

    async def set_status(self, agent_id: AgentId, status: AgentStatus | None) -> None:
        """The agent chose ``status``; ``None`` forgets it (no chats now, ``online`` on
        the next connection: an agent disabled by an admin)."""

    async def update_agent(self, agent: Agent) -> None:
        """Capacity or departments changed."""

    async def track_agent(self, agent: Agent) -> None:
        """Know an agent nobody connected yet, before ``restore`` gives it the chats the
        record says it holds: if it never connects, they are requeued after the grace."""

    async def restore(self, conv: Conversation) -> None:
        """Rebuild state from a stored open conversation (at start-up)."""

    async def submit(
        self,
        conv: Conversation,
        preferred: AgentId | None,
        exclude: frozenset[AgentId] = frozenset(),
    ) -> bool:
        """Put ``conv`` in its site's queue, unless an agent holds it; ``drain`` assigns.

        Agents in ``exclude`` (who just left or transferred it) are not given
        it again while it waits.  ``submit`` takes the chat from nobody: the
        caller detaches the agents who left it first.  An agent who holds
        it took it since the caller decided it waits (a ``join`` from its
        published ``queued`` record, on any process, even by an agent who
        just left it, or a ``drain`` elsewhere): then it stays theirs, nothing
        changes and ``submit`` returns ``False``.  Already queued, it is
        queued again in its place (``queued_at``) with the new department and
        exclusions.  The check and the change are one atomic step.
        """

    async def change_department(self, conv: Conversation) -> bool:
        """A waiting ``conv``'s department changed (renamed, or removed: ``None``).

        Only who may take it changes: it keeps its place (``queued_at``), the
        agents it excludes and its preferred agent (a fresh ``submit`` would
        drop those, and the agent who passed it on could get it back).
        Returns ``False``, changing nothing, when it waits in no queue (an
        agent holds it, or it is closed).  One atomic step.
        """

    async def drain(self, site_id: SiteId, now: float) -> list[tuple[ConversationId, AgentId]]:
        """Assign queued conversations while agents have room, in FIFO order."""

    async def attach(self, conv_id: ConversationId, agent_id: AgentId, now: float) -> bool:
        """Add the agent to a conversation if they are available with room.

        Takes the conversation out of the queue when it was waiting.
        """

    async def detach(self, conv_id: ConversationId, agent_id: AgentId) -> None: ...

    async def remove(self, conv_id: ConversationId) -> None:
        """The conversation closed: out of the queue and every agent's load."""

    async def queue(self, site_id: SiteId) -> list[ConversationId]:
        """The site's queue, first in line first."""

    async def available_agents(
        self, site_id: SiteId, department: DepartmentId | None = None
    ) -> int:
        """How many agents of the site are connected and online.

        With ``department``, only those who serve it (have it in their list).
        """

    async def load(self, agent_id: AgentId) -> int: ...
