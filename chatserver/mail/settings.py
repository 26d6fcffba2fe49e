"""Where a site's mail goes out: SMTP server, security, credentials, sender.

Two places set it, and the site's wins:

* the console (``/console/admin/mail``, admins of the site), kept as the
  site document ``mail``/``smtp``: a site that sets a server uses it;
* the server's default for every other site, ``chatserver serve --smtp URL``
  (``CHATSERVER_SMTP``): ``smtp://`` (no encryption, for a relay on
  localhost), ``smtp+starttls://`` or ``smtps://`` (TLS from the start),
  ``user:password@host:port``, and the sender as ``?from=chat@shop.example``.

Admins are admins of one site, so the console changes that site's mail only;
the command line is the operator's, for every site that has not set its own.
The password is kept in the Store like the site's identity secret, never
shown back in a page and never logged (``redact.protect``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

from .. import redact
from ..types import JSON, SiteId
from .message import valid_email

if TYPE_CHECKING:
    from ..node import Node

DOC = ("mail", "smtp")  # the site document of the console's settings
DEFAULT_UNANSWERED = 300.0  # seconds a chat waits unanswered before agents are mailed


class Security(Enum):
    NONE = "none"  # plain SMTP (a relay on the same host or network)
    STARTTLS = "starttls"  # upgraded with STARTTLS (port 587)
    TLS = "tls"  # TLS from the first byte (port 465)


_SCHEMES = {"smtp": Security.NONE, "smtp+starttls": Security.STARTTLS, "smtps": Security.TLS}
_PORTS = {Security.NONE: 25, Security.STARTTLS: 587, Security.TLS: 465}


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int
    security: Security
    sender: str  # the From address
    user: str = ""
    password: str = ""
    sender_name: str = ""  # the From name; "" : the shop's name
    reply_to: str = ""  # where visitors' answers go (inbound), "" : the sender
    unanswered: float = DEFAULT_UNANSWERED
    public_url: str = ""  # links in mails (console, unsubscribe); "" : the server's own

    def __repr__(self) -> str:  # never the password, whatever prints it
        return f"SmtpSettings({self.host}:{self.port}, {self.security.value}, from={self.sender})"

    @property
    def domain(self) -> str:
        return self.sender.rpartition("@")[2]

    def to_json(self) -> JSON:
        return {
            "host": self.host,
            "port": self.port,
            "security": self.security.value,
            "sender": self.sender,
            "user": self.user,
            "password": self.password,
            "sender_name": self.sender_name,
            "reply_to": self.reply_to,
            "unanswered": self.unanswered,
            "public_url": self.public_url,
        }

    @classmethod
    def from_json(cls, data: JSON) -> SmtpSettings:
        return cls(
            host=str(data["host"]),
            port=int(data["port"]),
            security=Security(data.get("security", "starttls")),
            sender=str(data["sender"]),
            user=str(data.get("user", "")),
            password=str(data.get("password", "")),
            sender_name=str(data.get("sender_name", "")),
            reply_to=str(data.get("reply_to", "")),
            unanswered=float(data.get("unanswered", DEFAULT_UNANSWERED)),
            public_url=str(data.get("public_url", "")),
        )


def parse_url(url: str) -> SmtpSettings:
    """The server default from ``--smtp URL``; raises ``ValueError`` on a bad one."""
    parts = urlsplit(url)
    security = _SCHEMES.get(parts.scheme)
    if security is None:
        raise ValueError("an SMTP URL starts with smtp://, smtp+starttls:// or smtps://")
    if not parts.hostname:
        raise ValueError("an SMTP URL names a host")
    query = parse_qs(parts.query)
    sender = (query.get("from") or [""])[0]
    if not valid_email(sender):
        raise ValueError("an SMTP URL names the sender: ?from=chat@shop.example")
    reply_to = (query.get("reply_to") or [""])[0]
    if reply_to and not valid_email(reply_to):
        raise ValueError("reply_to is not an e-mail address")
    return SmtpSettings(
        host=parts.hostname,
        port=parts.port or _PORTS[security],
        security=security,
        sender=sender,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        sender_name=(query.get("name") or [""])[0],
        reply_to=reply_to,
        public_url=(query.get("public_url") or [""])[0].rstrip("/"),
    )


async def for_site(node: Node, site_id: SiteId) -> SmtpSettings | None:
    """The site's settings (the console's, else the server's default), or ``None``:
    no mail for this site."""
    doc = await node.store.get_doc(site_id, *DOC)
    if doc is not None and doc.data.get("host"):
        try:
            found = SmtpSettings.from_json(doc.data)
        except (KeyError, ValueError, TypeError):
            return None
        if len(found.password) >= 6:  # a shorter one would scrub common words from logs
            redact.protect_value(found.password)
        return found
    return node.mail.default
