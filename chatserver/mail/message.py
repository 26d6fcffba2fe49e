"""A mail chatserver sends, as data (``Mail``), and its MIME form.

``Mail`` is what the queue holds (``to_json``/``from_json``: a durable
outbox stores it as a job's payload); ``mime`` turns it into the message put
on the wire once the site's SMTP settings are known.  Every header value is
checked for CR and LF (``header``): a visitor's name or a subject can never
add a header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate

from ..types import JSON, ConversationId, SiteId, new_id

# An e-mail address as the offline form and the transcript frame take it.
EMAIL = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+$")
MAX_EMAIL = 254


class HeaderInjection(ValueError):
    """A header value with a line break in it."""


def header(value: str) -> str:
    """``value`` if it is safe as a header value; raises ``HeaderInjection`` if not."""
    if "\r" in value or "\n" in value or "\0" in value:
        raise HeaderInjection("a header value may not contain a line break")
    return value


def valid_email(address: str) -> bool:
    return len(address) <= MAX_EMAIL and EMAIL.match(address) is not None


@dataclass(frozen=True, slots=True)
class Mail:
    """One message to one address.

    ``ref``: the conversation whose signed reference the mail carries (in its
    ``Message-ID`` and ``Reply-To``), so an answer finds its way back
    (``inbound.py``).  ``unsubscribe``: the URL of the one-click unsubscribe
    (``List-Unsubscribe``), for mail to visitors.  ``id`` is the mail's own,
    kept across retries (its ``Message-ID``).
    """

    site_id: SiteId
    to: str
    subject: str
    text: str
    html: str
    kind: str  # offline | unanswered | reply | transcript (logs, metrics)
    ref: ConversationId | None = None
    unsubscribe: str | None = None
    to_name: str = ""
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            object.__setattr__(self, "id", new_id("m").replace("_", "."))
        header(self.subject)
        header(self.to_name)
        if not valid_email(self.to):
            raise ValueError("not an e-mail address")
        if self.unsubscribe is not None:
            header(self.unsubscribe)

    def to_json(self) -> JSON:
        return {
            "site": self.site_id,
            "to": self.to,
            "to_name": self.to_name,
            "subject": self.subject,
            "text": self.text,
            "html": self.html,
            "kind": self.kind,
            "ref": self.ref,
            "unsubscribe": self.unsubscribe,
            "id": self.id,
        }

    @classmethod
    def from_json(cls, data: JSON) -> Mail:
        return cls(
            site_id=data["site"],
            to=data["to"],
            to_name=data.get("to_name", ""),
            subject=data["subject"],
            text=data["text"],
            html=data["html"],
            kind=data["kind"],
            ref=data.get("ref"),
            unsubscribe=data.get("unsubscribe"),
            id=data["id"],
        )


def mime(
    mail: Mail, sender: str, sender_name: str, domain: str, ref_id: str | None, reply_to: str | None
) -> EmailMessage:
    """The MIME message: ``multipart/alternative`` with the text and HTML parts.

    ``ref_id``: the signed reference (``reference.py``) put in the
    ``Message-ID``; ``reply_to``: the address replies go to, if any.
    """
    msg = EmailMessage()
    msg["From"] = formataddr((header(sender_name), header(sender)))
    msg["To"] = formataddr((mail.to_name, mail.to))
    msg["Subject"] = mail.subject
    msg["Date"] = formatdate(localtime=False)
    local = f"{mail.id}.{ref_id}" if ref_id else mail.id
    msg["Message-ID"] = f"<{header(local)}@{header(domain)}>"
    if reply_to:
        msg["Reply-To"] = header(reply_to)
    if mail.kind != "reply":  # an agent's answer is a person's message; the rest is not
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office answers it
    if mail.unsubscribe:
        msg["List-Unsubscribe"] = f"<{mail.unsubscribe}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(mail.text)
    msg.add_alternative(mail.html, subtype="html")
    return msg
