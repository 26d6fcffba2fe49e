"""The in-process Router of the embedded backend.

All state lives in dicts of this process; methods never await, so each one
is atomic on the event loop.
"""

from __future__ import annotations

import bisect

from .routing import AgentSlot, Expired, Waiting, pick
from .types import (
    Agent,
    AgentId,
    AgentStatus,
    Conversation,
    ConversationId,
    ConvState,
    DepartmentId,
    SiteId,
)


class MemoryRouter:
    def __init__(self) -> None:
        self._agents: dict[AgentId, AgentSlot] = {}
        self._queues: dict[SiteId, list[Waiting]] = {}
        self._waiting: dict[ConversationId, Waiting] = {}

    async def start(self, on_expired: Expired | None = None) -> None:
        """Nothing to start: this process sees every disconnect itself."""

    async def close(self) -> None:
        pass

    # -- agents ----------------------------------------------------------

    def _slot(self, agent: Agent) -> AgentSlot:
        slot = self._agents.get(agent.id)
        if slot is None:
            slot = AgentSlot(agent.id, agent.site_id, agent.capacity, frozenset(agent.departments))
            self._agents[agent.id] = slot
        return slot

    async def agent_connected(self, agent: Agent, status: AgentStatus | None) -> AgentStatus | None:
        slot = self._slot(agent)
        slot.capacity = agent.capacity
        slot.departments = frozenset(agent.departments)
        slot.connected = True
        before = slot.status
        slot.status = status or before or AgentStatus.ONLINE
        return before

    async def agent_disconnected(self, agent_id: AgentId) -> None:
        slot = self._agents.get(agent_id)
        if slot is not None:
            slot.connected = False

    async def agent_gone(self, agent_id: AgentId) -> list[ConversationId]:
        slot = self._agents.get(agent_id)
        if slot is None or slot.connected:
            return []
        convs = sorted(slot.convs)
        slot.convs.clear()
        slot.status = None
        return convs

    async def set_status(self, agent_id: AgentId, status: AgentStatus | None) -> None:
        slot = self._agents.get(agent_id)
        if slot is not None:
            slot.status = status

    async def update_agent(self, agent: Agent) -> None:
        slot = self._agents.get(agent.id)
        if slot is not None:
            slot.capacity = agent.capacity
            slot.departments = frozenset(agent.departments)

    async def load(self, agent_id: AgentId) -> int:
        slot = self._agents.get(agent_id)
        return len(slot.convs) if slot else 0

    # -- conversations ---------------------------------------------------

    def _enqueue(self, waiting: Waiting) -> None:
        queue = self._queues.setdefault(waiting.site_id, [])
        bisect.insort(queue, waiting, key=lambda w: w.queued_at)
        self._waiting[waiting.conv_id] = waiting

    def _dequeue(self, conv_id: ConversationId) -> None:
        waiting = self._waiting.pop(conv_id, None)
        if waiting is not None:
            self._queues[waiting.site_id].remove(waiting)

    def _assign(self, slot: AgentSlot, conv_id: ConversationId, now: float) -> None:
        slot.convs.add(conv_id)
        slot.last_assigned = now

    def _site_slots(self, site_id: SiteId) -> list[AgentSlot]:
        return [s for s in self._agents.values() if s.site_id == site_id]

    async def restore(self, conv: Conversation) -> None:
        if conv.state is ConvState.QUEUED:
            self._enqueue(Waiting(conv.id, conv.site_id, conv.queued_at, conv.department))
        elif conv.state is ConvState.ACTIVE:
            for agent_id in conv.agents:
                slot = self._agents.get(agent_id)
                if slot is not None:
                    slot.convs.add(conv.id)

    async def track_agent(self, agent: Agent) -> None:
        self._slot(agent)

    async def submit(
        self,
        conv: Conversation,
        preferred: AgentId | None,
        exclude: frozenset[AgentId] = frozenset(),
    ) -> bool:
        if any(conv.id in slot.convs for slot in self._agents.values()):
            return False  # taken since the caller decided it waits (routing.Router)
        self._dequeue(conv.id)
        self._enqueue(
            Waiting(conv.id, conv.site_id, conv.queued_at, conv.department, preferred, exclude)
        )
        return True

    async def change_department(self, conv: Conversation) -> bool:
        waiting = self._waiting.get(conv.id)
        if waiting is None:
            return False
        waiting.department = conv.department
        return True

    async def drain(self, site_id: SiteId, now: float) -> list[tuple[ConversationId, AgentId]]:
        done: list[tuple[ConversationId, AgentId]] = []
        slots = self._site_slots(site_id)
        if not any(s.available and s.has_room for s in slots):
            return done
        for waiting in list(self._queues.get(site_id, ())):
            slot = pick(slots, waiting.department, waiting.preferred, waiting.exclude)
            if slot is None:
                continue
            self._dequeue(waiting.conv_id)
            self._assign(slot, waiting.conv_id, now)
            done.append((waiting.conv_id, slot.id))
            if not any(s.available and s.has_room for s in slots):
                break
        return done

    async def attach(self, conv_id: ConversationId, agent_id: AgentId, now: float) -> bool:
        slot = self._agents.get(agent_id)
        if slot is None or not slot.connected or slot.status in (None, AgentStatus.OFFLINE):
            return False
        if conv_id in slot.convs:
            return True
        if not slot.has_room:
            return False
        self._dequeue(conv_id)
        self._assign(slot, conv_id, now)
        return True

    async def detach(self, conv_id: ConversationId, agent_id: AgentId) -> None:
        slot = self._agents.get(agent_id)
        if slot is not None:
            slot.convs.discard(conv_id)

    async def remove(self, conv_id: ConversationId) -> None:
        self._dequeue(conv_id)
        for slot in self._agents.values():
            slot.convs.discard(conv_id)

    async def queue(self, site_id: SiteId) -> list[ConversationId]:
        return [w.conv_id for w in self._queues.get(site_id, ())]

    async def available_agents(
        self, site_id: SiteId, department: DepartmentId | None = None
    ) -> int:
        return sum(
            1
            for s in self._site_slots(site_id)
            if s.available and (department is None or s.serves(department))
        )
