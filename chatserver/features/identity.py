"""Who a visitor is: ``identify`` with an optional proof from the shop.

A shop that knows its customer (logged in) calls
``$chat.push(["identify", {id, name, email, hash}])`` where ``hash`` is the
hex HMAC-SHA256 of ``id`` keyed with the site's identity secret
(``chatserver site secret``), computed on the shop's server, so a script on
the page cannot claim to be another customer.  The secret never leaves the
server side of either.

* ``user_id`` with a valid ``hash``: the visitor is **verified** as that
  customer (agents see ``verified: true``).  When another visitor record of
  the site already holds that verified id and this browser's record has no
  open conversation, the browser **moves onto that record** so the
  customer's history follows them across devices: the ``ok`` reply carries
  ``visitor`` and ``token``, and the client reconnects with the new token.
  With an open conversation the browser stays on its record (verified too),
  so an ongoing chat never disappears.
* ``user_id`` without a valid ``hash``: kept as an **unverified** id, unless
  the site sets ``require_identity``: then ``206 forbidden`` and nothing
  changes.
* ``name`` / ``email`` alone: set as before (never verified).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING

from ..errors import ErrorCode, FrameError
from ..handlers.visitors import _publish_visitor
from ..protocol import wire
from ..protocol.frames import Frame
from ..session import Session
from ..visitor_rows import ensure

if TYPE_CHECKING:
    from ..node import Node


def identity_hash(secret: str, user_id: str) -> str:
    """What a shop sends as ``hash``: hex HMAC-SHA256 of the id, keyed by the secret."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def verify(secret: str, user_id: str, given: str) -> bool:
    return bool(secret) and hmac.compare_digest(identity_hash(secret, user_id), given.lower())


async def identify(node: Node, session: Session, frame: Frame) -> None:
    assert session.site is not None and session.visitor_id is not None
    site_id = session.site.id
    user_id: str | None = frame.get("user_id")
    verified = False
    if user_id is not None:
        given = frame.get("hash")
        if given is not None:
            verified = verify(await node.store.identity_secret(site_id), user_id, given)
        site = await node.store.get_site(site_id)  # fresh: the setting may have changed
        if not verified and site is not None and site.settings.require_identity:
            raise FrameError(ErrorCode.FORBIDDEN, "identity not verified: missing or wrong hash")
    reply = wire.ok(frame.rid)
    target = session.visitor_id
    if user_id is not None and verified:
        holder = await node.store.visitor_by_identity(site_id, user_id)
        if (
            holder is not None
            and holder.id != target
            and await node.store.current_conversation(target) is None
        ):
            target = holder.id
            reply["visitor"] = holder.id
            reply["token"] = node.signer.sign("visitor", site_id, holder.id)
    if target == session.visitor_id:  # moving onto a holder's row needs none of its own
        await ensure(node, session)
    if user_id is not None:
        await node.store.set_identity(target, user_id, verified)
    visitor = await node.store.update_visitor(
        target, name=frame.get("name"), email=frame.get("email")
    )
    await node.webhooks.visitor_identified(visitor)  # durable before the reply
    session.send(reply)
    await _publish_visitor(node, session, visitor, None)
