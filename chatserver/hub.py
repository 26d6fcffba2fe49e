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
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from . import agents, attachments, control, features, logins, reads, visitors
from .blobs import BlobStore
from .broker import Broker
from .cobrowse import Cobrowse
from .conversations import (
    CONTROL_CHANNEL,
    Conversations,
    conv_channel,
    for_visitors,
    frame_event,
    site_visitors_channel,
)
from .errors import ConnectionClosing, ErrorCode, FrameError, StoreError
from .frames import MAX_HISTORY, Frame, Limits
from .held import HeldPages
from .logins import Grant
from .metrics import Metrics
from .presence import Presence
from .presence_memory import MemoryPresence
from .proactive import Proactive
from .protocol import Codec, encode
from .quotas import Quotas
from .routing import Router
from .security import Signer
from .session import Follow, Session, Verdict
from .store import Store
from .types import (
    JSON,
    Agent,
    ClientKind,
    Conversation,
    ConversationId,
    ConvState,
    Entry,
    Site,
    new_id,
)
from .visitors import visitors_key

log = logging.getLogger("chatserver.hub")

Handler = Callable[["Hub", Session, Frame], Awaitable[None]]
# A feature's broker event: the hub, the channel, the event, this process's sessions on it.
OpHandler = Callable[["Hub", str, JSON, set[Session]], None]


class Hub:
    def __init__(
        self,
        store: Store,
        broker: Broker,
        router: Router,
        signer: Signer,
        limits: Limits | None = None,
        grace: float = 30.0,
        presence: Presence | None = None,
        blobs: BlobStore | None = None,
        session_check: float = 60.0,
        quotas: Quotas | None = None,
    ) -> None:
        self.store = store
        self.quotas = quotas or Quotas()  # abuse limits (quotas.py)
        self.held = HeldPages()  # page views of visitors without a row yet (held.py)
        self.blobs = blobs  # attachments and recording segments (None: features off)
        self.broker = broker
        self.router = router
        self.signer = signer
        self.limits = limits or Limits()
        self.grace = grace
        # Seconds between re-checks of the open agent sockets' sign-ins
        # (control.recheck_sessions), jittered by a quarter either way; 0: never.
        self.session_check = session_check
        self.node = new_id("n")  # this process, in control events it receives back
        self.metrics = Metrics()  # counters for /metrics (chatserver/web/ops.py)
        self.presence: Presence = presence or MemoryPresence()
        self.convs = Conversations(store, broker, router)
        self.convs.wire = self.entry_wire
        self.triggers = Proactive(self)  # proactive triggers (docs/triggers.md)
        # The trigger engine follows conversations through their events: a
        # visitor's post (typed, a file, the offline form) answers a greeting.
        self.convs.events.listen(
            "triggers",
            lambda event: self.triggers.on_event(event),
            lambda event: self.triggers.wants(event),
        )
        self._local: dict[str, set[Session]] = {}
        self._connections = 0  # sessions with at least one channel (see stats)
        self._agent_sessions: dict[str, set[Session]] = {}
        self._grace: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.sites: dict[str, Site] = {}
        shared: dict[str, Handler] = {
            "ping": Hub._ping,
            "read": Hub._read,
            "history": Hub._history,
        }
        self._handlers: dict[ClientKind, dict[str, Handler]] = {
            ClientKind.VISITOR: {**shared, **visitors.HANDLERS, **features.VISITOR_HANDLERS},
            ClientKind.AGENT: {**shared, **agents.HANDLERS, **features.AGENT_HANDLERS},
        }
        self._ops: dict[str, OpHandler] = {}
        self.cobrowse = Cobrowse()
        self.cobrowse.install(self)

    def add_handler(self, kind: ClientKind, frame_type: str, handler: Handler) -> None:
        """Serve ``frame_type`` frames of ``kind`` clients (validated by ``frames.FRAMES``)
        with ``handler``; how features outside the hub (recordings/) hook in."""
        self._handlers[kind][frame_type] = handler

    def add_op(self, op: str, handler: OpHandler) -> None:
        """Hand broker events ``{"op": op, ...}`` to ``handler`` (with this process's
        sessions on the event's channel); it runs on the event loop and must not block."""
        self._ops[op] = handler

    # -- lifecycle -------------------------------------------------------

    async def start(self) -> None:
        """Start the broker and rebuild routing state from the store."""
        await self.broker.start(self._on_event, self._resubscribed)
        await self.broker.subscribe(CONTROL_CHANNEL)
        await self.router.start(self._expired)
        await self.presence.start()
        for site in await self.store.list_sites():
            for agent in await self.store.list_agents(site.id):
                self.convs.remember(agent)
                track = getattr(self.router, "track", None)
                if track is not None:
                    track(agent)
            holders: set[str] = set()
            for conv in await self.store.list_conversations(
                site.id, [ConvState.QUEUED, ConvState.ACTIVE], limit=100_000
            ):
                await self.router.restore(conv)
                holders.update(conv.agents)
            # Nobody is connected yet: the agents holding chats get their grace period.
            for agent_id in holders:
                self._start_grace(agent_id, site.id)
        await self.triggers.start()
        self.convs.events.start()
        if self.session_check > 0:
            self.spawn(self._check_sessions())
        if self.blobs is not None and self.quotas.config.upload_ttl > 0:
            self.spawn(attachments.sweeper(self))

    async def close(self) -> None:
        for handle in self._grace.values():
            handle.cancel()
        self._grace.clear()
        for task in list(self._tasks):
            task.cancel()
        await self.convs.events.close()
        await self.triggers.close()
        await self.presence.close()
        await self.router.close()
        await self.broker.close()

    async def _check_sessions(self) -> None:
        """Every ``session_check`` seconds (jittered), close sockets of ended sign-ins."""
        while True:
            await asyncio.sleep(self.session_check * random.uniform(0.75, 1.25))
            try:
                await control.recheck_sessions(self)
            except StoreError as exc:  # the next check tries again
                log.warning("re-checking agent sessions failed: %s", exc)
            except Exception:
                log.exception("re-checking agent sessions failed")

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
        if channel == CONTROL_CHANNEL:
            control.apply(self, event)
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
            self._ops[op](self, channel, event, sessions)

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

    async def follow(self, session: Session, conv_id: ConversationId) -> None:
        """Start delivering a conversation's live entries to ``session``.

        Subscribes first, then reads the position, so that every entry past
        the position is delivered live exactly once.  The client gets a
        ``conv`` frame carrying that position and asks for ``history`` when
        it lacks entries before it.
        """
        if session.close_code is not None or conv_id in session.follows:
            return
        follow = session.follows[conv_id] = Follow()
        try:
            await self.subscribe(session, conv_channel(conv_id))
            conv = await self.store.get_conversation(conv_id)
            if conv is None:
                session.follows.pop(conv_id, None)
                await self._unsubscribe(session, conv_channel(conv_id))
                return
            if session.kind is ClientKind.VISITOR and conv.state is not ConvState.CLOSED:
                session.conv_id = conv.id
            # ``follow: true`` marks the position frame: from here on this
            # connection gets the conversation's entries live.
            data = await self.convs.describe(conv)
            if session.kind is ClientKind.VISITOR:
                data = for_visitors(data)
            # Read after subscribing: a marker moved later comes as a live ``read``.
            markers = await reads.snapshot(self.store, conv, session)
            session.send({"t": "conv", "conv": data, "follow": True, "reads": markers})
            self._flush(session, conv_id, follow, conv.last_offset)
        finally:
            follow.set_ready()  # a history request waiting for the position goes on

    def _flush(
        self, session: Session, conv_id: ConversationId, follow: Follow, position: int
    ) -> None:
        """End a read: send the held live entries past ``last`` (and ``position``).

        A follow made stale meanwhile (the broker lost the channel while the
        read was in flight) is caught up from the store next.
        """
        buffered, follow.buffer = follow.buffer or [], None
        follow.last = max(follow.last, position)
        for offset, frame, visible in buffered:
            if offset > follow.last:
                follow.last = offset
                if visible:
                    session.send(frame)
        if follow.stale and session.follows.get(conv_id) is follow:
            self.spawn(self._catch_up(session, conv_id))

    def _send_stored(self, session: Session, follow: Follow, entries: list[Entry]) -> None:
        """Send stored entries past ``last`` as live ones (a visitor gets no notes)."""
        notes = session.kind is ClientKind.AGENT
        for entry in entries:
            if entry.offset <= follow.last:
                continue
            follow.last = entry.offset
            if notes or not entry.agents_only:
                frame = self.entry_wire(entry)
                frame["t"] = "msg"
                session.send(frame)

    async def _fill_gap(self, session: Session, conv_id: ConversationId) -> None:
        """Send the entries between ``last`` and the first held one, from the store."""
        follow = session.follows.get(conv_id)
        if follow is None or not follow.buffer:
            return
        target = follow.buffer[0][0]
        try:
            while follow.last < target - 1:
                entries = await self.store.entries(
                    conv_id, after=follow.last, limit=MAX_HISTORY, include_notes=True
                )
                entries = [e for e in entries if e.offset < target]
                if not entries:
                    break
                self._send_stored(session, follow, entries)
        except StoreError:
            log.exception("filling a gap in %s failed", conv_id)
        finally:
            if session.follows.get(conv_id) is follow:
                self._flush(session, conv_id, follow, 0)

    async def _catch_up(self, session: Session, conv_id: ConversationId) -> None:
        """Send a stale follow's entries past ``last`` from the store, then go live.

        Runs after the broker re-subscribed the conversation's channel, so
        every entry published since is delivered live: live entries arriving
        during the read are held (``buffer``) and flushed after it, and each
        entry reaches the client once, in order (rules 2 and 3 of
        docs/architecture.md).  While another read holds the buffer, its
        ``_flush`` starts this afterwards.
        """
        follow = session.follows.get(conv_id)
        if follow is None or not follow.stale or follow.buffer is not None:
            return
        follow.stale = False
        follow.buffer = []
        try:
            while True:
                entries = await self.store.entries(
                    conv_id, after=follow.last, limit=MAX_HISTORY, include_notes=True
                )
                self._send_stored(session, follow, entries)
                if len(entries) < MAX_HISTORY:
                    break
        except StoreError as exc:
            # The next live entry shows the gap and reads it (``_fill_gap``).
            log.warning("catching up %s failed: %s", conv_id, exc)
        finally:
            if session.follows.get(conv_id) is follow:
                self._flush(session, conv_id, follow, 0)

    async def unfollow(self, session: Session, conv_id: ConversationId) -> None:
        if session.follows.pop(conv_id, None) is not None:
            await self._unsubscribe(session, conv_channel(conv_id))

    # -- after a lost subscription (issue #15) -----------------------------

    def _resubscribed(self, channel: str) -> None:
        """The broker lost ``channel`` for a while and has it back (``Broker``).

        Events published meanwhile are gone; what this process's sessions on
        the channel would have got is read from the store instead, at once
        (docs/scaling.md, "Pub/sub drops messages"):

        * ``conv:<id>``: every follow catches up its entries past ``last``
          (exactly once, in order); visitors get the conversation's record
          again and everyone its read markers.
        * ``agent:<id>``, ``visitor:<id>``: their sessions follow the
          conversations the store says they hold (a missed ``follow``).
        * ``site:<id>``: its agent sessions get every open conversation's
          record again; ``site:<id>:visitors``: the agents-online count.
        * ``control``: cached sites and agents are read again, trigger rules
          reloaded and agent sign-ins re-checked (``control.resync``).
        * ``cobrowse:<conv>``: nothing is stored; the stream goes on live.
        """
        self.metrics.resubscribed += 1
        if channel == CONTROL_CHANNEL:
            self.spawn(control.resync(self))
            return
        sessions = self._local.get(channel)
        if not sessions:
            return
        kind, _, rest = channel.partition(":")
        if kind == "conv":
            for session in list(sessions):
                follow = session.follows.get(rest)
                if follow is not None:
                    follow.stale = True
                    if follow.buffer is None:
                        self.spawn(self._catch_up(session, rest))
            self.spawn(self._resync_conv(rest))
        elif kind == "agent":
            self.spawn(agents.resync(self, rest))
        elif kind == "visitor":
            self.spawn(visitors.resync(self, rest))
        elif kind == "site" and rest.endswith(":visitors"):
            self.spawn(self._resync_online(rest.removesuffix(":visitors")))
        elif kind == "site":
            self.spawn(agents.resync_site(self, rest))

    async def _resync_conv(self, conv_id: ConversationId) -> None:
        """Re-send a conversation's record (visitors) and read markers (all followers)."""
        conv = await self.store.get_conversation(conv_id)
        sessions = self._local.get(conv_channel(conv_id))
        if conv is None or not sessions:
            return
        data = await self.convs.describe(conv)
        self._fan_out(sessions, "visitors", {"t": "conv", "conv": for_visitors(data)})
        for session in list(sessions):
            if conv_id in session.follows and session.close_code is None:
                for marker in await reads.snapshot(self.store, conv, session):
                    session.send({"t": "read", "conv": conv_id, **marker})

    async def _resync_online(self, site_id: str) -> None:
        """Tell the site's visitors on this process how many agents are online now."""
        sessions = self._local.get(site_visitors_channel(site_id))
        if not sessions:
            return
        online = await self.router.available_agents(site_id)
        self._fan_out(sessions, "all", {"t": "agents", "online": online})

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
        if frame.get("kind") == "visitor":
            await visitors.hello(self, session, frame, origin, headers or {})
        else:
            await agents.hello(self, session, frame)

    def limits_json(self) -> JSON:
        from . import frames

        return {
            "max_frame_bytes": self.limits.max_frame_bytes,
            "max_message_chars": frames.MAX_MESSAGE_CHARS,
            "max_preview_chars": frames.MAX_PREVIEW_CHARS,
            "preview_interval": self.limits.preview_interval,
            "rate_per_second": self.limits.rate_per_second,
            "rate_burst": self.limits.rate_burst,
        }

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

    async def disconnect(self, session: Session) -> None:
        """Forget a closed connection; an agent's last one starts the grace period."""
        if session.preview is not None:
            session.preview.cancel()
            session.preview = None  # its callback refers to the session: a cycle
        for channel in list(session.channels):
            await self._unsubscribe(session, channel)
        session.follows.clear()
        self.triggers.disconnect(session)
        if session.present and session.site is not None and session.visitor_id is not None:
            session.present = False
            with contextlib.suppress(StoreError):
                await self.presence.remove(visitors_key(session.site.id), session.visitor_id)
        agent = session.agent
        if agent is None:
            return
        await agents.forget(self, session)
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
        """Requeue chats a shared router took from agents whose processes died."""
        site = await self.site(site_id)
        for agent_id, conv_id in pairs:
            await self.convs.requeue(site, conv_id, [agent_id])
        await self.agents_changed(site)

    async def handle(self, session: Session, frame: Frame) -> None:
        """Run one validated frame; raises ``FrameError`` for the client."""
        assert session.kind is not None
        handler = self._handlers[session.kind].get(frame.type)
        if handler is None:  # a feature's frame type, and the feature is not installed
            raise FrameError(
                ErrorCode.NOT_ALLOWED, f"{frame.type} is not served here", rid=frame.rid
            )
        try:
            await handler(self, session, frame)
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

    # -- shared handlers ---------------------------------------------------

    async def _ping(self, session: Session, frame: Frame) -> None:
        session.send({"t": "pong", "re": frame.rid})

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

    async def _read(self, session: Session, frame: Frame) -> None:
        """Store a read marker and tell the conversation's followers (docs/read-receipts.md).

        No offset the visitor gets is a note's: a visitor's marker is stored
        lowered to the last entry it can see, and an agent's reaches the
        visitor lowered the same way, and only when that lowered offset grew.
        """
        conv = await self.conversation(session, frame.get("conv"))
        offset = min(frame.get("offset"), conv.last_offset)
        assert session.kind is not None
        reader = reads.reader_key(session.kind, session.author_id)
        by = {"kind": session.kind.value, "id": session.author_id}
        channel = conv_channel(conv.id)
        if session.kind is ClientKind.VISITOR:
            offset = await reads.visible_upto(self.store, conv, offset)
            marker = await self.store.set_read(conv.id, reader, offset)
            event = {"t": "read", "conv": conv.id, "by": by, "offset": marker}
            await self.broker.publish(channel, frame_event(event))
            return
        before = (await self.store.read_markers(conv.id)).get(reader, 0)
        marker = await self.store.set_read(conv.id, reader, offset)
        event = {"t": "read", "conv": conv.id, "by": by, "offset": marker}
        await self.broker.publish(channel, frame_event(event, "agents"))
        shown = await reads.for_visitor(self.store, conv, before, marker)
        if shown is not None:
            event = {**event, "offset": shown}
            await self.broker.publish(channel, frame_event(event, "visitors"))

    async def _history(self, session: Session, frame: Frame) -> None:
        """Recovery (``since``) or paging (``before``) of a conversation's entries."""
        conv = await self.conversation(session, frame.get("conv"))
        notes = session.kind is ClientKind.AGENT
        reply: JSON = {"t": "history", "re": frame.rid, "conv": conv.id, "epoch": conv.epoch}
        follow = session.follows.get(conv.id)
        if follow is not None and not follow.ready:
            # The follow is reading its position (right after hello, a join, ...):
            # answer from that position, or the reply would stop at offset 0.
            await follow.positioned()
            follow = session.follows.get(conv.id)
        owned = follow is not None and follow.buffer is None
        if follow is not None and owned:
            follow.buffer = []  # hold live entries until the reply is out
        try:
            since = frame.get("since")
            window = self.limits.recovery_window
            epoch = frame.get("epoch")
            if since is not None and (epoch is None or epoch == conv.epoch):
                upto = follow.last if follow is not None else conv.last_offset
                entries = await self.store.entries(
                    conv.id, after=since, limit=window + 1, include_notes=notes
                )
                entries = [e for e in entries if e.offset <= upto]
                if len(entries) <= window:
                    self.metrics.recoveries["resumed"] += 1
                    reply.update(
                        messages=[self.entry_wire(e) for e in entries], complete=True, more=False
                    )
                    session.send(reply)
                    return
            if since is not None:  # too much missed, or another epoch: the client reloads
                self.metrics.recoveries["reset"] += 1
            limit = frame.get("limit") or 50
            entries = await self.store.entries(
                conv.id, before=frame.get("before"), limit=limit + 1, include_notes=notes
            )
            more = len(entries) > limit
            entries = entries[-limit:]
            reply.update(
                messages=[self.entry_wire(e) for e in entries],
                # paging is always "complete"; a failed recovery is not
                complete=since is None,
                more=more,
            )
            session.send(reply)
        finally:
            if owned and follow is not None and session.follows.get(conv.id) is follow:
                self._flush(session, conv.id, follow, 0)

    def entry_wire(self, entry: Entry) -> JSON:
        """An entry as clients get it: an attachment gets a freshly signed URL."""
        return attachments.with_url(entry.to_wire(), self.signer)

    def ack(self, session: Session, frame: Frame, entry: Entry, duplicate: bool) -> None:
        """Acknowledge a stored message (before the entry is published)."""
        if duplicate:
            self.metrics.messages_duplicate += 1
        else:
            self.metrics.messages_stored += 1
        session.send(
            {
                "t": "ack",
                "re": frame.rid,
                "cid": entry.cid,
                "conv": entry.conversation_id,
                "offset": entry.offset,
                "ts": entry.ts,
                "duplicate": duplicate,
            }
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
