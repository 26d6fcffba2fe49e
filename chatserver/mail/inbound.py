"""A visitor's answer by e-mail, back into its conversation.

Inbound mail arrives over HTTP (``POST /mail/inbound``, ``web.py``), as the
raw message (RFC 5322) in any of three forms: the body itself
(``Content-Type: message/rfc822``, what an MTA's pipe to ``curl`` sends),
Mailgun's ``body-mime`` form field (a route that "stores and notifies" to a
URL ending in ``mime``), or Postmark's JSON with ``RawEmail`` (inbound with
"include raw email content").  ``accept`` then:

1. parses the message (at most ``MAX_BYTES``; the endpoint refuses more
   before reading it whole);
2. finds the signed conversation reference in ``In-Reply-To``,
   ``References`` or a recipient address (``reference.py``): a reference with
   a wrong signature is refused as forged;
3. checks that the sender (``From``) is the conversation's visitor's address,
   and that the mail is not an automatic reply (``Auto-Submitted``,
   ``Precedence``, ``X-Autoreply``: an out-of-office is not an answer);
4. keeps the answer's own text (``text/plain``, else the HTML as text),
   without the quoted history (``quotes.py``), cut to a message's length;
5. posts it as the visitor's message through the posting flow
   (``posting.post_from_mail``), so agents following the conversation get
   it live.  The ``cid`` comes from the ``Message-ID``: a provider that
   delivers the same mail twice adds one message.

Failures are ``Refused`` with an HTTP status and a short code.
"""

from __future__ import annotations

import hashlib
import html
import re
import time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr
from typing import TYPE_CHECKING

from ..errors import ChatError
from ..posting import Post, post_from_mail
from ..protocol.frames import MAX_MESSAGE_CHARS
from ..types import Entry
from . import reference
from .quotes import strip

if TYPE_CHECKING:
    from ..node import Node

MAX_BYTES = 512 * 1024  # a raw inbound mail, attachments included
_ADDRESS_HEADERS = ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To")


class Refused(ChatError):
    """An inbound mail not taken: ``status`` (HTTP) and ``code`` say why."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _text_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # an unknown charset, a broken encoding
        return ""
    if not isinstance(content, str):
        return ""
    if part.get_content_type() == "text/html":
        return html_to_text(content)
    return content


_BLOCKS = re.compile(r"<\s*(br|/p|/div|/li|/tr|/h\d|/blockquote)\b[^>]*>", re.IGNORECASE)
_DROP = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_QUOTE = re.compile(
    r"<blockquote\b.*|<div[^>]*class=\"?(gmail_quote|moz-cite-prefix)\b.*", re.I | re.S
)
_TAGS = re.compile(r"<[^>]*>")


def html_to_text(markup: str) -> str:
    """The text of an HTML answer, line breaks kept, quoted parts dropped."""
    markup = _DROP.sub("", markup)
    markup = _QUOTE.sub("", markup)
    markup = _BLOCKS.sub("\n", markup)
    return html.unescape(_TAGS.sub("", markup))


def _automatic(msg: EmailMessage) -> bool:
    """An out-of-office or other automatic reply (RFC 3834 and the usual headers)."""
    submitted = str(msg.get("Auto-Submitted", "no")).strip().lower()
    precedence = str(msg.get("Precedence", "")).strip().lower()
    return (
        submitted != "no"
        or precedence in ("bulk", "junk", "list", "auto_reply")
        or "X-Autoreply" in msg
        or "X-Autorespond" in msg
    )


def parse(raw: bytes) -> EmailMessage:
    if len(raw) > MAX_BYTES:
        raise Refused(413, "too_large", f"a mail of at most {MAX_BYTES} bytes")
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    if not msg.keys():
        raise Refused(400, "not_a_mail", "the body is not an e-mail message")
    return msg


async def accept(node: Node, raw: bytes, recipients: str = "") -> tuple[Entry, bool]:
    """Post the answer in ``raw`` into its conversation (the module docstring)."""
    msg = parse(raw)
    try:
        headers = [str(msg.get("In-Reply-To", "")), str(msg.get("References", ""))]
        addresses = [str(v) for h in _ADDRESS_HEADERS for v in msg.get_all(h, [])]
        sender = parseaddr(str(msg.get("From", "")))[1]
    except (ValueError, TypeError, IndexError):  # a header the parser cannot read
        raise Refused(400, "not_a_mail", "unreadable headers") from None
    if _automatic(msg):
        raise Refused(422, "auto_reply", "an automatic reply (out of office) is not an answer")
    recipients_seen = " ".join(a for _, a in getaddresses([*addresses, recipients]))
    conv_id, seen = reference.find(node.signer, *headers, recipients_seen)
    if conv_id is None:
        if seen:
            raise Refused(403, "forged_reference", "the conversation reference is not valid")
        raise Refused(422, "no_reference", "the mail answers no mail of this server")
    conv = await node.store.get_conversation(conv_id)
    if conv is None:
        raise Refused(404, "no_conversation", "no such conversation")
    visitor = await node.store.get_visitor(conv.visitor_id)
    if visitor is None or not visitor.email or sender.lower() != visitor.email.strip().lower():
        raise Refused(403, "wrong_sender", "the sender is not the conversation's visitor")
    body = strip(_text_of(msg))[:MAX_MESSAGE_CHARS].strip()
    if not body:
        raise Refused(422, "empty", "the answer has no text of its own")
    message_id = str(msg.get("Message-ID", "")) or hashlib.sha256(raw).hexdigest()
    cid = "mail-" + hashlib.sha256(message_id.encode()).hexdigest()[:40]
    post = Post(body, cid, data={"email_in": {"from": sender}})
    return await post_from_mail(node, conv, post)


REFUSALS = 30  # refused inbound mails a minute from one address, then 429
MAX_ADDRESSES = 10_000  # addresses remembered; past that, all are forgotten


class Refusals:
    """Refused mails per client address in the last minute, in this process (a
    provider's address sends many good mails and few refused ones)."""

    def __init__(self, limit: int = REFUSALS, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._seen: dict[str, list[float]] = {}

    def wait(self, address: str) -> float:
        """Seconds until ``address`` may send again (0: now)."""
        now = time.monotonic()
        recent = [t for t in self._seen.get(address, ()) if now - t < self.window]
        if recent:
            self._seen[address] = recent
        else:
            self._seen.pop(address, None)
        return self.window - (now - recent[0]) if len(recent) >= self.limit else 0.0

    def refused(self, address: str) -> None:
        if len(self._seen) > MAX_ADDRESSES:
            self._seen.clear()
        self._seen.setdefault(address, []).append(time.monotonic())
