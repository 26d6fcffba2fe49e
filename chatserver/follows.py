"""Following conversations: what each session gets of a conversation, exactly once (the hub's part).

``Following`` is a part of ``Hub`` (its base class), kept apart because it is
one concern: a session follows a conversation (subscribe first, then read the
position: docs/architecture.md, rules 2 and 3), receives its live entries
past that position exactly once and in order, asks for ``history`` to fill
what came before, and is caught up from the store when the broker lost the
channel for a while (``_resubscribed``).  Everything else of the hub
(sessions, channels, fan-out, dispatch, hooks) is in ``hub.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from .conversations import (
    Conversations,
    conv_channel,
    for_visitors,
    site_visitors_channel,
)
from .errors import StoreError
from .handlers import reads
from .metrics import Metrics
from .protocol.frames import MAX_HISTORY, Frame, Limits
from .routing import Router
from .session import Follow, Session
from .store import Store
from .types import JSON, ClientKind, Conversation, ConversationId, ConvState, Entry

if TYPE_CHECKING:
    from .hub import ChannelHandler, ResyncHook

log = logging.getLogger("chatserver.hub")


class Following:
    """Follows, live delivery, recovery, history (see the module docstring)."""

    if TYPE_CHECKING:  # what it uses of Hub, which inherits it
        store: Store
        convs: Conversations
        metrics: Metrics
        router: Router
        limits: Limits
        _local: dict[str, set[Session]]
        _channels: dict[str, ChannelHandler]
        _resyncs: dict[str, ResyncHook]

        def spawn(self, coro: Awaitable[Any]) -> None: ...
        def entry_wire(self, entry: Entry) -> JSON: ...
        async def subscribe(self, session: Session, channel: str) -> None: ...
        async def _unsubscribe(self, session: Session, channel: str) -> None: ...
        def _fan_out(self, sessions: set[Session], aud: str, frame: JSON) -> None: ...
        async def conversation(self, session: Session, conv_id: ConversationId) -> Conversation: ...

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
        if channel in self._channels:
            self.spawn(self._resyncs[channel](""))
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
        elif kind == "site" and rest.endswith(":visitors"):
            self.spawn(self._resync_online(rest.removesuffix(":visitors")))
        elif kind in self._resyncs:  # agent:, visitor:, site: (features.install)
            self.spawn(self._resyncs[kind](rest))

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

    async def history(self, session: Session, frame: Frame) -> None:
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
