"""The ``transcript`` frame: a visitor has their conversation mailed to them.

Validated by the sans-I/O core (``protocol/frames.py``: the conversation,
an address with nothing that could break a header, an optional language);
here: only the visitor's own conversation (``205`` otherwise, as for every
conversation id), one transcript per conversation per ``EVERY`` seconds
(``102 rate_limited``, counted in the Store so every process agrees), and
``204 not_allowed`` when the site sends no mail or the address unsubscribed.
The reply ``ok`` comes once the mail is queued.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ErrorCode, FrameError
from ..protocol import wire
from ..protocol.frames import Frame
from ..session import Session
from ..types import now
from .visitor import transcript

if TYPE_CHECKING:
    from ..node import Node

EVERY = 300.0  # seconds between two transcripts of a conversation
SENT = "mail_sent"  # site documents: when a conversation's last transcript was asked


async def transcript_frame(node: Node, session: Session, frame: Frame) -> None:
    conv = await node.hub.conversation(session, frame.get("conv"))
    email = frame.get("email").strip()
    site = await node.hub.site(conv.site_id)
    if await node.mail.settings(site.id) is None:
        raise FrameError(ErrorCode.NOT_ALLOWED, "the site sends no e-mail")
    if await node.mail.unsubscribed(site.id, email):
        raise FrameError(ErrorCode.NOT_ALLOWED, "this address gets no mail from the site")
    doc_id = f"transcript-{conv.id}"[:64]
    async with node.convs.locked(conv.id):  # two frames at once in this process: one mail
        last = await node.store.get_doc(site.id, SENT, doc_id)
        if last is not None and now() - float(last.data.get("at", 0)) < EVERY:
            raise FrameError(ErrorCode.RATE_LIMITED, "a transcript was sent a moment ago")
        await node.store.put_doc(site.id, SENT, doc_id, {"at": now()})
    mail = await transcript(
        node.mail, site, conv, email, frame.get("lang") or site.settings.language
    )
    if mail is None:  # the settings went away meanwhile
        raise FrameError(ErrorCode.NOT_ALLOWED, "the site sends no e-mail")
    await node.mail.put(mail, conv.id)
    session.send(wire.ok(frame.rid))
