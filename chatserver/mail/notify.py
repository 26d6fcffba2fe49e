"""Mails to agents: an offline message was left, a chat waits unanswered.

Who gets one: the site's agents who take chats (not disabled, not analysts),
in the conversation's department when it has one (an agent without
departments takes every department's chats, as routing has it), who chose
it in their notification settings (``/console/mail``: offline messages on
by default, unanswered chats off).  Each mail names the visitor and links to
the conversation in the console; it carries no reference, since agents
answer in the console.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..types import Agent, AuthorKind, ConversationId, ConvState, Entry, Site, SiteId
from .message import Mail, valid_email
from .render import render
from .settings import SmtpSettings

if TYPE_CHECKING:
    from .service import MailService

log = logging.getLogger("chatserver.mail")


async def recipients(
    service: MailService, site: Site, department: str | None, choice: str
) -> list[Agent]:
    """The agents of ``site`` who want mail of ``choice`` (``offline``, ``unanswered``)."""
    chosen = []
    for agent in await service.node.store.list_agents(site.id):
        if not agent.takes_chats or not valid_email(agent.email):
            continue
        if department and agent.departments and department not in agent.departments:
            continue
        if (await service.prefs(site.id, agent.id))[choice]:
            chosen.append(agent)
    return chosen


async def offline_message(service: MailService, site_id: SiteId, entry: Entry) -> None:
    """A visitor's offline-form message: mail the agents who want it."""
    settings = await service.settings(site_id)
    store = service.node.store
    site = await store.get_site(site_id)
    conv = await store.get_conversation(entry.conversation_id)
    if settings is None or site is None or conv is None:
        return
    left = entry.data.get("offline") or {}
    name, email = str(left.get("name", "")), str(left.get("email", ""))
    await _mail_agents(
        service,
        settings,
        site,
        conv.department,
        "offline",
        entry.conversation_id,
        {"name": name, "email": email, "body": entry.body},
    )


async def unanswered(
    service: MailService, site_id: SiteId, conv_id: ConversationId, settings: SmtpSettings
) -> None:
    """A chat opened ``settings.unanswered`` seconds ago: mail if it still waits."""
    store = service.node.store
    conv = await store.get_conversation(conv_id)
    site = await store.get_site(site_id)
    if conv is None or site is None or conv.state is not ConvState.QUEUED or conv.offline:
        return
    first = await store.entries(conv_id, after=0, limit=20, include_notes=False)
    said = next((e.body for e in first if e.author_kind is AuthorKind.VISITOR), None)
    if said is None:
        return  # a greeting nobody answered: the visitor asked for nothing
    await _mail_agents(
        service,
        settings,
        site,
        conv.department,
        "unanswered",
        conv_id,
        {"minutes": max(1, round(settings.unanswered / 60)), "body": said},
    )


async def _mail_agents(
    service: MailService,
    settings: SmtpSettings,
    site: Site,
    department: str | None,
    kind: str,
    conv_id: ConversationId,
    context: dict[str, object],
) -> None:
    base = service.base_url(settings)
    for agent in await recipients(service, site, department, kind):
        subject, text, html = render(
            kind,
            site.settings.language,
            shop=site.name,
            link=f"{base}/console/conversations/{conv_id}",
            prefs_url=f"{base}/console/mail",
            **context,
        )
        mail = Mail(site.id, agent.email, subject, text, html, kind, to_name=agent.name)
        await service.put(mail, key=f"agent:{agent.id}")
    log.debug("%s mail for %s queued", kind, conv_id)
