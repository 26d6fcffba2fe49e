"""Mails to visitors: an agent's answer to an offline message, a transcript.

Every mail to a visitor carries an unsubscribe link (and the
``List-Unsubscribe`` headers, RFC 2369 and RFC 8058's one-click) that stops
every later mail of the site to that address; an address that unsubscribed
gets nothing, also from a mail queued before (``send.send`` checks again).

* **Answer** (``agent_reply``): an agent's text message in an *offline*
  conversation (opened while no agent was online: the offline form's) whose
  visitor left an e-mail address and is not connected now goes to that
  address, with the conversation's signed reference, so that the visitor's
  answer by e-mail comes back into the conversation (``inbound.py``).
* **Transcript** (``transcript``): the whole conversation, notes and system
  events left out.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..presence import visitors_key
from ..security import Signer
from ..types import AuthorKind, Conversation, Entry, EntryKind, Site, SiteId
from .message import Mail, valid_email
from .render import one_line, render
from .strings import strings

if TYPE_CHECKING:
    from .service import MailService

UNSUBSCRIBE = "unsub"  # the purpose of unsubscribe tokens
MAX_TRANSCRIPT = 2000  # entries of a conversation put in a transcript at most


def unsubscribe_token(signer: Signer, site_id: SiteId, email: str) -> str:
    address = base64.urlsafe_b64encode(email.strip().lower().encode()).decode().rstrip("=")
    return signer.sign(UNSUBSCRIBE, site_id, address)


def read_unsubscribe(signer: Signer, token: str) -> tuple[SiteId, str] | None:
    """The site and address of a valid unsubscribe token, else ``None``."""
    fields = signer.verify(UNSUBSCRIBE, token)
    if not fields or len(fields) != 2:
        return None
    try:
        email = base64.urlsafe_b64decode(fields[1] + "=" * (-len(fields[1]) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return SiteId(fields[0]), email


def _unsubscribe_url(service: MailService, base: str, site_id: SiteId, email: str) -> str:
    return f"{base}/mail/unsubscribe?t={unsubscribe_token(service.node.signer, site_id, email)}"


async def agent_reply(service: MailService, site_id: SiteId, entry: Entry) -> None:
    """Mail an agent's message to the visitor of an offline conversation."""
    node = service.node
    if not await service.offline(entry.conversation_id):
        return  # a live chat: the common case, answered from memory
    conv = await node.store.get_conversation(entry.conversation_id)
    if conv is None:
        return
    visitor = await node.store.get_visitor(conv.visitor_id)
    if visitor is None or not valid_email(visitor.email):
        return
    settings = await service.settings(site_id)
    site = await node.store.get_site(site_id)
    if settings is None or site is None or await service.unsubscribed(site_id, visitor.email):
        return
    if visitor.id in await node.presence.members(visitors_key(site_id)):
        return  # connected: the widget shows the answer
    unsubscribe = _unsubscribe_url(service, service.base_url(settings), site_id, visitor.email)
    subject, text, html = render(
        "reply",
        site.settings.language,
        shop=site.name,
        agent=entry.author_name or strings(site.settings.language)["agent"],
        body=entry.body,
        unsubscribe=unsubscribe,
    )
    mail = Mail(
        site_id,
        visitor.email,
        subject,
        text,
        html,
        "reply",
        ref=conv.id,
        unsubscribe=unsubscribe,
        to_name=one_line(visitor.name, 100),
    )
    await service.put(mail, key=conv.id)


def _line(entry: Entry, language: str) -> dict[str, str] | None:
    if entry.kind is not EntryKind.TEXT:
        return None  # notes and system events are not the visitor's
    t = strings(language)
    if entry.author_kind is AuthorKind.VISITOR:
        who = t["visitor"]
    else:
        who = entry.author_name or t["agent"]
    body = entry.body
    if "attachment" in entry.data:
        body = f"[{t['file']}: {entry.body}]"
    when = datetime.fromtimestamp(entry.ts, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return {"who": who, "body": body, "time": when}


async def transcript(
    service: MailService, site: Site, conv: Conversation, email: str, language: str
) -> Mail | None:
    """The transcript mail of ``conv`` to ``email`` (``None``: the site sends no mail)."""
    settings = await service.settings(site.id)
    if settings is None:
        return None
    lines: list[dict[str, str]] = []
    after = 0
    while len(lines) < MAX_TRANSCRIPT:
        batch = await service.node.store.entries(conv.id, after=after, include_notes=False)
        if not batch:
            break
        lines.extend(line for e in batch if (line := _line(e, language)) is not None)
        after = batch[-1].offset
    base = service.base_url(settings)
    unsubscribe = _unsubscribe_url(service, base, site.id, email)
    subject, text, html = render(
        "transcript",
        language,
        shop=site.name,
        lines=lines[:MAX_TRANSCRIPT],
        unsubscribe=unsubscribe,
    )
    return Mail(site.id, email, subject, text, html, "transcript", unsubscribe=unsubscribe)
