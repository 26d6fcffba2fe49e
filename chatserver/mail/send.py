"""One attempt at sending one mail: the handler a queue (or the outbox) calls.

``send(node, mail)`` resolves the site's SMTP settings (``settings.py``),
builds the MIME message (``message.py``, with the signed reference of
``reference.py``) and hands it to the server with aiosmtplib.  It returns
when the server accepted the mail, or raises:

* ``MailRetry``: worth trying again later (connection refused or dropped, a
  timeout, a ``4xx`` answer);
* ``MailRejected``: trying again will not help (a ``5xx`` answer, such as a
  refused recipient or wrong credentials; no SMTP settings; an address the
  visitor unsubscribed meanwhile).

Neither carries the password: errors are logged through ``redact``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import aiosmtplib

from ..errors import ChatError
from . import reference
from .message import Mail, mime
from .settings import Security, SmtpSettings, for_site

if TYPE_CHECKING:
    from ..node import Node

log = logging.getLogger("chatserver.mail")
TIMEOUT = 20.0  # seconds for one SMTP conversation


class MailError(ChatError):
    """A mail was not sent."""


class MailRetry(MailError):
    """Not sent this time; a later attempt may succeed."""


class MailRejected(MailError):
    """Not sent, and never will be."""


def reply_address(settings: SmtpSettings, ref: str) -> str | None:
    """``local+<ref>@domain`` of the site's reply address (``None`` without one)."""
    if not settings.reply_to:
        return None
    local, _, domain = settings.reply_to.rpartition("@")
    return f"{local}+{ref}@{domain}"


async def send(node: Node, mail: Mail) -> None:
    """Hand ``mail`` to the site's SMTP server once (see the module docstring)."""
    settings = await for_site(node, mail.site_id)
    if settings is None:
        raise MailRejected("no SMTP server is set for the site")
    if mail.unsubscribe is not None and await node.mail.unsubscribed(mail.site_id, mail.to):
        raise MailRejected("the address unsubscribed")
    ref = reference.sign(node.signer, mail.ref) if mail.ref else None
    site = await node.store.get_site(mail.site_id)
    name = settings.sender_name or (site.name if site else "")
    message = mime(
        mail,
        settings.sender,
        name,
        settings.domain,
        ref,
        reply_address(settings, ref) if ref else None,
    )
    await deliver(settings, message)


async def deliver(settings: SmtpSettings, message: object) -> None:
    """One SMTP conversation with ``settings``' server."""
    try:
        await aiosmtplib.send(
            message,  # type: ignore[arg-type]
            hostname=settings.host,
            port=settings.port,
            username=settings.user or None,
            password=settings.password or None,
            use_tls=settings.security is Security.TLS,
            start_tls=settings.security is Security.STARTTLS,
            timeout=TIMEOUT,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = [r.code for r in exc.recipients]
        if all(400 <= c < 500 for c in codes):
            raise MailRetry(f"recipient deferred ({codes})") from None
        raise MailRejected(f"recipient refused ({codes})") from None
    except aiosmtplib.SMTPResponseException as exc:
        if 400 <= exc.code < 500:
            raise MailRetry(f"server answered {exc.code}") from None
        raise MailRejected(f"server answered {exc.code}") from None
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise MailRetry(f"{type(exc).__name__}: could not reach {settings.host}") from None
