"""The offline form: a visitor leaves a message while no agent is online.

An ``offline`` frame carries the visitor's name, e-mail address and message.
The name and address go to the visitor's record; the message is stored like
a ``send`` (a ``text`` entry in the visitor's open conversation, or in a new
one, which is ``offline: true`` when no agent is online), with
``data.offline = {name, email}`` so agents know to answer by e-mail.  The
conversation waits in the queue like any other: an agent who comes online
later finds it in ``welcome.conversations`` (routing assigns it as usual).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import Closed
from .frames import Frame
from .session import Session
from .types import AuthorKind, Conversation, Entry, EntryKind
from .visitors import _after_send, _open, _publish_visitor, ensure

if TYPE_CHECKING:
    from .hub import Hub


async def offline(hub: Hub, session: Session, frame: Frame) -> None:
    assert session.site is not None and session.visitor_id is not None
    await ensure(hub, session)
    site = await hub.site(session.site.id)
    name = frame.get("name", "").strip()
    email = frame.get("email").strip()
    visitor = await hub.store.update_visitor(session.visitor_id, name=name or None, email=email)
    data = {"offline": {"name": name, "email": email}}

    async def append(conv_id: str) -> tuple[Entry, bool]:
        return await hub.store.append(
            conv_id,
            EntryKind.TEXT,
            AuthorKind.VISITOR,
            visitor.id,
            "",
            frame.get("body").strip(),
            frame.get("cid"),
            data=data,
            open_only=True,
        )

    new: Conversation | None = None
    conv_id = session.conv_id
    if conv_id is None:
        conv_id, new = await _open(hub, session, site, frame)
    try:
        entry, duplicate = await append(conv_id)
    except Closed:  # closed under us: the message starts a new one
        session.conv_id = None
        conv_id, new = await _open(hub, session, site, frame)
        entry, duplicate = await append(conv_id)
    hub.ack(session, frame, entry, duplicate)
    await _after_send(hub, session, site, entry, duplicate, new)
    await _publish_visitor(hub, session, visitor, None)
