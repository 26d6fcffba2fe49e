"""Conversation lifecycle: open, post, assign, transfer, join, leave, close.

Each operation writes the Store first, then publishes events through the
Broker, so a client that sees an event can always find its cause in the
store.  Operations that change who is in a conversation run under a
per-conversation lock so that, in this process, they apply one at a time.

Events are envelopes ``{"op": "frame", "aud": ..., "frame": {...}}`` (a
frame for clients; ``aud`` is ``all``, ``agents`` or ``visitors``) or
``{"op": "follow" | "unfollow", "conv": id}`` on a visitor or agent channel
(the sessions of that visitor or agent start or stop following a
conversation).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from time import perf_counter

from .broker import Broker
from .errors import ErrorCode, FrameError, StoreError
from .events import ConversationEvent, ConversationEvents, EventKind
from .histogram import Histogram
from .routing import Router
from .store import Store
from .tasks import stop
from .types import (
    JSON,
    Agent,
    AgentId,
    AuthorKind,
    Conversation,
    ConversationId,
    ConvState,
    DepartmentId,
    Entry,
    EntryKind,
    Site,
    SiteId,
    now,
)

log = logging.getLogger("chatserver.conversations")


# Every process subscribes to it: admin changes and sign-outs (control.py).
CONTROL_CHANNEL = "control"


def frame_event(frame: JSON, aud: str = "all") -> JSON:
    return {"op": "frame", "aud": aud, "frame": frame}


def conv_channel(conv_id: ConversationId) -> str:
    return f"conv:{conv_id}"


def agent_channel(agent_id: AgentId) -> str:
    return f"agent:{agent_id}"


def site_channel(site_id: SiteId) -> str:
    return f"site:{site_id}"


def site_visitors_channel(site_id: SiteId) -> str:
    return f"site:{site_id}:visitors"


def visitor_channel(visitor_id: str) -> str:
    return f"visitor:{visitor_id}"


# Fields of a conversation object that only agents see (labels agents set).
AGENTS_ONLY_FIELDS = ("tags",)


def for_visitors(conv: JSON) -> JSON:
    """A conversation object as its visitor may see it: without agents' labels."""
    return {k: v for k, v in conv.items() if k not in AGENTS_ONLY_FIELDS}


def _shown(conv: Conversation) -> JSON:
    """A record as published, but the offset (every entry moves it, in its own frame)."""
    return {k: v for k, v in conv.summary().items() if k != "offset"}


class Conversations:
    def __init__(self, store: Store, broker: Broker, router: Router) -> None:
        self.store = store
        self.broker = broker
        self.router = router
        self._locks: dict[ConversationId, asyncio.Lock] = {}
        self._agents: dict[AgentId, Agent] = {}
        self._positions: dict[ConversationId, int] = {}
        # What happens to conversations, for the listeners registered at build
        # time (chatserver/events.py): the trigger engine, and next reports,
        # webhooks, e-mail and search.
        self.events = ConversationEvents()
        # an entry's wire form (features.install: signed attachment URLs)
        self.wire: Callable[[Entry], JSON] = Entry.to_wire
        # seconds per entry publish (the node shares ``metrics.broker_publish`` here)
        self.publish_seconds = Histogram()
        self._retries: set[asyncio.Task[None]] = set()  # new chats' routing tried again

    # -- helpers ---------------------------------------------------------

    @asynccontextmanager
    async def locked(self, conv_id: ConversationId) -> AsyncIterator[None]:
        lock = self._locks.get(conv_id)
        if lock is None:
            lock = self._locks[conv_id] = asyncio.Lock()
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and not lock._waiters:
                self._locks.pop(conv_id, None)

    def remember(self, agent: Agent) -> None:
        """Cache an agent's record (names in events; refreshed on every hello)."""
        self._agents[agent.id] = agent

    async def agent(self, agent_id: AgentId) -> Agent | None:
        agent = self._agents.get(agent_id)
        if agent is None:
            agent = await self.store.get_agent(agent_id)
            if agent is not None:
                self._agents[agent_id] = agent
        return agent

    async def describe(self, conv: Conversation) -> JSON:
        """The ``conv`` frame body: the summary with agents' public records."""
        data = conv.summary()
        agents = []
        for agent_id in conv.agents:
            agent = await self.agent(agent_id)
            agents.append(agent.public() if agent else {"id": agent_id, "name": ""})
        data["agents"] = agents
        position = self._positions.get(conv.id)
        if conv.state is ConvState.QUEUED and position is not None:
            data["position"] = position
        return data

    async def publish_entry(self, site_id: SiteId, entry: Entry) -> None:
        """Publish a newly appended entry to its conversation; an ``entry`` event follows.

        Every entry appended in this process goes through here once (a
        duplicate append is not published again), so listeners see each entry
        once.
        """
        aud = "agents" if entry.agents_only else "all"
        frame = self.wire(entry)
        frame["t"] = "msg"
        started = perf_counter()
        await self.broker.publish(conv_channel(entry.conversation_id), frame_event(frame, aud))
        self.publish_seconds.observe(perf_counter() - started)
        self.events.emit(
            ConversationEvent(EventKind.ENTRY, site_id, entry.conversation_id, entry=entry)
        )

    def opened(self, conv: Conversation) -> None:
        """A conversation was created (by a visitor's post or a proactive greeting)."""
        self.events.emit(ConversationEvent(EventKind.OPENED, conv.site_id, conv.id))

    async def publish_conv(self, conv_id: ConversationId) -> Conversation | None:
        """Publish the conversation's current record to its channel and its site's;
        returns the record published (``None``: no such conversation)."""
        conv = await self.store.get_conversation(conv_id)
        if conv is not None:
            await self._publish_record(conv)
        return conv

    async def publish_settled(self, conv_id: ConversationId) -> None:
        """``publish_conv``, then read the record again; changed, the current one goes too.

        A record read before a change made without our lock (a ``join`` on any
        process) and sent after the change's own record would come last at every
        console and the visitor.  A change after our second read is published by
        its writer after ours: the last record is the true one (3 reads at most).
        """
        published = await self.publish_conv(conv_id)
        for _ in range(3):
            current = await self.store.get_conversation(conv_id)
            if published is None or current is None or _shown(current) == _shown(published):
                return
            await self._publish_record(current)
            published = current
        log.info("%s changed at every read after its publish", conv_id)

    async def _publish_record(self, conv: Conversation) -> None:
        data = await self.describe(conv)
        frame = {"t": "conv", "conv": data}
        shown = {"t": "conv", "conv": for_visitors(data)}
        # Every agent session of the site is on the site channel.
        await self.broker.publish(conv_channel(conv.id), frame_event(shown, "visitors"))
        await self.broker.publish(site_channel(conv.site_id), frame_event(frame, "agents"))

    async def _event(
        self, site_id: SiteId, conv_id: ConversationId, event: str, **data: object
    ) -> None:
        entry, _ = await self.store.append(
            conv_id, EntryKind.EVENT, AuthorKind.SYSTEM, "", "", "", data={"event": event, **data}
        )
        await self.publish_entry(site_id, entry)

    async def _public(self, agent_id: AgentId) -> JSON:
        agent = await self.agent(agent_id)
        return agent.public() if agent else {"id": agent_id, "name": ""}

    async def _follow(self, agent_id: AgentId, conv_id: ConversationId, follow: bool) -> None:
        op = "follow" if follow else "unfollow"
        await self.broker.publish(agent_channel(agent_id), {"op": op, "conv": conv_id})

    # -- operations ------------------------------------------------------

    async def route(self, site: Site) -> None:
        """Assign what the site's queue can give to free agents; tell the rest their place."""
        if site.settings.routing == "auto":
            for conv_id, agent_id in await self.router.drain(site.id, now()):
                try:
                    await self._assigned(conv_id, agent_id)
                except Exception:
                    log.exception("assigning %s to %s failed", conv_id, agent_id)
                    try:
                        await self._assignment_failed(conv_id, agent_id)
                    except Exception:
                        log.exception("%s: the failed assignment was not undone", conv_id)
        await self.announce_queue(site.id)

    async def _assignment_failed(self, conv_id: ConversationId, agent_id: AgentId) -> None:
        """Undo what ``drain`` did for an assignment that failed; the record decides.

        Written already (a later step failed): the chat is the agent's, and the
        hold stays.  Otherwise the hold goes, and a chat that still waits goes
        back in the queue (``drain`` took it out), in its place (``queued_at``;
        a preferred agent or exclusions it had are not kept); a closed one goes.
        """
        conv = await self.store.get_conversation(conv_id)
        if conv is not None and conv.state is not ConvState.CLOSED and agent_id in conv.agents:
            return
        await self.router.detach(conv_id, agent_id)
        if conv is None or conv.state is ConvState.CLOSED:
            await self.router.remove(conv_id)
        elif conv.state is ConvState.QUEUED and not conv.agents:
            await self.router.submit(conv, None)

    @asynccontextmanager
    async def _undone_if_failed(
        self, conv_id: ConversationId, agent_id: AgentId
    ) -> AsyncIterator[None]:
        """Around writing an assignment ``attach`` made (``join``, ``transfer``): if it
        fails (or is cancelled), undo the attach as ``route`` does (the record
        decides) and raise, or the agent's capacity leaks."""
        try:
            yield
        except (Exception, asyncio.CancelledError):
            try:
                await self._assignment_failed(conv_id, agent_id)
            except Exception:
                log.exception("%s: the failed assignment to %s was not undone", conv_id, agent_id)
            raise

    async def announce_queue(self, site_id: SiteId) -> None:
        """Send ``queue`` frames to waiting conversations whose position changed."""
        queue = await self.router.queue(site_id)
        online = await self.router.available_agents(site_id)
        changed = []
        for position, conv_id in enumerate(queue, 1):
            if self._positions.get(conv_id) == position:
                continue
            self._positions[conv_id] = position
            frame = {"t": "queue", "conv": conv_id, "position": position, "agents_online": online}
            changed.append((conv_channel(conv_id), frame_event(frame)))
        # Everyone behind a served chat moves up: send the updates in one go.
        await self.broker.publish_many(changed)

    async def _assigned(self, conv_id: ConversationId, agent_id: AgentId) -> None:
        async with self.locked(conv_id):
            conv = await self.store.get_conversation(conv_id)
            if conv is None or conv.state is ConvState.CLOSED:
                await self.router.remove(conv_id)
                return
            agents = conv.agents if agent_id in conv.agents else (*conv.agents, agent_id)
            conv = await self.store.update_conversation(
                conv_id, state=ConvState.ACTIVE, agents=agents
            )
            self._positions.pop(conv_id, None)
            await self.store.set_last_agent(conv.visitor_id, agent_id)
            await self._event(conv.site_id, conv_id, "joined", agent=await self._public(agent_id))
            await self._follow(agent_id, conv_id, True)
            await self.publish_conv(conv_id)
            self.events.emit(
                ConversationEvent(EventKind.ASSIGNED, conv.site_id, conv_id, agent_id=agent_id)
            )

    async def enqueue(
        self,
        conv: Conversation,
        preferred: AgentId | None,
        exclude: frozenset[AgentId] = frozenset(),
    ) -> None:
        """Publish a waiting conversation's record, then put it in the router's queue.

        In this order: once it is queued, any process's ``drain`` may give it
        to an agent and publish it ``active``.  A ``queued`` record published
        after that (read before the assignment, sent after it) would overtake
        it at every agent and visitor: the chat shown waiting again, and its
        agent's console no longer taking it as theirs.

        A ``join`` needs no queue: it may take the chat before the ``queued``
        record is out (API, agents' list); ``publish_settled`` corrects that.

        The order opens a window the router closes: an agent whose console
        shows the record may ``join`` before ``submit``.  ``submit`` then
        finds the chat held by that agent and leaves it to them (it queues
        nothing, and takes it from no agent: ``requeue`` detaches those who
        left before); the join's own assignment writes and publishes it
        ``active``.  A ``close`` in the window removes the chat from the
        router before it is queued: the record read after ``submit`` shows it
        closed (a close writes the record first), and it is taken out again.
        """
        await self.publish_settled(conv.id)
        if not await self.router.submit(conv, preferred, exclude):
            log.debug("%s was taken before it was queued; it stays with its agent", conv.id)
            return
        current = await self.store.get_conversation(conv.id)
        if current is None or current.state is ConvState.CLOSED:
            await self.router.remove(conv.id)

    # Seconds before each new try at queueing a new chat whose first one failed.
    ROUTE_RETRIES: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)

    async def enqueue_new(self, site: Site, conv: Conversation, preferred: AgentId | None) -> None:
        """Queue and route a chat a visitor's first message opened (acknowledged already).

        When the router fails (Redis: its connection pool or a round trip past
        the timeout, under load), the chat's record says it waits but no queue
        holds it, and nothing else would put it there: a resent message is a
        duplicate, which routes nothing.  So it is tried again in the
        background (``ROUTE_RETRIES``) until it is queued, taken or closed.
        """
        try:
            await self.enqueue(conv, preferred)
            await self.route(site)
        except StoreError as exc:
            log.warning("queueing %s failed (%s); trying again in the background", conv.id, exc)
            task = asyncio.ensure_future(self._route_again(site, conv.id, preferred))
            self._retries.add(task)
            task.add_done_callback(self._retries.discard)

    async def _route_again(
        self, site: Site, conv_id: ConversationId, preferred: AgentId | None
    ) -> None:
        for delay in self.ROUTE_RETRIES:
            await asyncio.sleep(delay)
            try:
                conv = await self.store.get_conversation(conv_id)
                if conv is None or conv.state is not ConvState.QUEUED or conv.agents:
                    return  # closed or taken meanwhile
                await self.enqueue(conv, preferred)  # queued already: it keeps its place
                await self.route(site)
                return
            except StoreError as exc:
                log.warning("queueing %s failed again (%s)", conv_id, exc)
        log.error("%s was not queued: it waits for an agent to take it from the list", conv_id)

    async def close_retries(self) -> None:
        """Stop the background tries (the node is closing)."""
        for task in list(self._retries):
            await stop(task)

    async def requeue(
        self, site: Site, conv_id: ConversationId, without: Sequence[AgentId]
    ) -> None:
        """Take agents off a conversation; with nobody left it waits in the queue."""
        async with self.locked(conv_id):
            conv = await self.store.get_conversation(conv_id)
            if conv is None or conv.state is ConvState.CLOSED:
                return
            agents = tuple(a for a in conv.agents if a not in without)
            for agent_id in without:
                if agent_id in conv.agents:
                    await self.router.detach(conv_id, agent_id)
                    await self._follow(agent_id, conv_id, False)
                    await self._event(
                        conv.site_id, conv_id, "left", agent=await self._public(agent_id)
                    )
            state = ConvState.ACTIVE if agents else ConvState.QUEUED
            conv = await self.store.update_conversation(conv_id, state=state, agents=agents)
            if agents:
                await self.publish_conv(conv_id)
            else:
                await self.enqueue(conv, None, frozenset(without))
        await self.route(site)

    async def join(self, site: Site, conv: Conversation, agent: Agent) -> Conversation:
        """Add ``agent`` to ``conv`` (taking it from the queue if it waits)."""
        if conv.state is ConvState.CLOSED:
            raise FrameError(ErrorCode.CONFLICT, "conversation is closed")
        if agent.id in conv.agents:
            return conv
        if not await self.router.attach(conv.id, agent.id, now()):
            raise FrameError(ErrorCode.CONFLICT, "you are offline or at capacity")
        async with self._undone_if_failed(conv.id, agent.id):
            await self._assigned(conv.id, agent.id)
        await self.announce_queue(site.id)
        return conv

    async def transfer(
        self,
        site: Site,
        conv: Conversation,
        by: Agent,
        to_agent: AgentId | None,
        to_dept: DepartmentId | None,
    ) -> None:
        if conv.state is ConvState.CLOSED:
            raise FrameError(ErrorCode.CONFLICT, "conversation is closed")
        if to_agent is not None:
            target = await self.agent(to_agent)
            if target is None or target.site_id != site.id or target.disabled:
                raise FrameError(ErrorCode.NOT_FOUND, "no such agent")
            if target.id in conv.agents or target.id == by.id:
                raise FrameError(ErrorCode.CONFLICT, "that agent is already in the conversation")
            if not await self.router.attach(conv.id, target.id, now()):
                raise FrameError(ErrorCode.CONFLICT, "that agent is offline or at capacity")
            async with self._undone_if_failed(conv.id, target.id):
                to = target.public()
                await self._event(site.id, conv.id, "transferred", by=by.public(), to=to)
                self.events.emit(
                    ConversationEvent(
                        EventKind.TRANSFERRED,
                        site.id,
                        conv.id,
                        agent_id=target.id,
                        data={"by": by.id, "to_agent": target.id},
                    )
                )
                await self._assigned(conv.id, target.id)
            if by.id in conv.agents:
                await self.requeue(site, conv.id, [by.id])
            return
        if to_dept is None:
            raise FrameError(ErrorCode.INVALID_FIELD, "transfer needs 'agent' or 'dept'")
        if to_dept not in site.departments:
            raise FrameError(ErrorCode.NOT_FOUND, "no such department")
        await self.store.update_conversation(conv.id, department=to_dept)
        await self._event(site.id, conv.id, "transferred", by=by.public(), department=to_dept)
        self.events.emit(
            ConversationEvent(
                EventKind.TRANSFERRED, site.id, conv.id, data={"by": by.id, "to_dept": to_dept}
            )
        )
        await self.requeue(site, conv.id, conv.agents)

    async def tag(
        self, conv: Conversation, add: Sequence[str], remove: Sequence[str], by: AgentId
    ) -> Conversation:
        """Add and remove tags (one atomic store call), publish the conversation, and
        tell the listeners (reports re-read a closed conversation's tags)."""
        conv = await self.store.set_tags(conv.id, add, remove)
        await self.publish_settled(conv.id)  # not under the lock: a later change may overtake
        self.events.emit(
            ConversationEvent(
                EventKind.TAGGED,
                conv.site_id,
                conv.id,
                agent_id=by,
                data={
                    "add": list(add),
                    "remove": list(remove),
                    "tags": list(conv.tags),
                    "closed": conv.state is ConvState.CLOSED,
                },
            )
        )
        return conv

    async def close(self, site: Site, conv_id: ConversationId, by: JSON) -> None:
        async with self.locked(conv_id):
            conv = await self.store.get_conversation(conv_id)
            if conv is None or conv.state is ConvState.CLOSED:
                return
            conv = await self.store.update_conversation(conv_id, state=ConvState.CLOSED)
            await self.router.remove(conv_id)
            self._positions.pop(conv_id, None)
            await self._event(site.id, conv_id, "closed", by=by)
            await self.publish_conv(conv_id)
            self.events.emit(ConversationEvent(EventKind.CLOSED, site.id, conv_id, data={"by": by}))
        await self.route(site)
