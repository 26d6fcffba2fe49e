"""A real SMTP server for the mail tests: aiosmtpd on 127.0.0.1, a free port.

``SmtpServer`` runs aiosmtpd's ``Controller`` (its own thread and event
loop) and keeps every message it accepted, parsed, in ``messages``.
``refuse`` makes it answer every recipient with that reply (``"550 ..."``
for a permanent refusal, ``"451 ..."`` for a temporary one).  ``port`` is
chosen before the server starts, so a test can send to it while it is down
and start it later.

``security`` (``"starttls"`` or ``"tls"``) serves the certificate of
``self_signed`` (made with the ``openssl`` command, for ``127.0.0.1``) with
STARTTLS required, or TLS from the first byte; ``login`` requires AUTH with
that user and password.  A client trusts the certificate when
``SSL_CERT_FILE`` names it.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import threading
import time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from .redis_server import free_port


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1, valid for a day (``openssl req``)."""
    cert, key = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


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
    def __init__(
        self,
        port: int | None = None,
        security: str = "none",
        cert: tuple[Path, Path] | None = None,
        login: tuple[str, str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"smtp://127.0.0.1:{self.port}?from=chat@shop.example"
        self.security = security
        self.cert = cert
        self.login = login
        self.logins: list[str] = []  # users who authenticated
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.attempts = 0  # RCPT commands seen
        self.refuse = ""
        self.lock = threading.Lock()
        self._controller: Controller | None = None

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword) and self.login is not None:
            given = (data.login.decode(), data.password.decode())
            if given == self.login:
                self.logins.append(given[0])
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    def start(self) -> SmtpServer:
        kwargs: dict[str, Any] = {}
        if self.security != "none":
            assert self.cert is not None
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*self.cert)
            if self.security == "tls":
                kwargs["ssl_context"] = context
            else:
                kwargs.update(tls_context=context, require_starttls=True)
        if self.login is not None:
            # aiosmtpd counts only STARTTLS as TLS for AUTH, and warns when AUTH is
            # required without it; with TLS from the start AUTH is offered, not required.
            starttls = self.security == "starttls"
            kwargs.update(
                authenticator=self._authenticate, auth_required=starttls, auth_require_tls=starttls
            )
        self._controller = Controller(
            _Handler(self), hostname="127.0.0.1", port=self.port, **kwargs
        )
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
