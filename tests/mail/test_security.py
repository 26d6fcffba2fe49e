"""The connection's security and credentials against a real SMTP server.

aiosmtpd with a self-signed certificate for 127.0.0.1 (trusted through
``SSL_CERT_FILE``) and AUTH required: STARTTLS, TLS from the first byte,
and a wrong password (a permanent ``535``: not retried).  The settings are
the site's, as the console stores them.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatserver.mail.message import Mail
from chatserver.mail.send import MailRejected, MailRetry, send
from chatserver.mail.settings import DOC

from ..node import Node
from ..smtp_server import SmtpServer, self_signed

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command"),
]
LOGIN = ("shop", "p4ss-w0rd")


@pytest.fixture
def cert(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    made = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(made[0]))  # the client trusts it
    return made


@pytest.fixture(params=["starttls", "tls"])
def secure(request: pytest.FixtureRequest, cert: tuple[Path, Path]) -> Iterator[SmtpServer]:
    server = SmtpServer(security=request.param, cert=cert, login=LOGIN).start()
    yield server
    server.stop()


async def settle(node: Node, smtp: SmtpServer, password: str) -> Mail:
    shop = await node.seed(agents=0)
    settings = {
        "host": "127.0.0.1",
        "port": smtp.port,
        "security": smtp.security,
        "sender": "chat@shop.example",
        "user": LOGIN[0],
        "password": password,
    }
    await node.store.put_doc(shop.site.id, *DOC, settings)
    return Mail(shop.site.id, "ann@example.com", "Hello", "text", "<p>html</p>", "transcript")


async def test_starttls_and_tls_with_credentials(node: Node, secure: SmtpServer) -> None:
    mail = await settle(node, secure, LOGIN[1])
    await send(node.parts, mail)
    [got] = await secure.wait(1)
    assert str(got["Subject"]) == "Hello" and secure.logins == [LOGIN[0]]


async def test_a_wrong_password_is_rejected_not_retried(node: Node, secure: SmtpServer) -> None:
    mail = await settle(node, secure, "wrong")
    with pytest.raises(MailRejected, match="535"):
        await send(node.parts, mail)
    assert secure.messages == []


async def test_an_untrusted_certificate_is_not_sent_to(
    node: Node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = SmtpServer(security="tls", cert=self_signed(tmp_path), login=LOGIN).start()
    try:
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        mail = await settle(node, server, LOGIN[1])
        with pytest.raises(MailRetry):
            await send(node.parts, mail)
        assert server.messages == [] and server.logins == []
    finally:
        server.stop()
