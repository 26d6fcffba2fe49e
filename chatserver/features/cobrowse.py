"""Co-browsing: an agent sees the visitor's page live and points at it (docs/cobrowse.md).

**Lifecycle.**  A conversation's co-browse state is the latest ``cobrowse``
event entry in its history (``data: {"event": "cobrowse", "state", "agent",
"by"}``), so every process, every tab and every reconnecting client reads
the same ordered record from the Store and recovers it by offset::

    none/declined/ended --request (member agent)--> requested
    requested --accept (visitor)--> active      requested --decline--> declined
    requested/active --stop (visitor or member agent)--> ended

A closed conversation has no co-browse (``ended``).  Transitions of one
conversation run under its lock in this process; two processes racing
append both entries, and the later one is the state.

**Stream.**  Live data never touches the Store.  It travels on the broker
channel ``cobrowse:<conv>``, which two kinds of session subscribe to: the
visitor's tab that accepted (or resumed after a page load), and the member
agents' sessions that asked to ``view``.  On it, ``cobrowse_events`` frames
go to agents (``aud: agents``) and ``cobrowse_snapshot``, ``cobrowse_pointer``
and ``cobrowse_highlight`` to the visitor (``aud: visitors``).  When the
co-browse ends, the op ``cobrowse_end`` on the channel makes every process
drop its sessions from it.

**Checks.**  Only the tab that accepted may stream, and only for its own open
conversation; only member agents may request, stop, view and point (checked
at ``view`` and again every ``RECHECK`` seconds while pointing).  Event
batches are checked as rrweb events; batches too big for one frame come in
ordered parts, bounded in count and size, that viewers join.
"""

from __future__ import annotations

import math
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..conversations import frame_event
from ..errors import ErrorCode, FrameError
from ..protocol import wire
from ..protocol.frames import MAX_COBROWSE_EVENTS, MAX_HISTORY, Frame
from ..session import Session
from ..types import (
    JSON,
    Agent,
    AuthorKind,
    ClientKind,
    Conversation,
    ConversationId,
    ConvState,
    Entry,
    EntryKind,
)

if TYPE_CHECKING:
    from ..node import Node

REQUESTED = "requested"
ACTIVE = "active"
DECLINED = "declined"
ENDED = "ended"
NONE = "none"

END_OP = "cobrowse_end"
SCAN_PAGES = 5  # history pages read back to find the state (MAX_HISTORY entries each)
RECHECK = 5.0  # seconds a viewer's membership is trusted before it is read again
MAX_BATCH_CHARS = 4 * 1024 * 1024  # the joined parts of one batch
MAX_RRWEB_TYPE = 6


def channel(conv_id: ConversationId) -> str:
    """The broker channel of a conversation's co-browse stream."""
    return f"cobrowse:{conv_id}"


@dataclass(slots=True)
class _Stream:
    """The visitor tab allowed to stream, and its batch in parts."""

    conv: ConversationId
    key: tuple[int, int] | None = None  # (seq, parts) of the batch in parts
    next_part: int = 0
    chars: int = 0


def events_problem(events: list[Any]) -> str | None:
    """Why ``events`` are not a batch of rrweb events, or ``None`` when they are.

    At most ``MAX_COBROWSE_EVENTS`` maps, each with an integer ``type`` from 0
    to 6 and a finite, non-negative ``timestamp``.  The content is the
    recorder's (masked in the visitor's browser); the server does not rebuild it.
    """
    if not events:
        return "no events"
    if len(events) > MAX_COBROWSE_EVENTS:
        return f"more than {MAX_COBROWSE_EVENTS} events"
    for i, event in enumerate(events):
        if not isinstance(event, dict):
            return f"event {i} is not a map"
        kind, ts = event.get("type"), event.get("timestamp")
        if isinstance(kind, bool) or not isinstance(kind, int) or not 0 <= kind <= MAX_RRWEB_TYPE:
            return f"event {i}: 'type' must be an integer from 0 to {MAX_RRWEB_TYPE}"
        if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts):
            return f"event {i}: 'timestamp' must be a number"
        if ts < 0:
            return f"event {i}: 'timestamp' must not be negative"
    return None


def describe(conv: Conversation, entry: Entry | None) -> JSON:
    """The ``cobrowse`` frame body: the conversation's co-browse state."""
    state = NONE if entry is None else str(entry.data.get("state", NONE))
    if conv.state is ConvState.CLOSED and state in (REQUESTED, ACTIVE):
        state = ENDED
    return {
        "conv": conv.id,
        "state": state,
        "offset": entry.offset if entry is not None else 0,
        "agent": entry.data.get("agent") if entry is not None else None,
    }


class Cobrowse:
    """The co-browse frames of one hub (``install``) and its local sessions' roles."""

    def __init__(self) -> None:
        self._streams: weakref.WeakKeyDictionary[Session, _Stream] = weakref.WeakKeyDictionary()
        # agent session -> {conv: when membership was last checked}
        self._viewers: weakref.WeakKeyDictionary[Session, dict[ConversationId, float]] = (
            weakref.WeakKeyDictionary()
        )

    def install(self, node: Node) -> None:
        node.hub.add_handler(ClientKind.VISITOR, "cobrowse", self.visitor_action)
        node.hub.add_handler(ClientKind.VISITOR, "cobrowse_events", self.events)
        node.hub.add_handler(ClientKind.AGENT, "cobrowse", self.agent_action)
        node.hub.add_handler(ClientKind.AGENT, "cobrowse_pointer", self.pointer)
        node.hub.add_handler(ClientKind.AGENT, "cobrowse_highlight", self.highlight)
        node.hub.add_op(END_OP, self._ended)

    # -- state -------------------------------------------------------------

    @staticmethod
    async def current(node: Node, conv_id: ConversationId) -> Entry | None:
        """The conversation's latest ``cobrowse`` entry (its state), if any.

        Reads history backwards, at most ``SCAN_PAGES`` pages: a co-browse
        state buried deeper than that counts as none.
        """
        before: int | None = None
        for _ in range(SCAN_PAGES):
            entries = await node.store.entries(
                conv_id, before=before, limit=MAX_HISTORY, include_notes=False
            )
            for entry in reversed(entries):
                if entry.kind is EntryKind.EVENT and entry.data.get("event") == "cobrowse":
                    return entry
            if len(entries) < MAX_HISTORY or entries[0].offset <= 1:
                return None
            before = entries[0].offset
        return None

    @staticmethod
    async def _record(node: Node, conv: Conversation, state: str, agent: Any, by: JSON) -> Entry:
        """Append the new state to the conversation and publish it (store first)."""
        data: JSON = {"event": "cobrowse", "state": state, "agent": agent, "by": by}
        entry, _ = await node.store.append(
            conv.id, EntryKind.EVENT, AuthorKind.SYSTEM, "", "", "", data=data
        )
        await node.convs.publish_entry(conv.site_id, entry)
        if state in (ENDED, DECLINED):
            await node.broker.publish(channel(conv.id), {"op": END_OP, "conv": conv.id})
        return entry

    def _ended(self, node: Node, chan: str, event: JSON, sessions: set[Session]) -> None:
        """``cobrowse_end`` on a channel: this process's sessions leave it."""
        conv_id = event.get("conv")
        for session in list(sessions):
            stream = self._streams.get(session)
            if stream is not None and stream.conv == conv_id:
                del self._streams[session]
            viewing = self._viewers.get(session)
            if viewing is not None:
                viewing.pop(str(conv_id), None)
            node.hub.spawn(node.hub.unsubscribe(session, chan))

    @staticmethod
    def _reply(session: Session, frame: Frame, body: JSON, **extra: Any) -> None:
        session.send({"t": "cobrowse", "re": frame.rid, **body, **extra})

    # -- the visitor -------------------------------------------------------

    async def visitor_action(self, node: Node, session: Session, frame: Frame) -> None:
        """``cobrowse`` from a visitor: accept, decline, stop, or resume after a page load."""
        conv = await node.hub.conversation(session, frame.get("conv"))
        action: str = frame.get("action")
        by: JSON = {"kind": "visitor", "id": session.visitor_id}
        async with node.convs.locked(conv.id):
            entry = await self.current(node, conv.id)
            state = describe(conv, entry)
            now = state["state"]
            wanted = frame.get("offset")
            if action == "stop":
                if now in (REQUESTED, ACTIVE):
                    entry = await self._record(node, conv, ENDED, state["agent"], by)
                    state = describe(conv, entry)
                self._streams.pop(session, None)
                return self._reply(session, frame, state)
            if conv.state is ConvState.CLOSED:
                raise FrameError(ErrorCode.CONFLICT, "conversation is closed")
            if action in ("accept", "decline"):
                if now != REQUESTED or (wanted is not None and wanted != state["offset"]):
                    raise FrameError(ErrorCode.CONFLICT, f"no co-browse request to answer ({now})")
                if action == "decline":
                    entry = await self._record(node, conv, DECLINED, state["agent"], by)
                    return self._reply(session, frame, describe(conv, entry))
                # Subscribed before the state is published: a viewer's snapshot
                # request that follows it reaches this tab.
                await self._stream(node, session, conv.id)
                entry = await self._record(node, conv, ACTIVE, state["agent"], by)
                return self._reply(session, frame, describe(conv, entry))
            # resume: this tab accepted the co-browse at ``offset`` before a page load
            if now != ACTIVE or wanted != state["offset"]:
                raise FrameError(ErrorCode.CONFLICT, f"co-browsing is not running ({now})")
            await self._stream(node, session, conv.id)
            return self._reply(session, frame, state)

    async def _stream(self, node: Node, session: Session, conv_id: ConversationId) -> None:
        old = self._streams.get(session)
        if old is not None and old.conv != conv_id:
            await node.hub.unsubscribe(session, channel(old.conv))
        self._streams[session] = _Stream(conv_id)
        await node.hub.subscribe(session, channel(conv_id))

    async def events(self, node: Node, session: Session, frame: Frame) -> None:
        """``cobrowse_events``: a batch of the visitor's page, relayed to the viewers.

        No reply; refused frames get an error.  Frames that arrive after the
        co-browse ended (in flight when it stopped) get ``204`` and are not
        counted as the client's mistakes.
        """
        conv_id: ConversationId = frame.get("conv")
        stream = self._streams.get(session)
        if (
            stream is None
            or stream.conv != conv_id
            or channel(conv_id) not in session.channels
            or session.conv_id != conv_id
        ):
            raise FrameError(ErrorCode.NOT_ALLOWED, "co-browsing is not running in this tab")
        out: JSON = {"t": "cobrowse_events", "conv": conv_id, "seq": frame.get("seq")}
        if frame.get("part") is None:
            events = frame.get("events")
            why = "field 'events' is required (or 'part', 'parts', 'data')"
            if events is not None:
                why = events_problem(events) or ""
            if why:
                raise self._bad(session, why)
            out["events"] = events
        else:
            self._part(session, stream, frame)
            out.update(part=frame.get("part"), parts=frame.get("parts"), data=frame.get("data"))
        await node.broker.publish(channel(conv_id), frame_event(out, "agents"))

    def _part(self, session: Session, stream: _Stream, frame: Frame) -> None:
        """Check one part of a batch: in order, from 0, bounded in count and size."""
        part, parts, data = frame.get("part"), frame.get("parts"), frame.get("data")
        if parts is None or data is None:
            raise self._bad(session, "a part needs 'parts' and 'data'")
        if part >= parts:
            raise self._bad(session, "'part' must be below 'parts'")
        key = (frame.get("seq"), parts)
        if part == 0:
            stream.key, stream.next_part, stream.chars = key, 0, 0
        elif stream.key != key or stream.next_part != part:
            stream.key = None
            raise self._bad(session, "parts must come in order, 0 first, with the same seq")
        stream.chars += len(data)
        if stream.chars > MAX_BATCH_CHARS:
            stream.key = None
            raise self._bad(session, f"a batch in parts is longer than {MAX_BATCH_CHARS}")
        stream.next_part = part + 1
        if stream.next_part == parts:
            stream.key = None

    @staticmethod
    def _bad(session: Session, message: str) -> FrameError:
        session.conn.count_error()
        return FrameError(ErrorCode.INVALID_FIELD, message)

    # -- the agents --------------------------------------------------------

    async def _member_conv(
        self, node: Node, session: Session, conv_id: ConversationId
    ) -> Conversation:
        """The conversation, if this agent is in it (admins too must join first)."""
        conv = await node.hub.conversation(session, conv_id)
        assert session.agent is not None
        if session.agent.id not in conv.agents:
            raise FrameError(ErrorCode.FORBIDDEN, "join the conversation first")
        return conv

    async def agent_action(self, node: Node, session: Session, frame: Frame) -> None:
        """``cobrowse`` from an agent: request, stop, view, unview, snapshot."""
        agent = session.agent
        assert agent is not None
        action: str = frame.get("action")
        if action == "unview":
            conv = await node.hub.conversation(session, frame.get("conv"))
            await self._unview(node, session, conv.id)
            return self._reply(session, frame, describe(conv, await self.current(node, conv.id)))
        conv = await self._member_conv(node, session, frame.get("conv"))
        if action == "request" and not (await node.hub.site(conv.site_id)).settings.cobrowse:
            raise FrameError(ErrorCode.NOT_ALLOWED, "co-browsing is off for this site")
        by: JSON = {"kind": "agent", **agent.public()}
        async with node.convs.locked(conv.id):
            entry = await self.current(node, conv.id)
            state = describe(conv, entry)
            now = state["state"]
            if action == "request":
                if conv.state is ConvState.CLOSED:
                    raise FrameError(ErrorCode.CONFLICT, "conversation is closed")
                if now == ACTIVE:
                    raise FrameError(ErrorCode.CONFLICT, "co-browsing is already running")
                entry = await self._record(node, conv, REQUESTED, agent.public(), by)
                return self._reply(session, frame, describe(conv, entry))
            if action == "stop":
                if now in (REQUESTED, ACTIVE):
                    entry = await self._record(node, conv, ENDED, state["agent"], by)
                    state = describe(conv, entry)
                return self._reply(session, frame, state)
        if action == "view":
            self._viewers.setdefault(session, {})[conv.id] = time.monotonic()
            await node.hub.subscribe(session, channel(conv.id))
        elif conv.id not in self._viewers.get(session, {}):
            raise FrameError(ErrorCode.NOT_ALLOWED, "view the co-browse first")
        if state["state"] == ACTIVE:
            await self._ask_snapshot(node, conv.id)
        self._reply(session, frame, state, viewing=True)

    async def _unview(self, node: Node, session: Session, conv_id: ConversationId) -> None:
        viewing = self._viewers.get(session)
        if viewing is not None:
            viewing.pop(conv_id, None)
        await node.hub.unsubscribe(session, channel(conv_id))

    async def _ask_snapshot(self, node: Node, conv_id: ConversationId) -> None:
        """Ask the visitor's tab for a fresh full snapshot (for a viewer that joined).

        Not throttled here (the agent's rate limit bounds it); the widget takes
        at most one snapshot a second and folds the requests in between.
        """
        frame = {"t": "cobrowse_snapshot", "conv": conv_id}
        await node.broker.publish(channel(conv_id), frame_event(frame, "visitors"))

    async def _viewer(self, node: Node, session: Session, conv_id: ConversationId) -> Agent:
        """The agent of a session viewing ``conv_id``, still a member (re-read now and then)."""
        agent = session.agent
        assert agent is not None
        viewing = self._viewers.get(session, {})
        checked = viewing.get(conv_id)
        if checked is None or channel(conv_id) not in session.channels:
            raise FrameError(ErrorCode.NOT_ALLOWED, "view the co-browse first")
        if time.monotonic() - checked > RECHECK:
            try:
                await self._member_conv(node, session, conv_id)
            except FrameError:
                await self._unview(node, session, conv_id)
                raise
            viewing[conv_id] = time.monotonic()
        return agent

    async def pointer(self, node: Node, session: Session, frame: Frame) -> None:
        """``cobrowse_pointer``: where the agent points (document coordinates); none: hidden."""
        conv_id: ConversationId = frame.get("conv")
        agent = await self._viewer(node, session, conv_id)
        x, y = frame.get("x"), frame.get("y")
        out: JSON = {"t": "cobrowse_pointer", "conv": conv_id, "agent": agent.public()}
        if x is not None and y is not None:
            out.update(x=x, y=y)
        await node.broker.publish(channel(conv_id), frame_event(out, "visitors"))

    async def highlight(self, node: Node, session: Session, frame: Frame) -> None:
        """``cobrowse_highlight``: outline an element (rrweb node id and/or CSS selector)."""
        conv_id: ConversationId = frame.get("conv")
        agent = await self._viewer(node, session, conv_id)
        target, selector = frame.get("node"), frame.get("selector")
        if target is None and not selector:
            raise FrameError(ErrorCode.INVALID_FIELD, "give 'node' or 'selector'")
        out: JSON = {"t": "cobrowse_highlight", "conv": conv_id, "agent": agent.public()}
        if target is not None:
            out["node"] = target
        if selector:
            out["selector"] = selector
        await node.broker.publish(channel(conv_id), frame_event(out, "visitors"))
        session.send(wire.ok(frame.rid))
