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

from ..handlers.visitors import _publish_visitor
from ..posting import Post, post_from_visitor
from ..protocol.frames import Frame
from ..session import Session
from ..visitor_rows import ensure

if TYPE_CHECKING:
    from ..node import Node


async def offline(node: Node, session: Session, frame: Frame) -> None:
    assert session.visitor_id is not None
    await ensure(node, session)
    name = frame.get("name", "").strip()
    email = frame.get("email").strip()
    visitor = await node.store.update_visitor(session.visitor_id, name=name or None, email=email)
    data = {"offline": {"name": name, "email": email}}
    # The name first: agents' lists and the first message show it, not "Visitor 1a2b".
    await _publish_visitor(node, session, visitor, None)
    post = Post(frame.get("body").strip(), frame.get("cid"), data=data)
    await post_from_visitor(node, session, frame, post)
