"""The local hub: this process's connections, their channels and their frames.

The hub is separate from the broker (which carries events between processes)
in the way centrifuge separates them: the hub subscribes a channel on the
broker when its first local session needs it and unsubscribes after the
last one leaves; the broker calls ``_on_event`` and the hub hands the event
to its local sessions, encoding each frame once per codec.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from .agent_connections import AgentConnections
from .broker import Broker
from .conversations import (
    Conversations,
)
from .errors import ConnectionClosing, ErrorCode, FrameError, StoreError
from .follows import Following
from .metrics import Metrics
from .presence import Presence, visitors_key
from .presence_memory import MemoryPresence
from .protocol import wire
from .protocol.codec import Codec, encode
from .protocol.frames import Frame, Limits
from .rebuild import rebuild_routing
from .routing import Router
from .security import Signer
from .session import Session, Verdict
from .store import Store
from .types import (
    JSON,
    ClientKind,
    Conversation,
    ConversationId,
    ConvState,
    Entry,
    Site,
)

if TYPE_CHECKING:
    from .node import Node

log = logging.getLogger("chatserver.hub")

# A frame's handler: the node (node.py), the session, the validated frame.
Handler = Callable[["Node", Session, Frame], Awaitable[None]]
# A feature's broker event: the node, the channel, the event, this process's sessions on it.
OpHandler = Callable[["Node", str, JSON, set[Session]], None]
# A hello of one kind of client: the node, the session, the frame, its Origin, its headers.
HelloHandler = Callable[["Node", Session, Frame, "str | None", Mapping[str, str]], Awaitable[None]]
# Something a feature runs when a connection closes (before the agent's grace logic).
DisconnectHook = Callable[[Session], Awaitable[None]]
# A feature's part of the re-sync after a lost subscription: the channel's id part.
ResyncHook = Callable[[str], Awaitable[None]]
# A feature's own broker channel (every process subscribes at start): its events.
ChannelHandler = Callable[[JSON], None]
# A feature's background service: started after the hub, closed before it (reverse order).
Service = tuple[Callable[[], Awaitable[None]] | None, Callable[[], Awaitable[None]] | None]


class Hub(Following, AgentConnections):
    def __init__(
        self,
        store: Store,
        broker: Broker,
        router: Router,
        signer: Signer,
        limits: Limits | None = None,
        grace: float = 30.0,
        presence: Presence | None = None,
        convs: Conversations | None = None,
    ) -> None:
        self.store = store
        self.broker = broker
        self.router = router
        self.signer = signer
        self.limits = limits or Limits()
        self.grace = grace
        self.metrics = Metrics()  # counters for /metrics (chatserver/web/ops.py)
        self.presence: Presence = presence or MemoryPresence()
        self.convs = convs or Conversations(store, broker, router)
        # The node this hub is part of (node.py sets it): what every handler,
        # hello, op and hook is given.
        self.node: Node
        self._local: dict[str, set[Session]] = {}
        self._connections = 0  # sessions with at least one channel (see stats)
        self._agent_sessions: dict[str, set[Session]] = {}
        self._grace: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.sites: dict[str, Site] = {}
        shared: dict[str, Handler] = {
            "ping": _ping,
            "history": _history,
        }
        self._handlers: dict[ClientKind, dict[str, Handler]] = {
            ClientKind.VISITOR: dict(shared),
            ClientKind.AGENT: dict(shared),
        }
        self._ops: dict[str, OpHandler] = {}
        # What the features hook in (``features.install``; docs/architecture.md).
        self._hellos: dict[ClientKind, HelloHandler] = {}
        self._on_disconnect: list[DisconnectHook] = []
        self._resyncs: dict[str, ResyncHook] = {}
        self._channels: dict[str, ChannelHandler] = {}
        self._services: list[Service] = []

    def add_handler(self, kind: ClientKind, frame_type: str, handler: Handler) -> None:
        """Serve ``frame_type`` frames of ``kind`` clients (validated by ``frames.FRAMES``)
        with ``handler``; how features outside the hub (recordings/) hook in."""
        self._handlers[kind][frame_type] = handler

    def add_op(self, op: str, handler: OpHandler) -> None:
        """Hand broker events ``{"op": op, ...}`` to ``handler`` (with this process's
        sessions on the event's channel); it runs on the event loop and must not block."""
        self._ops[op] = handler

    def add_hello(self, kind: ClientKind, handler: HelloHandler) -> None:
        """Serve the ``hello`` of ``kind`` clients with ``handler`` (it sends ``welcome``)."""
        self._hellos[kind] = handler

    def on_disconnect(self, hook: DisconnectHook) -> None:
        """Run ``hook`` for every closed connection, in the order hooks were added."""
        self._on_disconnect.append(hook)

    def add_resync(self, prefix: str, hook: ResyncHook) -> None:
        """After channels ``<prefix>:<id>`` were lost and are back, run ``hook(id)``."""
        self._resyncs[prefix] = hook

    def add_channel(self, channel: str, handler: ChannelHandler, resync: ResyncHook) -> None:
        """A channel every process subscribes to at start (``control``): its events go to
        ``handler`` (on the event loop; must not block), and ``resync("")`` runs after it
        was lost and is back."""
        self._channels[channel] = handler
        self._resyncs[channel] = resync

    def add_service(
        self,
        start: Callable[[], Awaitable[None]] | None,
        close: Callable[[], Awaitable[None]] | None,
    ) -> None:
        """A feature's background part: started after the hub, closed before it
        (``None``: nothing to do at that end)."""
        self._services.append((start, close))

    # -- lifecycle -------------------------------------------------------

    async def start(self) -> None:
        """Start the broker and rebuild routing state from the store."""
        await self.broker.start(self._on_event, self._resubscribed)
        for channel in self._channels:
            await self.broker.subscribe(channel)
        await self.router.start(self._expired)
        watch_loss = getattr(self.router, "watch_loss", None)  # a shared router (rebuild.py)
        if watch_loss is not None:
            watch_loss(lambda: rebuild_routing(self))
        await self.presence.start()
        for site in await self.store.list_sites():
            for agent in await self.store.list_agents(site.id):
                self.convs.remember(agent)
                # Known to the router before the restore gives it chats, so they are
                # requeued after the grace if it never connects (a shared router may
                # have lost its state while no process ran: nothing else tells it).
                await self.router.track_agent(agent)
            holders: set[str] = set()
            for conv in await self.store.list_conversations(
                site.id, [ConvState.QUEUED, ConvState.ACTIVE], limit=100_000
            ):
                await self.router.restore(conv)
                holders.update(conv.agents)
            # Nobody is connected yet: the agents holding chats get their grace period.
            for agent_id in holders:
                self._start_grace(agent_id, site.id)
        for start, _close in self._services:
            if start is not None:
                await start()
        self.convs.events.start()

    async def close(self) -> None:
        for handle in self._grace.values():
            handle.cancel()
        self._grace.clear()
        for task in list(self._tasks):
            task.cancel()
        await self.convs.events.close()
        for _start, close in reversed(self._services):
            if close is not None:
                await close()
        await self.presence.close()
        await self.router.close()
        await self.broker.close()

    def spawn(self, coro: Awaitable[Any]) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    async def site(self, site_id: str) -> Site:
        site = self.sites.get(site_id)
        if site is None:
            found = await self.store.get_site(site_id)
            if found is None:
                raise FrameError(ErrorCode.NOT_FOUND, "site is gone")
            site = self.sites[site_id] = found
        return site

    def forget_site(self, site_id: str) -> None:
        """Drop the cached site record (after an admin changed it: ``control``)."""
        self.sites.pop(site_id, None)

    # -- channels and fan-out -------------------------------------------

    async def subscribe(self, session: Session, channel: str) -> None:
        if not session.channels:
            self._connections += 1  # its first channel: counted in stats()
        sessions = self._local.get(channel)
        if sessions is None:
            sessions = self._local[channel] = set()
            sessions.add(session)
            session.channels.add(channel)
            await self.broker.subscribe(channel)
        else:
            sessions.add(session)
            session.channels.add(channel)

    async def unsubscribe(self, session: Session, channel: str) -> None:
        """Stop delivering ``channel`` to ``session`` (the broker lets go after the last)."""
        await self._unsubscribe(session, channel)

    async def _unsubscribe(self, session: Session, channel: str) -> None:
        if channel in session.channels:
            session.channels.discard(channel)
            if not session.channels:
                self._connections -= 1
        sessions = self._local.get(channel)
        if sessions is None:
            return
        sessions.discard(session)
        if not sessions:
            del self._local[channel]
            await self.broker.unsubscribe(channel)

    def _on_event(self, channel: str, event: JSON) -> None:
        own = self._channels.get(channel)
        if own is not None:
            own(event)
            return
        sessions = self._local.get(channel)
        if not sessions:
            return
        op = event.get("op")
        if op == "frame":
            self._fan_out(sessions, event["aud"], event["frame"])
        elif op in ("follow", "unfollow"):
            conv_id = event["conv"]
            for session in list(sessions):
                if op == "follow":
                    self.spawn(self.follow(session, conv_id))
                else:
                    self.spawn(self.unfollow(session, conv_id))
        elif op == "status":
            for session in sessions:
                session.send({"t": "status", "status": event["status"]})
        elif op in self._ops:
            self._ops[op](self.node, channel, event, sessions)

    def local_sessions(self, channel: str) -> list[Session]:
        """This process's sessions subscribed to ``channel``."""
        return list(self._local.get(channel, ()))

    def fan_out(self, channel: str, aud: str, frame: JSON) -> None:
        """Hand ``frame`` to this process's sessions on ``channel`` only, as if
        the broker had delivered ``frame_event(frame, aud)`` there."""
        sessions = self._local.get(channel)
        if sessions:
            self._fan_out(sessions, aud, frame)

    def _fan_out(self, sessions: set[Session], aud: str, frame: JSON) -> None:
        encoded: dict[Codec, bytes | str] = {}
        conv_id = frame.get("conv") if frame["t"] == "msg" else None
        offset = frame.get("offset", 0)
        typing_from = frame["from"]["id"] if frame["t"] == "typing" else None
        online = frame["online"] if frame["t"] == "agents" else None
        for session in sessions:
            visible = not (
                (aud == "agents" and session.kind is not ClientKind.AGENT)
                or (aud == "visitors" and session.kind is not ClientKind.VISITOR)
            )
            if conv_id is not None:
                verdict = session.deliver(conv_id, offset, frame, visible)
                if verdict is Verdict.GAP:
                    self.spawn(self._fill_gap(session, conv_id))
                if verdict is not Verdict.SEND:
                    continue
            elif not visible:
                continue
            if typing_from is not None and session.agent and session.agent.id == typing_from:
                continue  # an agent's own typing indicator is not echoed
            if online is not None:
                if session.agents_online == online:
                    continue  # what this visitor was told already (another process's news)
                session.agents_online = online
            codec = session.conn.codec
            data = encoded.get(codec)
            if data is None:
                data = encoded[codec] = encode(codec, frame)
            session.push(data)
        if frame["t"] == "conv" and frame["conv"]["state"] == "closed":
            for session in sessions:
                if session.conv_id == frame["conv"]["id"]:
                    session.conv_id = None

    # -- connections -----------------------------------------------------

    async def hello(
        self,
        session: Session,
        frame: Frame,
        origin: str | None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Authenticate a hello, send ``welcome`` and set up subscriptions.

        ``headers`` are the WebSocket request's (a visitor's User-Agent and
        Accept-Language go into its presence info).
        """
        kind = ClientKind.VISITOR if frame.get("kind") == "visitor" else ClientKind.AGENT
        await self._hellos[kind](self.node, session, frame, origin, headers or {})

    def limits_json(self) -> JSON:
        from .protocol import frames

        return {
            "max_frame_bytes": self.limits.max_frame_bytes,
            "max_message_chars": frames.MAX_MESSAGE_CHARS,
            "max_preview_chars": frames.MAX_PREVIEW_CHARS,
            "preview_interval": self.limits.preview_interval,
            "rate_per_second": self.limits.rate_per_second,
            "rate_burst": self.limits.rate_burst,
        }

    async def disconnect(self, session: Session) -> None:
        """Forget a closed connection; an agent's last one starts the grace period."""
        if session.preview is not None:
            session.preview.cancel()
            session.preview = None  # its callback refers to the session: a cycle
        for channel in list(session.channels):
            await self._unsubscribe(session, channel)
        session.follows.clear()
        for hook in self._on_disconnect:
            await hook(session)
        if session.present and session.site is not None and session.visitor_id is not None:
            session.present = False
            with contextlib.suppress(StoreError):
                await self.presence.remove(visitors_key(session.site.id), session.visitor_id)
        agent = session.agent
        if agent is None:
            return
        sessions = self._agent_sessions.get(agent.id)
        if sessions is None:
            return
        sessions.discard(session)
        if not sessions:
            del self._agent_sessions[agent.id]
            await self.router.agent_disconnected(agent.id)
            self._start_grace(agent.id, agent.site_id)
            if session.site is not None:
                await self.agents_changed(await self.site(session.site.id))

    async def handle(self, session: Session, frame: Frame) -> None:
        """Run one validated frame; raises ``FrameError`` for the client."""
        assert session.kind is not None
        handler = self._handlers[session.kind].get(frame.type)
        if handler is None:  # a feature's frame type, and the feature is not installed
            raise FrameError(
                ErrorCode.NOT_ALLOWED, f"{frame.type} is not served here", rid=frame.rid
            )
        try:
            await handler(self.node, session, frame)
        except FrameError as exc:
            if exc.rid is None:
                exc.rid = frame.rid
            raise
        except StoreError as exc:
            log.exception("store failed on %s", frame.type)
            raise FrameError(ErrorCode.UNAVAILABLE, "storage unavailable", rid=frame.rid) from exc
        except (ConnectionClosing, asyncio.CancelledError):
            raise
        except Exception as exc:
            log.exception("handler of %s failed", frame.type)
            raise FrameError(ErrorCode.INTERNAL, "internal error", rid=frame.rid) from exc

    async def conversation(self, session: Session, conv_id: ConversationId) -> Conversation:
        """The conversation if ``session`` may see it, else ``NOT_FOUND``.

        Visitors see only their own conversations and agents only their
        site's; the error does not tell whether the id exists elsewhere.
        """
        conv = await self.store.get_conversation(conv_id)
        if conv is None:
            raise FrameError(ErrorCode.NOT_FOUND, "no such conversation")
        if session.kind is ClientKind.VISITOR:
            if conv.visitor_id != session.visitor_id:
                raise FrameError(ErrorCode.NOT_FOUND, "no such conversation")
        else:
            assert session.site is not None
            if conv.site_id != session.site.id:
                raise FrameError(ErrorCode.NOT_FOUND, "no such conversation")
        return conv

    def entry_wire(self, entry: Entry) -> JSON:
        """An entry as clients get it (``convs.wire``: the attachments feature signs
        file URLs afresh)."""
        return self.convs.wire(entry)

    def ack(self, session: Session, frame: Frame, entry: Entry, duplicate: bool) -> None:
        """Acknowledge a stored message (before the entry is published)."""
        metrics = self.metrics
        if duplicate:
            metrics.messages_duplicate += 1
        else:
            metrics.messages_stored += 1
        if session.frame_at:  # read by web/ws.py (not set by in-process callers)
            metrics.frame_to_ack.observe(time.monotonic() - session.frame_at)
        assert entry.cid is not None  # acks answer posts, which carry a cid
        session.send(
            wire.ack(frame.rid, entry.cid, entry.conversation_id, entry.offset, entry.ts, duplicate)
        )

    # -- introspection -------------------------------------------------------

    def stats(self) -> JSON:
        """Counts for ``/healthz``, in constant time.

        ``connections`` are the sessions past ``hello`` (subscribed to at least
        one channel), ``channels`` the channels with a local subscriber.
        """
        return {
            "connections": self._connections,
            "channels": len(self._local),
            "agents_connected": len(self._agent_sessions),
        }


# -- the frames every client may send (the others come from handlers/ and features/)


async def _ping(node: Node, session: Session, frame: Frame) -> None:
    session.send(wire.pong(frame.rid))


async def _history(node: Node, session: Session, frame: Frame) -> None:
    await node.hub.history(session, frame)
