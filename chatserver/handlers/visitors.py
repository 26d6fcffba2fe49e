"""The visitor side of the hub: hello, and the frames only visitors send.

Handlers are functions of the hub, the session and the frame; ``HANDLERS``
maps frame types to them (the shared ones live in ``hub.py``).

**Visitor rows are made lazily** (docs/protocol.md §3).  A ``hello`` without
a token gets a new visitor id and a signed token, but nothing is written to
the Store: a bare connect costs no row.  ``ensure`` writes the row when the
visitor first does something worth keeping: a message (``send``,
``attach``, ``offline``), ``attrs``, ``identify``, ``track``, or a trigger
firing for it.  Until then its page views are held in memory
(``held.HeldPages``, ``hub.held``) and written with the row; presence,
triggers and the agents' ``visitor`` frames see an unsaved record meanwhile.  A
resume with the token of a visitor without a row keeps the same id.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import cards
from ..conversations import (
    conv_channel,
    frame_event,
    site_channel,
    site_visitors_channel,
    visitor_channel,
)
from ..errors import CloseCode, ConnectionClosing, ErrorCode, FrameError
from ..posting import Post, post_from_visitor
from ..presence import visitors_key
from ..preview import Preview
from ..protocol import wire
from ..protocol.frames import PROTOCOL_VERSION, Frame
from ..session import Session
from ..types import JSON, ClientKind, ConversationId, PageView, Visitor, sorted_id
from ..useragent import client_info
from ..visitor_rows import current, ensure

if TYPE_CHECKING:
    from ..hub import Handler
    from ..node import Node


# An IANA time zone name such as "Europe/Madrid" or "America/Argentina/Buenos_Aires".
_TZ = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,2}")


def _page_info(page: Any) -> JSON:
    """What presence keeps of a visitor: since when, the page from hello, its time zone."""
    info: JSON = {"since": time.time()}
    if isinstance(page, dict):
        for field in ("url", "title"):
            value = page.get(field)
            if isinstance(value, str):
                info[field] = value[:500]
        tz = page.get("tz")
        if isinstance(tz, str) and len(tz) <= 64 and _TZ.fullmatch(tz):
            info["tz"] = tz
    return info


async def hello(
    node: Node,
    session: Session,
    frame: Frame,
    origin: str | None,
    headers: Mapping[str, str] | None = None,
) -> None:
    wait = node.quotas.hellos_address.take(session.remote)
    if wait:
        raise ConnectionClosing(
            CloseCode.RATE_LIMITED, f"too many connections from this address, retry in {wait:.0f}s"
        )
    site = await node.store.site_by_key(frame.get("site"))
    if site is None:
        raise ConnectionClosing(CloseCode.UNKNOWN_SITE, "unknown site key")
    if not site.origin_allowed(origin):
        raise ConnectionClosing(CloseCode.ORIGIN_NOT_ALLOWED, "origin not allowed for site")
    wait = node.quotas.hellos_site.take(site.id)
    if wait:
        raise ConnectionClosing(
            CloseCode.RATE_LIMITED, f"too many connections to this site, retry in {wait:.0f}s"
        )
    node.hub.sites[site.id] = site
    visitor = None
    visitor_id = None
    token = frame.get("token")
    if token:
        fields = node.signer.verify("visitor", token)
        if fields and len(fields) == 2 and fields[0] == site.id:
            visitor_id = fields[1]
            visitor = await node.store.get_visitor(visitor_id)
            if visitor is not None and visitor.site_id != site.id:
                visitor = visitor_id = None
            elif visitor is None and await node.store.is_erased(visitor_id):
                visitor_id = None  # erased on request (docs/privacy.md): a new visitor
    if visitor_id is None:  # a new visitor: a token now, a row once it is worth keeping
        visitor_id = sorted_id("v")
        token = node.signer.sign("visitor", site.id, visitor_id)
    session.stored = visitor is not None
    if visitor is None:
        visitor = Visitor(id=visitor_id, site_id=site.id, created_at=time.time())
    session.conn.accept(ClientKind.VISITOR)
    session.kind = ClientKind.VISITOR
    session.site = site
    session.visitor_id = visitor.id
    session.preview = Preview(
        node.limits.preview_interval, lambda conv, text: _publish_preview(node, session, conv, text)
    )
    dept = frame.get("dept")
    if dept in site.departments:
        session.dept = dept
    conv = await node.store.current_conversation(visitor.id) if session.stored else None
    # Present before welcomed: once a client has its welcome, agents see it.
    session.presence_info = _page_info(frame.get("page"))
    if headers is not None:  # browser, os, device and lang of the visitor
        session.presence_info.update(
            client_info(headers.get("user-agent", ""), headers.get("accept-language", ""))
        )
    await node.presence.add(visitors_key(site.id), visitor.id, session.presence_info)
    session.present = True
    session.agents_online = await node.router.available_agents(site.id)
    session.send(
        {
            "t": "welcome",
            "v": PROTOCOL_VERSION,
            "re": frame.rid,
            "visitor": visitor.id,
            "token": token,
            "site": {"name": site.name, "settings": site.settings.to_json()},
            "agents_online": session.agents_online,
            "conv": conv.id if conv else None,
            "limits": node.hub.limits_json(),
        }
    )
    await node.hub.subscribe(session, visitor_channel(visitor.id))
    await node.hub.subscribe(session, site_visitors_channel(site.id))
    if conv is not None:
        await node.hub.follow(session, conv.id)
    await node.triggers.hello(session, visitor, conv, frame.get("page"))


async def send(node: Node, session: Session, frame: Frame) -> None:
    """A typed message: the one posting flow (``posting.py``).

    One store round trip on the common path: a visitor follows only their own
    conversations, so a followed id needs no ownership read, and whether the
    conversation is still open is decided by the append itself.
    """
    post = Post(frame.get("body"), frame.get("cid"), conv=frame.get("conv"), draft_sent=True)
    await post_from_visitor(node, session, frame, post)


async def typing(node: Node, session: Session, frame: Frame) -> None:
    if session.preview is not None and session.conv_id is not None:
        session.preview.typed(session.conv_id, cards.redact_draft(frame.get("draft")))


def _publish_preview(node: Node, session: Session, conv_id: ConversationId, text: str) -> None:
    """Agents get the draft, or with the site's preview off only "typing"."""
    assert session.site is not None
    site = node.hub.sites.get(session.site.id, session.site)
    if site.settings.typing_preview:
        frame: JSON = {"t": "preview", "conv": conv_id, "text": text}
    else:
        frame = {
            "t": "typing",
            "conv": conv_id,
            "from": {"kind": "visitor", "id": session.visitor_id, "name": ""},
            "on": bool(text),
        }
    node.broker.publish_soon(conv_channel(conv_id), frame_event(frame, "agents"))


async def close(node: Node, session: Session, frame: Frame) -> None:
    conv_id = frame.get("conv") or session.conv_id
    if conv_id is None:
        raise FrameError(ErrorCode.NOT_FOUND, "no open conversation")
    conv = await node.hub.conversation(session, conv_id)
    by = {"kind": "visitor", "id": session.visitor_id}
    await node.convs.close(await node.hub.site(conv.site_id), conv.id, by)
    session.send(wire.ok(frame.rid))


def visitor_record(visitor: Visitor, page: PageView | None) -> JSON:
    """A visitor as agents see it: the record and its latest page (or null)."""
    return {**visitor.to_wire(), "page": page.to_wire() if page else None}


async def resync(node: Node, visitor_id: str) -> None:
    """The visitor's channel was lost for a while: follow their open conversation.

    A missed ``follow`` (a conversation opened in another tab, or by a
    proactive greeting) would leave this process's tabs without it; the
    store says which one is open.  A missed ``open`` (a trigger's) is not
    re-sent: it was a moment's suggestion.
    """
    sessions = node.hub.local_sessions(visitor_channel(visitor_id))
    if not sessions:
        return
    conv = await node.store.current_conversation(visitor_id)
    if conv is None:
        return
    for session in sessions:
        if conv.id not in session.follows:
            await node.hub.follow(session, conv.id)


async def _publish_visitor(
    node: Node, session: Session, visitor: Visitor, page: PageView | None
) -> None:
    """Tell the site's agents what changed about a visitor."""
    assert session.site is not None
    if page is None:
        views = await node.store.page_views(visitor.id, limit=1)
        page = views[0] if views else None
    frame = {"t": "visitor", "visitor": visitor_record(visitor, page)}
    await node.broker.publish(site_channel(session.site.id), frame_event(frame, "agents"))


async def page(node: Node, session: Session, frame: Frame) -> None:
    """A page view: stored for a visitor with a row, else held in the session."""
    assert session.site is not None and session.visitor_id is not None
    url, title, referrer = frame.get("url"), frame.get("title", ""), frame.get("referrer", "")
    if session.stored:
        view = await node.store.add_page_view(session.visitor_id, url, title, referrer)
    else:
        view = node.held.add(session.visitor_id, url, title, referrer)
    if session.present:
        # The page becomes the visitor's presence info (last writer wins).
        info = {**session.presence_info, "url": view.url[:500], "title": view.title[:500]}
        session.presence_info = info
        await node.presence.update(visitors_key(session.site.id), session.visitor_id, info)
    session.send(wire.ok(frame.rid))
    visitor = await current(node, session)
    await _publish_visitor(node, session, visitor, view)
    await node.triggers.page(session, view, visitor)


async def attrs(node: Node, session: Session, frame: Frame) -> None:
    assert session.visitor_id is not None
    await ensure(node, session)
    visitor = await node.store.update_visitor(session.visitor_id, attributes=frame.get("set"))
    session.send(wire.ok(frame.rid))
    await _publish_visitor(node, session, visitor, None)
    await node.triggers.attributes(session, visitor)


HANDLERS: dict[str, Handler] = {
    "send": send,
    "typing": typing,
    "close": close,
    "page": page,
    "attrs": attrs,
}
