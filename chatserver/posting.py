"""The one way a visitor adds to a conversation: a typed message, a file, the offline form.

``post_from_visitor`` is the whole flow, the same for every kind of post:

1. the visitor's row is made if it has none yet (``visitor_rows.ensure``);
2. the conversation is the one named, or the visitor's open one, or a new one
   (opened in the visitor's department, ``offline`` when no agent is online,
   followed by every tab of the visitor);
3. the entry is appended durably (a conversation closed meanwhile starts a
   new one, unless the post named it: ``207 conflict``); a caller's
   ``bound`` step runs next (a file is bound to its entry);
4. the sender gets its ``ack``; the entry is published, which also emits the
   ``entry`` conversation event (``events.py``);
5. a new conversation's record is published, then it is queued and routed
   (``Conversations.enqueue``: in that order, so the ``queued`` record never
   reaches anyone after the ``active`` one of its assignment).

An answer by e-mail takes the same steps without a connection
(``post_from_mail``: no ack, no session to follow the conversation).

Whatever else follows a post is a listener of the conversation events: the
trigger engine routes a greeting the visitor answered (by any kind of post)
and counts the chat for the rule that greeted (``proactive/engine.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from time import perf_counter
from typing import TYPE_CHECKING

from . import cards
from .conversations import visitor_channel
from .errors import Closed, ErrorCode, FrameError
from .protocol.frames import Frame
from .session import Session
from .types import JSON, AuthorKind, Conversation, ConversationId, Entry, EntryKind, Site
from .visitor_rows import ensure

if TYPE_CHECKING:
    from .node import Node


@dataclass(slots=True)
class Post:
    """What a visitor posts: the entry's body and data, and where it may go."""

    body: str
    cid: str | None
    data: JSON = field(default_factory=dict)
    conv: ConversationId | None = None  # named by the frame: only there
    only: ConversationId | None = None  # a file posted before: only where it was
    draft_sent: bool = False  # the typed draft became this post: stop its preview


Bound = Callable[[Entry], Awaitable[None]]


async def post_from_visitor(
    node: Node, session: Session, frame: Frame, post: Post, bound: Bound | None = None
) -> Entry:
    """Store, acknowledge, publish and route a visitor's post (the module docstring)."""
    assert session.site is not None and session.visitor_id is not None
    post.body = cards.redact(post.body)  # never stored, whatever the client (cards.py)
    await ensure(node, session)
    site = await node.hub.site(session.site.id)
    new: Conversation | None = None
    conv_id: ConversationId | None
    if post.only is not None:
        if post.conv is not None and post.conv != post.only:
            raise FrameError(ErrorCode.CONFLICT, "attachment posted in another conversation")
        conv_id = post.only
    else:
        if post.conv is not None and post.conv not in session.follows:
            await node.hub.conversation(session, post.conv)  # not theirs: 205
        conv_id = post.conv or session.conv_id
    if conv_id is None:
        conv_id, new = await open_for(node, session, site, frame)
    if post.draft_sent and session.preview is not None:
        session.preview.cancel()  # the draft became this message
    try:
        entry, duplicate = await _append(node, session, conv_id, post)
    except Closed:
        if post.conv is not None or post.only is not None:
            raise FrameError(ErrorCode.CONFLICT, "conversation is closed") from None
        session.conv_id = None  # closed under us: the post starts a new one
        conv_id, new = await open_for(node, session, site, frame)
        entry, duplicate = await _append(node, session, conv_id, post)
    if bound is not None and post.only is None:
        await bound(entry)
    node.hub.ack(session, frame, entry, duplicate)
    await _published(node, site, entry, duplicate, new)
    return entry


async def _published(
    node: Node, site: Site, entry: Entry, duplicate: bool, new: Conversation | None
) -> None:
    """Steps 4 and 5 after the ack: publish the entry, queue and route a new conversation."""
    if not duplicate:
        await node.convs.publish_entry(site.id, entry)
    if new is not None:
        visitor = await node.store.get_visitor(new.visitor_id)
        await node.convs.enqueue_new(site, new, visitor.last_agent_id if visitor else None)


async def post_from_mail(node: Node, conv: Conversation, post: Post) -> tuple[Entry, bool]:
    """A visitor's post that comes without a connection: an answer by e-mail
    (``mail/inbound.py``), into ``conv``, the conversation its reference names.

    The same steps without a session: the visitor has a row already (the
    mail went to the address on it), the entry is appended durably, then
    published (followers see it live) and a new conversation routed.  When
    ``conv`` was closed meanwhile the answer goes on in the visitor's open
    conversation or a new one, as a post that names no conversation does
    (``data.previous`` names the closed one).  ``(entry, duplicate)``.
    """
    post.body = cards.redact(post.body)  # a card number never stored, mailed or not
    site = await node.hub.site(conv.site_id)
    new: Conversation | None = None
    try:
        entry, duplicate = await _append_for(node, conv, post)
    except Closed:
        online = await node.router.available_agents(site.id)
        current, created = await node.store.open_conversation(
            site.id, conv.visitor_id, conv.department, offline=online == 0
        )
        if created:
            new = current
            node.convs.opened(current)
            await node.broker.publish(
                visitor_channel(conv.visitor_id), {"op": "follow", "conv": current.id}
            )
        post.data = {**post.data, "previous": conv.id}
        entry, duplicate = await _append_for(node, current, post)
    await _published(node, site, entry, duplicate, new)
    return entry, duplicate


async def _append_for(node: Node, conv: Conversation, post: Post) -> tuple[Entry, bool]:
    return await node.store.append(
        conv.id,
        EntryKind.TEXT,
        AuthorKind.VISITOR,
        conv.visitor_id,
        "",
        post.body,
        post.cid,
        data=post.data or None,
        open_only=True,
    )


async def _append(
    node: Node, session: Session, conv_id: ConversationId, post: Post
) -> tuple[Entry, bool]:
    assert session.visitor_id is not None
    started = perf_counter()
    stored = await node.store.append(
        conv_id,
        EntryKind.TEXT,
        AuthorKind.VISITOR,
        session.visitor_id,
        "",
        post.body,
        post.cid,
        data=post.data or None,
        open_only=True,
    )
    node.metrics.store_commit.observe(perf_counter() - started)
    return stored


async def open_for(
    node: Node, session: Session, site: Site, frame: Frame
) -> tuple[ConversationId, Conversation | None]:
    """The visitor's open conversation, created if needed (then also returned)."""
    assert session.visitor_id is not None
    dept = frame.get("dept")
    if dept is not None and dept not in site.departments:
        raise FrameError(ErrorCode.NOT_FOUND, "no such department")
    if dept is None and session.dept in site.departments:
        dept = session.dept  # the hello's default, unless an admin removed it since
    online = await node.router.available_agents(site.id)
    conv, created = await node.store.open_conversation(
        site.id, session.visitor_id, dept, offline=online == 0
    )
    await node.hub.follow(session, conv.id)
    if created:
        node.convs.opened(conv)
        await node.broker.publish(
            visitor_channel(session.visitor_id), {"op": "follow", "conv": conv.id}
        )
    return conv.id, conv if created else None
