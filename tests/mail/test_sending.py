"""What chatserver mails, and how sending copes with the SMTP server.

On an in-process node and a real SMTP server (aiosmtpd): the transcript a
visitor asks for (both parts, escaped, in the asked language, notes left
out, rate limited, refused after unsubscribing), the unanswered-chat mail
and the agents' preferences, and the queue against a server that is down
(retried until it is up) or refuses (given up at once).
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

import pytest

from chatserver.mail.settings import DOC
from chatserver.outbox import OutboxConfig
from chatserver.types import SiteSettings

from ..node import Node, NodeClient
from ..smtp_server import SmtpServer
from .conftest import PUBLIC

pytestmark = pytest.mark.anyio


async def chat(
    node: Node, settings: SiteSettings | None = None
) -> tuple[str, str, str, NodeClient]:
    """A served chat with a note: (site id, site key, conversation, the visitor)."""
    shop = await node.seed(agents=1, settings=settings)
    agent = await node.agent(next(iter(shop.agents)))
    visitor = await node.visitor(shop.key)
    ack = await visitor.request({"t": "send", "cid": "v1", "body": "Is <script>x()</script> ok?"})
    conv = ack["conv"]
    await agent.expect("conv", lambda f: f["conv"]["id"] == conv and f["conv"]["state"] == "active")
    await agent.request({"t": "send", "conv": conv, "cid": "a1", "body": "Sí, Ana & co."})
    await agent.request({"t": "send", "conv": conv, "cid": "a2", "body": "SECRET", "note": True})
    return shop.site.id, shop.key, conv, visitor


async def test_a_transcript_is_mailed_in_the_asked_language_escaped_without_notes(
    mailnode: Node, smtp: SmtpServer
) -> None:
    _site, _key, conv, visitor = await chat(mailnode)
    reply = await visitor.request(
        {"t": "transcript", "conv": conv, "email": "ann@example.com", "lang": "ca"}
    )
    assert reply["t"] == "ok", reply
    [mail] = await smtp.wait(1)
    assert str(mail["Subject"]) == "La vostra conversa amb Test shop"
    assert smtp.envelopes[0] == ("chat@shop.example", ["ann@example.com"])
    text = mail.get_body(preferencelist=("plain",))
    html = mail.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    plain, markup = text.get_content(), html.get_content()
    assert "Is <script>x()</script> ok?" in plain and "Sí, Ana & co." in plain
    assert "Is &lt;script&gt;x()&lt;/script&gt; ok?" in markup and "<script>" not in markup
    assert "Sí, Ana &amp; co." in markup and '<html lang="ca">' in markup
    assert "SECRET" not in plain and "SECRET" not in markup
    assert "Vós" in plain  # the visitor's lines, in Catalan
    assert mail["List-Unsubscribe"] is not None

    again = await visitor.request({"t": "transcript", "conv": conv, "email": "ann@example.com"})
    assert (again["t"], again["code"]) == ("error", 102)


async def test_the_sites_language_is_the_default_and_unsubscribing_stops_mail(
    mailnode: Node, smtp: SmtpServer
) -> None:
    _site, _key, conv, visitor = await chat(mailnode, SiteSettings(language="es"))
    await visitor.request({"t": "transcript", "conv": conv, "email": "ann@example.com"})
    [mail] = await smtp.wait(1)
    assert str(mail["Subject"]) == "Su conversación con Test shop"
    link = str(mail["List-Unsubscribe"]).strip("<>")
    assert link.startswith(f"{PUBLIC}/mail/unsubscribe?")
    path = urlsplit(link)
    token = parse_qs(path.query)["t"][0]
    async with mailnode.http() as http:
        page = await http.get("/mail/unsubscribe", params={"t": token})
        assert page.status_code == 200 and "ann@example.com" in page.text
        assert "Dejar de recibir correos" in page.text
        bad = await http.get("/mail/unsubscribe", params={"t": token[:-2] + "xx"})
        assert bad.status_code == 400
        done = await http.post("/mail/unsubscribe", params={"t": token})  # one-click
        assert done.status_code == 200 and "No recibirá más correos" in done.text
    await mailnode.store.delete_doc(_site, "mail_sent", f"transcript-{conv}")  # not the limit
    refused = await visitor.request({"t": "transcript", "conv": conv, "email": "ANN@example.com"})
    assert (refused["t"], refused["code"]) == ("error", 204)
    other = await visitor.request({"t": "transcript", "conv": conv, "email": "bob@example.com"})
    assert other["t"] == "ok"


async def test_another_visitors_conversation_gets_not_found(
    mailnode: Node, smtp: SmtpServer
) -> None:
    _site, key, conv, _visitor = await chat(mailnode)
    stranger = await mailnode.visitor(key)
    reply = await stranger.request({"t": "transcript", "conv": conv, "email": "eve@example.com"})
    assert (reply["t"], reply["code"]) == ("error", 205)
    await asyncio.sleep(0.05)
    assert smtp.messages == []


async def test_mail_waits_for_a_server_that_is_down_and_arrives_once_it_is_up(
    tmp_path: object, smtp: SmtpServer
) -> None:
    smtp.stop()  # the port is known and nothing listens on it
    node = await Node(tmp_path / "node", smtp_url=smtp.url).start()  # type: ignore[operator]
    try:
        node.parts.outbox.config = OutboxConfig(retry_base=0.1, retry_cap=0.1, poll=0.05)
        _site, _key, conv, visitor = await chat(node)
        reply = await visitor.request({"t": "transcript", "conv": conv, "email": "a@example.com"})
        assert reply["t"] == "ok"  # queued, not sent
        await asyncio.sleep(0.35)  # a few attempts fail meanwhile
        assert smtp.messages == [] and node.parts.mail.outbox.pending == 1
        smtp.start()
        [mail] = await smtp.wait(1)
        assert "Test shop" in str(mail["Subject"])
        await node.parts.mail.outbox.idle()
        assert (node.parts.mail.outbox.sent, node.parts.mail.outbox.failed) == (1, 0)
    finally:
        await node.close()


async def test_a_refused_recipient_is_given_up_at_once(mailnode: Node, smtp: SmtpServer) -> None:
    smtp.refuse = "550 5.1.1 no such user"
    _site, _key, conv, visitor = await chat(mailnode)
    await visitor.request({"t": "transcript", "conv": conv, "email": "gone@example.com"})
    await mailnode.parts.mail.outbox.idle()
    assert (mailnode.parts.mail.outbox.failed, smtp.attempts) == (1, 1)


async def test_a_temporary_refusal_is_retried(mailnode: Node, smtp: SmtpServer) -> None:
    smtp.refuse = "451 4.3.0 try later"
    _site, _key, conv, visitor = await chat(mailnode)
    await visitor.request({"t": "transcript", "conv": conv, "email": "later@example.com"})
    while smtp.attempts < 2:
        await asyncio.sleep(0.02)
    smtp.refuse = ""
    await smtp.wait(1)
    assert mailnode.parts.mail.outbox.failed == 0


async def test_an_unanswered_chat_mails_the_agents_who_asked_for_it(
    mailnode: Node, smtp: SmtpServer
) -> None:
    shop = await mailnode.seed(agents=2, settings=SiteSettings(routing="manual"))
    (first, a1), (second, a2) = shop.agents.items()
    mail = mailnode.parts.mail
    await mail.set_prefs(shop.site.id, a1, {"offline": True, "unanswered": True})
    await mail.set_prefs(shop.site.id, a2, {"offline": True, "unanswered": False})
    settings = {**smtp_settings(smtp), "unanswered": 0.2}
    await mailnode.store.put_doc(shop.site.id, *DOC, settings)
    await mailnode.agent(first)  # online: the chat is not offline, it waits in the queue
    await mailnode.agent(second)
    visitor = await mailnode.visitor(shop.key)
    ack = await visitor.request({"t": "send", "cid": "v1", "body": "Anyone there?"})
    [sent] = await smtp.wait(1)
    assert smtp.envelopes == [("chat@shop.example", [first])]
    assert str(sent["Subject"]) == "A chat on Test shop waits for an answer"
    body = sent.get_body(preferencelist=("plain",))
    assert body is not None and "Anyone there?" in body.get_content()
    assert f"{PUBLIC}/console/conversations/{ack['conv']}" in body.get_content()


async def test_an_answered_chat_mails_nobody(mailnode: Node, smtp: SmtpServer) -> None:
    shop = await mailnode.seed(agents=1)
    [(email, agent_id)] = shop.agents.items()
    await mailnode.parts.mail.set_prefs(
        shop.site.id, agent_id, {"offline": True, "unanswered": True}
    )
    await mailnode.store.put_doc(shop.site.id, *DOC, {**smtp_settings(smtp), "unanswered": 0.1})
    await mailnode.agent(email)  # routing auto: the chat is assigned at once
    visitor = await mailnode.visitor(shop.key)
    await visitor.request({"t": "send", "cid": "v1", "body": "Hello"})
    await asyncio.sleep(0.3)
    await mailnode.parts.mail.outbox.idle()
    assert smtp.messages == []


async def test_an_agent_who_opted_out_gets_no_offline_mail(
    mailnode: Node, smtp: SmtpServer
) -> None:
    shop = await mailnode.seed(agents=2)
    (_first, a1), (second, _a2) = shop.agents.items()
    await mailnode.parts.mail.set_prefs(shop.site.id, a1, {"offline": False, "unanswered": False})
    visitor = await mailnode.visitor(shop.key)
    frame = {"t": "offline", "cid": "o1", "email": "ann@example.com", "body": "Hi"}
    assert (await visitor.request(frame))["t"] == "ack"
    await smtp.wait(1)
    await mailnode.parts.convs.events.idle()
    await mailnode.parts.mail.outbox.idle()
    assert [rcpt for _, rcpt in smtp.envelopes] == [[second]]


def smtp_settings(smtp: SmtpServer) -> dict[str, object]:
    return {
        "host": "127.0.0.1",
        "port": smtp.port,
        "security": "none",
        "sender": "chat@shop.example",
    }


async def test_a_chat_the_visitor_never_wrote_in_mails_nobody(
    mailnode: Node, smtp: SmtpServer
) -> None:
    """A conversation a proactive greeting opened, never answered: nobody waits."""
    shop = await mailnode.seed(agents=1, settings=SiteSettings(routing="manual"))
    [(email, agent_id)] = shop.agents.items()
    await mailnode.parts.mail.set_prefs(
        shop.site.id, agent_id, {"offline": True, "unanswered": True}
    )
    await mailnode.store.put_doc(shop.site.id, *DOC, {**smtp_settings(smtp), "unanswered": 0.1})
    await mailnode.agent(email)
    visitor = await mailnode.store.create_visitor(shop.site.id)
    conv, _ = await mailnode.store.open_conversation(shop.site.id, visitor.id, None, offline=False)
    mailnode.parts.convs.opened(conv)
    await asyncio.sleep(0.3)
    await mailnode.parts.mail.outbox.idle()
    assert smtp.messages == []


async def test_a_site_without_smtp_refuses_transcripts(node: Node) -> None:
    _site, _key, conv, visitor = await chat(node)
    reply = await visitor.request({"t": "transcript", "conv": conv, "email": "a@example.com"})
    assert (reply["t"], reply["code"]) == ("error", 204)
