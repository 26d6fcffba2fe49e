"""Fixtures of the mail tests: a real SMTP server and an in-process node mailing to it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest

from chatserver.outbox import OutboxConfig
from chatserver.presence import visitors_key

from ..node import Node, NodeClient
from ..smtp_server import SmtpServer

PUBLIC = "https://chat.shop.example"
# Retries of mail jobs in tens of milliseconds, not the default's seconds to an hour.
FAST = OutboxConfig(retry_base=0.05, retry_cap=0.2, poll=0.05)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
async def mailnode(tmp_path: Path, smtp: SmtpServer) -> AsyncIterator[Node]:
    node = await Node(tmp_path / "node", smtp_url=smtp.url, public_url=PUBLIC).start()
    node.parts.outbox.config = FAST
    try:
        yield node
    finally:
        await node.close()


async def gone(node: Node, site_id: str, visitor: NodeClient, timeout: float = 3.0) -> None:
    """Close ``visitor`` and wait until presence no longer has it."""
    visitor_id = visitor.welcome["visitor"]
    await visitor.close()
    deadline = time.monotonic() + timeout
    while visitor_id in await node.parts.presence.members(visitors_key(site_id)):
        assert time.monotonic() < deadline, "the visitor stayed present"
        await asyncio.sleep(0.02)


def answer(to: EmailMessage, sender: str, text: str, quoted: bool = True) -> bytes:
    """A visitor's answer to ``to`` as a mail program writes it: threaded, quoting it."""
    msg = EmailMessage()
    msg["From"] = f"Ann <{sender}>"
    msg["To"] = str(to["Reply-To"] or to["From"])
    msg["Subject"] = "Re: " + str(to["Subject"])
    msg["Message-ID"] = make_msgid(domain="mail.example")
    msg["In-Reply-To"] = str(to["Message-ID"])
    msg["References"] = str(to["Message-ID"])
    original = to.get_body(preferencelist=("plain",))
    assert original is not None
    body = text
    if quoted:
        quote = "\n".join("> " + line for line in str(original.get_content()).splitlines())
        body += "\n\nOn Mon, 7 Dec 2026 at 10:00, Test shop <chat@shop.example> wrote:\n" + quote
    msg.set_content(body)
    return bytes(msg)
