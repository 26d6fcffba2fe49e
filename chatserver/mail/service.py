"""The node's mail: settings, the queue, the listener of conversation events.

``MailService`` is ``node.mail``.  It holds the server's default SMTP
settings (``--smtp``), the queue every mail goes through (``queue.py``: jobs
of the durable outbox), the agents' notification preferences
and the visitors' unsubscriptions (site documents, no migration), and it
listens to the conversation events (``events.py``) for what makes a mail:

* a visitor's offline-form message: the agents who want it (``notify.py``);
* a new chat still waiting in the queue after the site's delay: likewise;
* an agent's message in an offline conversation: the visitor
  (``visitor.py``), with the conversation's signed reference so that the
  answer comes back (``inbound.py``).

The transcript a visitor asks for is a frame (``transcript.py``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from typing import TYPE_CHECKING

from ..events import ConversationEvent, EventKind
from ..types import AgentId, AuthorKind, ConversationId, EntryKind, SiteId, now
from . import notify, visitor
from .inbound import Refusals
from .message import Mail
from .queue import MailQueue, OutboxQueue
from .send import send
from .settings import SmtpSettings, for_site, parse_url

if TYPE_CHECKING:
    from ..node import Node

log = logging.getLogger("chatserver.mail")

PREFS = "mail_prefs"  # site documents: an agent's notification choices, id = the agent id
UNSUBSCRIBED = "mail_unsub"  # id = sha256 of the lower-cased address; no address kept
MAX_TIMERS = 10_000  # unanswered-chat checks waiting in this process
MAX_CACHED = 10_000  # conversations whose offline flag this process remembers


class MailService:
    def __init__(self, node: Node) -> None:
        self.node = node
        url = node.config.smtp_url
        self.default: SmtpSettings | None = parse_url(url) if url else None
        # Every mail is a durable outbox job (queue.py), sent by the outbox's runner.
        self.outbox = OutboxQueue(node.store, node.outbox, lambda mail: send(node, mail))
        self.queue: MailQueue = self.outbox
        self._timers: dict[ConversationId, asyncio.TimerHandle] = {}
        self.refusals = Refusals()  # refused inbound mails per client address (web.py)
        # Whether a conversation is offline (fixed when it is opened), for the
        # conversations agents write in: a live chat's messages cost no read.
        self._offline: OrderedDict[ConversationId, bool] = OrderedDict()

    def install(self) -> None:
        self.node.convs.events.listen("mail", self.on_event, _wants)
        self.node.hub.add_service(None, self.close)

    async def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    # -- what the rest of chatserver asks --------------------------------------

    async def settings(self, site_id: SiteId) -> SmtpSettings | None:
        return await for_site(self.node, site_id)

    def base_url(self, settings: SmtpSettings) -> str:
        """Where links in mails point: the settings', the server's, else its address."""
        config = self.node.config
        return (
            settings.public_url or config.public_url or f"http://{config.host}:{config.port}"
        ).rstrip("/")

    async def offline(self, conv_id: ConversationId) -> bool:
        """Whether the conversation was opened offline (cached: it never changes)."""
        known = self._offline.get(conv_id)
        if known is None:
            conv = await self.node.store.get_conversation(conv_id)
            known = conv is not None and conv.offline
            self._offline[conv_id] = known
            if len(self._offline) > MAX_CACHED:
                self._offline.popitem(last=False)
        return known

    async def put(self, mail: Mail, key: str) -> None:
        await self.queue.put(mail, key=key)

    async def prefs(self, site_id: SiteId, agent_id: AgentId) -> dict[str, bool]:
        """An agent's choices: ``offline`` (default on) and ``unanswered`` (default off)."""
        doc = await self.node.store.get_doc(site_id, PREFS, agent_id)
        data = doc.data if doc else {}
        return {
            "offline": bool(data.get("offline", True)),
            "unanswered": bool(data.get("unanswered", False)),
        }

    async def set_prefs(self, site_id: SiteId, agent_id: AgentId, prefs: dict[str, bool]) -> None:
        data = {"offline": bool(prefs["offline"]), "unanswered": bool(prefs["unanswered"])}
        await self.node.store.put_doc(site_id, PREFS, agent_id, data)

    async def unsubscribed(self, site_id: SiteId, email: str) -> bool:
        return await self.node.store.get_doc(site_id, UNSUBSCRIBED, _address_id(email)) is not None

    async def unsubscribe(self, site_id: SiteId, email: str) -> None:
        await self.node.store.put_doc(site_id, UNSUBSCRIBED, _address_id(email), {"at": now()})

    # -- conversation events ----------------------------------------------------

    async def on_event(self, event: ConversationEvent) -> None:
        if event.kind is EventKind.OPENED:
            await self._watch_unanswered(event)
            return
        entry = event.entry
        assert entry is not None
        if entry.author_kind is AuthorKind.VISITOR:
            await notify.offline_message(self, event.site_id, entry)
        else:
            await visitor.agent_reply(self, event.site_id, entry)

    async def _watch_unanswered(self, event: ConversationEvent) -> None:
        settings = await self.settings(event.site_id)
        if settings is None or len(self._timers) >= MAX_TIMERS:
            return
        conv_id = event.conv_id

        def fire() -> None:
            self._timers.pop(conv_id, None)
            self.node.hub.spawn(notify.unanswered(self, event.site_id, conv_id, settings))

        loop = asyncio.get_running_loop()
        self._timers[conv_id] = loop.call_later(settings.unanswered, fire)


def _wants(event: ConversationEvent) -> bool:
    """Opened chats, visitors' offline-form messages and agents' text messages."""
    if event.kind is EventKind.OPENED:
        return True
    entry = event.entry
    if event.kind is not EventKind.ENTRY or entry is None or entry.kind is not EntryKind.TEXT:
        return False
    if entry.author_kind is AuthorKind.VISITOR:
        return "offline" in entry.data and "email_in" not in entry.data
    return entry.author_kind is AuthorKind.AGENT


def _address_id(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()
