"""A real SMTP server for the mail tests: aiosmtpd on 127.0.0.1, a free port.

``SmtpServer`` runs aiosmtpd's ``Controller`` (its own thread and event
loop) and keeps every message it accepted, parsed, in ``messages``.
``refuse`` makes it answer every recipient with that reply (``"550 ..."``
for a permanent refusal, ``"451 ..."`` for a temporary one).  ``port`` is
chosen before the server starts, so a test can send to it while it is down
and start it later.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self.server.attempts += 1
        if self.server.refuse:
            return self.server.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = BytesParser(policy=policy.default).parsebytes(envelope.original_content)
        assert isinstance(msg, EmailMessage)
        with self.server.lock:
            self.server.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self.server.messages.append(msg)
        return "250 Message accepted"


class SmtpServer:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"smtp://127.0.0.1:{self.port}?from=chat@shop.example"
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.attempts = 0  # RCPT commands seen
        self.refuse = ""
        self.lock = threading.Lock()
        self._controller: Controller | None = None

    def start(self) -> SmtpServer:
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    async def wait(self, count: int = 1, timeout: float = 5.0) -> list[EmailMessage]:
        """The first ``count`` messages, once they arrived (at most ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.messages)} mails arrived, {count} expected")
            await asyncio.sleep(0.02)
        with self.lock:
            return list(self.messages[:count])
