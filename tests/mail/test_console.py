"""The console's e-mail pages, and the issue's "done when" started from them.

An admin sets the site's SMTP server in the console (the node has no
``--smtp`` default), sends a test mail, and never sees the password again;
an agent chooses their notifications; then a visitor's offline message, the
agent's mail, the answer by e-mail to the visitor and the visitor's answer
back in the conversation, all through that server.
"""

from __future__ import annotations

import email
from collections.abc import AsyncIterator
from email import policy
from pathlib import Path

import httpx
import pytest

from chatserver.mail.settings import DOC
from chatserver.types import Role

from ..conftest import console_login, csrf_of
from ..node import Node
from ..smtp_server import SmtpServer
from .conftest import answer, gone

pytestmark = pytest.mark.anyio
PASSWORD = "s3cret-smtp-password"


@pytest.fixture
async def plain(tmp_path: Path) -> AsyncIterator[Node]:
    """A node without a default SMTP server."""
    node = await Node(tmp_path / "node").start()
    try:
        yield node
    finally:
        await node.close()


def form(smtp: SmtpServer, csrf: str, **changes: str) -> dict[str, str]:
    return {
        "csrf": csrf,
        "host": "127.0.0.1",
        "port": str(smtp.port),
        "security": "none",
        "user": "",
        "password": "",
        "sender": "chat@shop.example",
        "sender_name": "Shop chat",
        "reply_to": "reply@in.shop.example",
        "unanswered": "5",
        "public_url": "https://chat.shop.example",
        **changes,
    }


async def post(http: httpx.AsyncClient, path: str, data: dict[str, str]) -> httpx.Response:
    return await http.post(path, data=data, headers={"Origin": "http://127.0.0.1"})


async def test_an_admin_sets_the_smtp_server_and_the_whole_story_follows(
    plain: Node, smtp: SmtpServer
) -> None:
    shop = await plain.seed(agents=2, roles={0: Role.ADMIN})
    admin, agent_email = shop.agents
    async with plain.http() as http:
        assert (await console_login(http, admin)).status_code == 303
        page = await http.get("/console/admin/mail")
        assert page.status_code == 200 and "No SMTP server is set" in page.text
        csrf = csrf_of(page.text)

        bad = await post(http, "/console/admin/mail", form(smtp, csrf, sender="nope", port="0"))
        assert bad.status_code == 422
        assert "An e-mail address like" in bad.text and "A whole number from 1" in bad.text
        crlf = form(smtp, csrf, sender_name="Shop\r\nBcc: x@y.z")
        assert (await post(http, "/console/admin/mail", crlf)).status_code == 422

        saved = await post(
            http, "/console/admin/mail", form(smtp, csrf, user="me", password=PASSWORD)
        )
        assert saved.status_code == 303
        shown = await http.get("/console/admin/mail")
        assert PASSWORD not in shown.text and "A password is saved" in shown.text
        kept = await post(http, "/console/admin/mail", form(smtp, csrf, user="me"))
        assert kept.status_code == 303  # an empty password field keeps the stored one
        doc = await plain.store.get_doc(shop.site.id, *DOC)
        assert doc is not None and doc.data["password"] == PASSWORD
        # aiosmtpd offers no AUTH: credentials would fail the test mail; none, then.
        assert (await post(http, "/console/admin/mail", form(smtp, csrf))).status_code == 303

        tested = await post(http, "/console/admin/mail/test", {"csrf": csrf})
        assert tested.status_code == 303
        assert f"Sent a test mail to {admin}" in (await http.get("/console/admin/mail")).text
        [test_mail] = await smtp.wait(1)
        assert str(test_mail["Subject"]) == "Test mail from Test shop"
        assert smtp.envelopes[0][1] == [admin]

    async with plain.http() as http:  # the agent opts out, then in again
        assert (await console_login(http, agent_email)).status_code == 303
        page = await http.get("/console/mail")
        assert page.status_code == 200 and 'name="offline" value="on" checked' in page.text
        csrf = csrf_of(page.text)
        assert (await post(http, "/console/mail", {"csrf": csrf})).status_code == 303
        assert 'name="offline" value="on" checked' not in (await http.get("/console/mail")).text
        on = {"csrf": csrf, "offline": "on"}
        assert (await post(http, "/console/mail", on)).status_code == 303
        assert (await http.get("/console/admin/mail")).status_code == 403  # not an admin

    visitor = await plain.visitor(shop.key)
    left = {"t": "offline", "cid": "o1", "name": "Ann", "email": "ann@example.com", "body": "Hi?"}
    conv = (await visitor.request(left))["conv"]
    await smtp.wait(3)  # the admin's and the agent's notifications
    assert sorted(rcpt[0] for _, rcpt in smtp.envelopes[1:]) == sorted([admin, agent_email])
    await gone(plain, shop.site.id, visitor)

    agent = await plain.agent(agent_email)
    await agent.request({"t": "join", "conv": conv})
    await agent.request({"t": "send", "conv": conv, "cid": "a1", "body": "Hello Ann!"})
    to_visitor = (await smtp.wait(4))[3]
    assert str(to_visitor["From"]) == "Shop chat <chat@shop.example>"
    assert str(to_visitor["Reply-To"]).startswith("reply+c_")
    async with plain.http() as http:
        r = await http.post(
            "/mail/inbound",
            content=answer(to_visitor, "ann@example.com", "Thanks, that helps."),
            headers={"Content-Type": "message/rfc822"},
        )
    assert r.status_code == 200 and r.json()["conv"] == conv, r.text
    live = await agent.expect("msg", lambda f: f["body"] == "Thanks, that helps.")
    assert live["from"]["kind"] == "visitor"

    # A mail program that drops the threading headers: the reply address carries it.
    unthreaded = email.message_from_bytes(
        answer(to_visitor, "ann@example.com", "And one more thing."), policy=policy.default
    )
    del unthreaded["In-Reply-To"], unthreaded["References"]
    async with plain.http() as http:
        r = await http.post(
            "/mail/inbound",
            content=bytes(unthreaded),
            headers={"Content-Type": "message/rfc822"},
        )
    assert r.status_code == 200 and r.json()["conv"] == conv, r.text
