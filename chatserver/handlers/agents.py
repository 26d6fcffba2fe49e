"""The agent side of the hub: hello, and the frames only agents send.

Handlers are functions of the hub, the session and the frame; ``HANDLERS``
maps frame types to them (the shared ones live in ``hub.py``).  Agents see
only their own site; acting on a conversation (writing, typing, transfer,
close, tags, invitations) needs membership, or the admin role for transfer,
close, tags and invitations.

An agent's status (online, away, offline) is the agent's, not a
connection's: the router holds it (``Router.agent_connected``/``set_status``)
for every tab on every process, until the grace period after the agent's last
connection ends.

Who is connected and who views which conversation live in the Presence seam
(so every process sees them): ``agents_key(site)`` holds the site's connected
agents with their status, ``viewers_key(conv)`` the agents viewing a
conversation with whether they type in it (collision detection).  A
connection's entries go when it closes (``forget``).
"""

from __future__ import annotations

import contextlib
from time import perf_counter
from typing import TYPE_CHECKING

from .. import logins
from ..conversations import agent_channel, conv_channel, frame_event, site_channel
from ..errors import (
    CloseCode,
    Closed,
    ConnectionClosing,
    ErrorCode,
    FrameError,
    NotFound,
    NotMember,
    StoreError,
)
from ..presence import visitors_key
from ..protocol import wire
from ..protocol.frames import MAX_TAGS, MAX_VIEWING, PROTOCOL_VERSION, Frame
from ..session import Session
from ..types import (
    JSON,
    Agent,
    AgentStatus,
    AuthorKind,
    ClientKind,
    Conversation,
    ConversationId,
    ConvState,
    EntryKind,
    Role,
    SiteId,
)
from ..visitor_rows import unsaved
from .visitors import visitor_record

if TYPE_CHECKING:
    from ..hub import Handler
    from ..node import Node

MAX_VISITORS_LISTED = 500
MAX_PAGES_LISTED = 50
MAX_EVENTS_LISTED = 50
MAX_PAST_CONVERSATIONS = 20


def agents_key(site_id: SiteId) -> str:
    """The presence key of a site's connected agents (info: name, status)."""
    return f"site:{site_id}:agents"


def viewers_key(conv_id: ConversationId) -> str:
    """The presence key of the agents viewing a conversation (info: name, typing)."""
    return f"conv:{conv_id}:viewers"


def _agent(session: Session) -> Agent:
    assert session.agent is not None
    return session.agent


def _member(agent: Agent, conv: Conversation, admin_ok: bool = True) -> None:
    """Only agents in a conversation (or, where allowed, admins) may act on it."""
    if agent.id in conv.agents or (admin_ok and agent.role is Role.ADMIN):
        return
    raise FrameError(ErrorCode.FORBIDDEN, "join the conversation first")


async def hello(node: Node, session: Session, frame: Frame) -> None:
    grant = logins.from_token(node.signer, frame.get("token"))
    agent = None if grant is None else await node.store.get_agent(grant.agent_id)
    if grant is None or agent is None:
        raise ConnectionClosing(CloseCode.UNAUTHORIZED, "invalid or expired agent token")
    if agent.disabled:
        raise ConnectionClosing(CloseCode.ACCOUNT_DISABLED, "agent account is disabled")
    if await logins.ended(node.store, grant):
        raise ConnectionClosing(CloseCode.SESSION_ENDED, "signed out: sign in again")
    if agent.role is Role.ANALYST:
        raise ConnectionClosing(CloseCode.UNAUTHORIZED, "analysts take no chats")
    site = await node.hub.site(agent.site_id)
    session.conn.accept(ClientKind.AGENT)
    session.kind = ClientKind.AGENT
    session.site = site
    session.agent = agent
    session.grant = grant
    node.convs.remember(agent)
    node.hub.agent_connected(agent.id, session)
    # The status is the agent's, held by the router for every process: a
    # hello without one gets the status chosen before (another tab, another
    # process, a reconnect within the grace period), else online.
    chosen = AgentStatus(frame.get("status")) if frame.get("status") else None
    before = await node.router.agent_connected(agent, chosen)
    status = chosen or before or AgentStatus.ONLINE
    if before is not None and status is not before:
        # This tab chose another status: the agent's other connections follow.
        await node.broker.publish(agent_channel(agent.id), {"op": "status", "status": status.value})
    open_convs = await node.store.list_conversations(site.id, [ConvState.QUEUED, ConvState.ACTIVE])
    session.send(
        {
            "t": "welcome",
            "v": PROTOCOL_VERSION,
            "re": frame.rid,
            "agent": {
                "id": agent.id,
                "name": agent.name,
                "email": agent.email,
                "role": agent.role.value,
                "capacity": agent.capacity,
                "departments": list(agent.departments),
            },
            "status": status.value,
            "site": {
                "id": site.id,
                "name": site.name,
                "departments": list(site.departments),
                "settings": site.settings.to_json(),
            },
            "conversations": [await node.convs.describe(c) for c in open_convs],
            "queue": await node.router.queue(site.id),
            "limits": node.hub.limits_json(),
        }
    )
    await node.hub.subscribe(session, agent_channel(agent.id))
    await node.hub.subscribe(session, site_channel(site.id))
    await node.presence.add(agents_key(site.id), agent.id, _agent_info(agent, status))
    session.present = True
    # A chat assigned between the router's registration above and these
    # subscriptions had its ``follow`` published before this session listened:
    # the record, read again now that it listens, has it (following is idempotent).
    for conv in await node.store.list_conversations(site.id, [ConvState.ACTIVE]):
        if agent.id in conv.agents:
            await node.hub.follow(session, conv.id)
    await node.hub.agents_changed(site)


async def send(node: Node, session: Session, frame: Frame) -> None:
    agent = _agent(session)
    assert session.site is not None
    kind = EntryKind.NOTE if frame.get("note") else EntryKind.TEXT
    # One store round trip: membership and "still open" are checked in the
    # same atomic step as the write, instead of reading the conversation first.
    started = perf_counter()
    try:
        entry, duplicate = await node.store.append(
            frame.get("conv"),
            kind,
            AuthorKind.AGENT,
            agent.id,
            agent.name,
            frame.get("body"),
            frame.get("cid"),
            open_only=True,
            member=agent.id,
        )
    except NotFound:
        raise FrameError(ErrorCode.NOT_FOUND, "no such conversation") from None
    except NotMember as exc:
        if exc.site_id != session.site.id:  # another site's: as if it did not exist
            raise FrameError(ErrorCode.NOT_FOUND, "no such conversation") from None
        raise FrameError(ErrorCode.FORBIDDEN, "join the conversation first") from None
    except Closed:
        raise FrameError(ErrorCode.CONFLICT, "conversation is closed") from None
    node.metrics.store_commit.observe(perf_counter() - started)
    node.hub.ack(session, frame, entry, duplicate)
    if not duplicate:
        await node.convs.publish_entry(session.site.id, entry)


async def typing(node: Node, session: Session, frame: Frame) -> None:
    agent = _agent(session)
    conv = await node.hub.conversation(session, frame.get("conv"))
    _member(agent, conv, admin_ok=False)
    if conv.state is ConvState.CLOSED:
        raise FrameError(ErrorCode.CONFLICT, "conversation is closed")
    on: bool = frame.get("on")
    event: JSON = {
        "t": "typing",
        "conv": conv.id,
        "from": {"kind": "agent", "id": agent.id, "name": agent.name},
        "on": on,
    }
    if frame.get("note"):
        # Typing a note: colleagues may know, the visitor must not.
        event["note"] = True
        await node.broker.publish(conv_channel(conv.id), frame_event(event, "agents"))
    else:
        await node.broker.publish(conv_channel(conv.id), frame_event(event))
    if session.viewing.get(conv.id, on) != on:
        session.viewing[conv.id] = on
        await node.presence.update(
            viewers_key(conv.id), agent.id, {"name": agent.name, "typing": on}
        )
        await _publish_viewers(node, conv.site_id, conv.id)


async def status(node: Node, session: Session, frame: Frame) -> None:
    agent = _agent(session)
    new = AgentStatus(frame.get("status"))
    await node.router.set_status(agent.id, new)
    if session.present:
        await node.presence.update(agents_key(agent.site_id), agent.id, _agent_info(agent, new))
    await node.broker.publish(agent_channel(agent.id), {"op": "status", "status": new.value})
    session.send(wire.ok(frame.rid))
    await node.hub.agents_changed(await node.hub.site(agent.site_id))


async def join(node: Node, session: Session, frame: Frame) -> None:
    conv = await node.hub.conversation(session, frame.get("conv"))
    await node.convs.join(await node.hub.site(conv.site_id), conv, _agent(session))
    session.send(wire.ok(frame.rid))


async def leave(node: Node, session: Session, frame: Frame) -> None:
    agent = _agent(session)
    conv = await node.hub.conversation(session, frame.get("conv"))
    if agent.id not in conv.agents:
        raise FrameError(ErrorCode.CONFLICT, "you are not in this conversation")
    await node.convs.requeue(await node.hub.site(conv.site_id), conv.id, [agent.id])
    session.send(wire.ok(frame.rid))


async def watch(node: Node, session: Session, frame: Frame) -> None:
    conv = await node.hub.conversation(session, frame.get("conv"))
    await node.hub.follow(session, conv.id)
    session.send(wire.ok(frame.rid))


async def unwatch(node: Node, session: Session, frame: Frame) -> None:
    conv = await node.hub.conversation(session, frame.get("conv"))
    if _agent(session).id not in conv.agents:
        await node.hub.unfollow(session, conv.id)
    session.send(wire.ok(frame.rid))


async def transfer(node: Node, session: Session, frame: Frame) -> None:
    agent = _agent(session)
    conv = await node.hub.conversation(session, frame.get("conv"))
    _member(agent, conv)
    if frame.get("agent") and frame.get("dept"):
        raise FrameError(ErrorCode.INVALID_FIELD, "give 'agent' or 'dept', not both")
    site = await node.hub.site(conv.site_id)
    await node.convs.transfer(site, conv, agent, frame.get("agent"), frame.get("dept"))
    session.send(wire.ok(frame.rid))


async def close(node: Node, session: Session, frame: Frame) -> None:
    agent = _agent(session)
    conv = await node.hub.conversation(session, frame.get("conv"))
    _member(agent, conv)
    by = {"kind": "agent", **agent.public()}
    await node.convs.close(await node.hub.site(conv.site_id), conv.id, by)
    session.send(wire.ok(frame.rid))


async def visitors(node: Node, session: Session, frame: Frame) -> None:
    """The site's visitors connected right now (any process), newest first."""
    assert session.site is not None
    members = await node.presence.members(visitors_key(session.site.id))
    listed = sorted(members.items(), key=lambda m: -float(m[1].get("since", 0)))
    session.send(
        {
            "t": "visitors",
            "re": frame.rid,
            "count": len(members),
            "visitors": [{"id": v, **info} for v, info in listed[:MAX_VISITORS_LISTED]],
        }
    )


async def visitor(node: Node, session: Session, frame: Frame) -> None:
    """A visitor of the agent's site: the record and its last page views."""
    assert session.site is not None
    visitor_id = frame.get("visitor")
    record = await node.store.get_visitor(visitor_id)
    present = await node.presence.members(visitors_key(session.site.id))
    if record is None and visitor_id in present:
        # Online but without a row yet (visitors.py): the pages held here.
        record = unsaved(node, visitor_id, session.site.id)
        views = node.held.get(visitor_id)[::-1][:MAX_PAGES_LISTED]
    elif record is None or record.site_id != session.site.id:
        raise FrameError(ErrorCode.NOT_FOUND, "no such visitor")
    else:
        views = await node.store.page_views(record.id, limit=MAX_PAGES_LISTED)
    events = await node.store.visitor_events(record.id, limit=MAX_EVENTS_LISTED)
    past = await node.store.visitor_conversations(record.id, limit=MAX_PAST_CONVERSATIONS)
    session.send(
        {
            "t": "visitor",
            "re": frame.rid,
            "visitor": visitor_record(record, views[0] if views else None),
            "pages": [v.to_wire() for v in views],
            "events": [e.to_wire() for e in events],
            "conversations": [await node.convs.describe(c) for c in past],
            "online": present.get(record.id),
        }
    )


# -- the agent console: tags, invitations, collision detection -------------


def _agent_info(agent: Agent, status: AgentStatus) -> JSON:
    return {"name": agent.name, "status": status.value}


def clean_tags(values: list[str]) -> list[str]:
    tags = [v.strip() for v in values]
    if any(not t or not t.isprintable() for t in tags):
        raise FrameError(ErrorCode.INVALID_FIELD, "a tag is empty or holds control characters")
    return tags


async def tag(node: Node, session: Session, frame: Frame) -> None:
    """Add and remove tags of a conversation; the site's agents get a ``conv`` snapshot."""
    agent = _agent(session)
    conv = await node.hub.conversation(session, frame.get("conv"))
    _member(agent, conv)
    add = clean_tags(frame.get("add") or [])
    remove = clean_tags(frame.get("remove") or [])
    if not add and not remove:
        raise FrameError(ErrorCode.INVALID_FIELD, "give 'add' or 'remove'")
    if len((set(conv.tags) | set(add)) - set(remove)) > MAX_TAGS:
        raise FrameError(ErrorCode.CONFLICT, f"a conversation carries at most {MAX_TAGS} tags")
    await node.convs.tag(conv, add, remove, agent.id)
    session.send(wire.ok(frame.rid))


async def invite(node: Node, session: Session, frame: Frame) -> None:
    """Ask a connected colleague to join; they accept with ``join``."""
    agent = _agent(session)
    conv = await node.hub.conversation(session, frame.get("conv"))
    _member(agent, conv)
    if conv.state is ConvState.CLOSED:
        raise FrameError(ErrorCode.CONFLICT, "conversation is closed")
    target = await node.convs.agent(frame.get("agent"))
    if (
        target is None
        or target.site_id != conv.site_id
        or target.disabled
        or target.role is Role.ANALYST
    ):
        raise FrameError(ErrorCode.NOT_FOUND, "no such agent")
    if target.id == agent.id or target.id in conv.agents:
        raise FrameError(ErrorCode.CONFLICT, "that agent is already in the conversation")
    online = await node.presence.members(agents_key(conv.site_id))
    if target.id not in online:
        raise FrameError(ErrorCode.CONFLICT, "that agent is not connected")
    event = {"t": "invite", "conv": await node.convs.describe(conv), "by": agent.public()}
    await node.broker.publish(agent_channel(target.id), frame_event(event, "agents"))
    session.send(wire.ok(frame.rid))


async def view(node: Node, session: Session, frame: Frame) -> None:
    """Announce (``on``) or stop announcing that this connection shows a conversation."""
    agent = _agent(session)
    conv = await node.hub.conversation(session, frame.get("conv"))
    key = viewers_key(conv.id)
    if frame.get("on"):
        if conv.id not in session.viewing:
            if len(session.viewing) >= MAX_VIEWING:
                raise FrameError(
                    ErrorCode.CONFLICT, f"one connection views at most {MAX_VIEWING} conversations"
                )
            session.viewing[conv.id] = False
            await node.presence.add(key, agent.id, {"name": agent.name, "typing": False})
    elif session.viewing.pop(conv.id, None) is not None:
        await node.presence.remove(key, agent.id)
    session.send(wire.ok(frame.rid))
    await _publish_viewers(node, conv.site_id, conv.id)


async def _publish_viewers(node: Node, site_id: SiteId, conv_id: ConversationId) -> None:
    """Tell the site's agents who views the conversation now (the whole list)."""
    members = await node.presence.members(viewers_key(conv_id))
    agents = [
        {"id": a, "name": str(info.get("name", "")), "typing": bool(info.get("typing"))}
        for a, info in sorted(members.items())
    ]
    frame = {"t": "viewers", "conv": conv_id, "agents": agents}
    await node.broker.publish(site_channel(site_id), frame_event(frame, "agents"))


async def forget(node: Node, session: Session) -> None:
    """A closed agent connection: out of the site's agents and of what it viewed."""
    agent = session.agent
    if agent is None:
        return
    viewing, session.viewing = session.viewing, {}
    if session.present:
        session.present = False
        with contextlib.suppress(StoreError):
            await node.presence.remove(agents_key(agent.site_id), agent.id)
    for conv_id in viewing:
        with contextlib.suppress(StoreError):
            await node.presence.remove(viewers_key(conv_id), agent.id)
            await _publish_viewers(node, agent.site_id, conv_id)


# -- after a lost subscription (Hub._resubscribed) ------------------------------


async def resync(node: Node, agent_id: str) -> None:
    """The agent's channel was lost for a while: follow what the agent holds now.

    A missed ``follow`` (a chat assigned or transferred to them meanwhile)
    would leave their sockets on this process without its entries; the
    store says which open chats are theirs.  A missed ``unfollow`` leaves a
    chat followed like a watched one (``watch``), which is harmless; a missed
    ``status`` or ``invite`` is not re-sent (the router holds the status).
    """
    sessions = [s for s in node.hub.local_sessions(agent_channel(agent_id)) if s.site is not None]
    if not sessions:
        return
    assert sessions[0].site is not None
    for conv in await node.store.list_conversations(sessions[0].site.id, [ConvState.ACTIVE]):
        if agent_id in conv.agents:
            for session in sessions:
                if conv.id not in session.follows:
                    await node.hub.follow(session, conv.id)


async def resync_site(node: Node, site_id: SiteId) -> None:
    """The site's channel was lost for a while: its agents get every open chat again.

    One ``conv`` frame per queued or active conversation (what ``welcome``
    lists), so assignments, transfers and new chats missed meanwhile show.
    A chat closed meanwhile shows through its ``closed`` entry if the agent
    follows it; presence (``visitor``, ``viewers``) updates come with the
    next change.
    """
    channel = site_channel(site_id)
    if not node.hub.local_sessions(channel):
        return
    convs = await node.store.list_conversations(site_id, [ConvState.QUEUED, ConvState.ACTIVE])
    for conv in convs:
        frame = {"t": "conv", "conv": await node.convs.describe(conv)}
        node.hub.fan_out(channel, "agents", frame)


HANDLERS: dict[str, Handler] = {
    "send": send,
    "typing": typing,
    "status": status,
    "join": join,
    "leave": leave,
    "watch": watch,
    "unwatch": unwatch,
    "transfer": transfer,
    "close": close,
    "visitors": visitors,
    "visitor": visitor,
    "tag": tag,
    "invite": invite,
    "view": view,
}
