"""The widget's "Email me this chat" in a real browser, against a real server
(started with ``--smtp``) and a real SMTP server (aiosmtpd) that receives the
transcript."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, expect

from ..conftest import Server
from ..smtp_server import SmtpServer
from .test_widget_browser import Agent, ShopServer, make_shop, shop_page
from .test_widget_features_browser import open_chat, send

pytestmark = pytest.mark.browser


@pytest.fixture
def mailing(tmp_path: Path) -> Iterator[tuple[Server, SmtpServer]]:
    smtp = SmtpServer().start()
    server = Server(tmp_path / "server", "--smtp", smtp.url).start()
    yield server, smtp
    server.stop()
    smtp.stop()


def test_the_visitor_mails_the_transcript_from_under_the_rating(
    mailing: tuple[Server, SmtpServer], shops: ShopServer, context: BrowserContext
) -> None:
    server, smtp = mailing
    shop = make_shop(server, agents=1)
    agent = Agent(server, next(iter(shop.agents)))
    problems: list[str] = []
    page = open_chat(
        context, shops.add("mail", shop_page(server, shop.key, lang="ca")), "v", problems
    )
    send(page, "Teniu <b>talles</b> grans?")
    conv = agent.assigned()
    assert (
        agent.request({"t": "send", "conv": conv, "cid": "a1", "body": "Sí, fins a la XL."})["t"]
        == "ack"
    )
    assert agent.request({"t": "close", "conv": conv})["t"] == "ok"

    form = page.locator(".csat .mail")
    expect(form.locator("label")).to_have_text("Envia'm aquest xat per correu")
    page.fill("#chatserver-mail", "anna@example.com")
    form.locator("button").click()
    expect(form.locator("p")).to_have_text("Enviat! Mira la safata d'entrada.")
    deadline = time.monotonic() + 5
    while not smtp.messages:
        assert time.monotonic() < deadline, "no transcript arrived"
        time.sleep(0.05)
    [mail] = smtp.messages
    assert str(mail["Subject"]).startswith("La vostra conversa amb")
    html = mail.get_body(preferencelist=("html",))
    assert html is not None
    assert "Teniu &lt;b&gt;talles&lt;/b&gt; grans?" in html.get_content()
    assert "Sí, fins a la XL." in html.get_content()

    form.locator("button").click()  # again at once: one transcript per 5 minutes
    expect(form.locator("p")).to_have_text(
        "No s'ha pogut enviar. Revisa l'adreça o torna-ho a provar d'aquí a uns minuts."
    )
    agent.close()
    assert problems == []
