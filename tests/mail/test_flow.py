"""E-mail out and in, end to end on an in-process node and a real SMTP server.

The issue's "done when": a visitor leaves an offline message; the agent is
mailed; the agent answers in the console's protocol; the visitor, gone,
gets the answer by e-mail with the conversation's reference; the visitor's
answer, POSTed raw to ``/mail/inbound`` as an MTA or provider would, lands
in the same conversation and reaches the connected agent live.  Then what
is refused: a forged reference, a wrong sender, an oversize mail.
"""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from chatserver.mail import reference

from ..node import Node, NodeClient
from ..smtp_server import SmtpServer
from .conftest import PUBLIC, answer, gone

pytestmark = pytest.mark.anyio

VISITOR = "ann@example.com"


async def offline_message(node: Node, key: str) -> tuple[NodeClient, str]:
    visitor = await node.visitor(key)
    ack = await visitor.request(
        {
            "t": "offline",
            "cid": "o1",
            "name": "Ann <b>Smith</b>",
            "email": VISITOR,
            "body": "Do you ship to Girona?",
        }
    )
    assert ack["t"] == "ack", ack
    return visitor, ack["conv"]


async def answered_by_mail(
    mailnode: Node, smtp: SmtpServer
) -> tuple[NodeClient, str, EmailMessage, str]:
    """Offline message, agent mail, agent answer, visitor mail: (agent, conv, mail, site)."""
    shop = await mailnode.seed(agents=1)
    email = next(iter(shop.agents))
    visitor, conv = await offline_message(mailnode, shop.key)

    [to_agent] = await smtp.wait(1)
    assert smtp.envelopes[0][1] == [email]
    assert "Ann <b>Smith</b>" in str(to_agent["Subject"])
    text = to_agent.get_body(preferencelist=("plain",))
    html = to_agent.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    assert "Do you ship to Girona?" in text.get_content()
    assert f"{PUBLIC}/console/conversations/{conv}" in text.get_content()
    assert "Ann &lt;b&gt;Smith&lt;/b&gt;" in html.get_content()  # escaped in the HTML part
    assert "<b>Smith" not in html.get_content()

    await gone(mailnode, shop.site.id, visitor)
    agent = await mailnode.agent(email)
    assert (await agent.request({"t": "join", "conv": conv}))["t"] == "ok"
    sent = await agent.request(
        {"t": "send", "conv": conv, "cid": "a1", "body": "Yes, in 2 days & free."}
    )
    assert sent["t"] == "ack", sent

    _, to_visitor = await smtp.wait(2)
    assert smtp.envelopes[1][1] == [VISITOR]
    assert reference.sign(mailnode.parts.signer, conv) in str(to_visitor["Message-ID"])
    assert str(to_visitor["List-Unsubscribe"]).startswith(f"<{PUBLIC}/mail/unsubscribe?t=")
    body = to_visitor.get_body(preferencelist=("plain",))
    assert body is not None and "Yes, in 2 days & free." in body.get_content()
    html = to_visitor.get_body(preferencelist=("html",))
    assert html is not None and "Yes, in 2 days &amp; free." in html.get_content()
    return agent, conv, to_visitor, shop.site.id


async def test_the_visitors_answer_by_mail_lands_in_the_conversation_live(
    mailnode: Node, smtp: SmtpServer
) -> None:
    agent, conv, mail, _ = await answered_by_mail(mailnode, smtp)
    raw = answer(mail, VISITOR, "Great, I'll order today.\nThanks!\nCard 4111 1111 1111 1111")
    async with mailnode.http() as http:
        r = await http.post(
            "/mail/inbound", content=raw, headers={"Content-Type": "message/rfc822"}
        )
        assert r.status_code == 200, r.text
        assert r.json()["conv"] == conv and r.json()["duplicate"] is False
        live = await agent.expect(
            "msg", lambda f: f["from"]["kind"] == "visitor" and f["offset"] > 3
        )
        assert live["conv"] == conv
        # the quote left out, the card number never stored
        assert live["body"] == "Great, I'll order today.\nThanks!\nCard [redacted]"
        again = await http.post(
            "/mail/inbound", content=raw, headers={"Content-Type": "message/rfc822"}
        )
        assert again.json() == {**r.json(), "duplicate": True}  # a provider's retry: one message
    entries = await mailnode.store.entries(conv)
    assert [e.body for e in entries if e.author_kind.value == "visitor"] == [
        "Do you ship to Girona?",
        "Great, I'll order today.\nThanks!\nCard [redacted]",
    ]


async def test_mailgun_and_postmark_forms_are_taken(mailnode: Node, smtp: SmtpServer) -> None:
    _, conv, mail, _ = await answered_by_mail(mailnode, smtp)
    async with mailnode.http() as http:
        gun = answer(mail, VISITOR, "From Mailgun", quoted=False)
        form = {"body-mime": gun.decode(), "recipient": "x@y.z"}
        r = await http.post("/mail/inbound/mime", data=form)
        assert r.status_code == 200 and r.json()["conv"] == conv, r.text
        mark = answer(mail, VISITOR, "From Postmark", quoted=False)
        r = await http.post("/mail/inbound", json={"RawEmail": mark.decode()})
        assert r.status_code == 200 and r.json()["conv"] == conv, r.text
        # Refusals in the provider's "do not retry" status.
        stranger = answer(mail, "eve@example.com", "Hi", quoted=False).decode()
        r = await http.post("/mail/inbound/mime", data={"body-mime": stranger})
        assert (r.status_code, r.json()["error"]) == (406, "wrong_sender")
        r = await http.post("/mail/inbound", json={"RawEmail": stranger})
        assert (r.status_code, r.json()["error"]) == (403, "wrong_sender")
        r = await http.post("/mail/inbound", json={"Subject": "no raw"})
        assert (r.status_code, r.json()["error"]) == (403, "not_a_mail")
    bodies = [e.body for e in await mailnode.store.entries(conv)]
    assert bodies[-2:] == ["From Mailgun", "From Postmark"]


async def test_forged_reference_wrong_sender_and_oversize_are_refused(
    mailnode: Node, smtp: SmtpServer
) -> None:
    _, conv, mail, _ = await answered_by_mail(mailnode, smtp)
    before = len(await mailnode.store.entries(conv))
    good = reference.sign(mailnode.parts.signer, conv)
    forged = mail
    del forged["Message-ID"]
    forged["Message-ID"] = f"<m.x.{conv}.{'A' * 32}@shop.example>"
    assert good not in str(forged["Message-ID"])
    async with mailnode.http() as http:

        async def post(raw: bytes) -> tuple[int, str]:
            r = await http.post(
                "/mail/inbound", content=raw, headers={"Content-Type": "message/rfc822"}
            )
            return r.status_code, r.json()["error"]

        assert await post(answer(forged, VISITOR, "Hi")) == (403, "forged_reference")
        forged.replace_header("Message-ID", f"<m.x.{good}@shop.example>")
        assert await post(answer(forged, "mallory@example.com", "Hi")) == (403, "wrong_sender")
        big = answer(forged, VISITOR, "x" * (600 * 1024), quoted=False)
        assert await post(big) == (413, "too_large")
        assert await post(b"not a mail at all") == (400, "not_a_mail")
        unanswering = answer(forged, VISITOR, "Hi", quoted=False).replace(good.encode(), b"none")
        assert await post(unanswering) == (422, "no_reference")
        assert await post(answer(forged, VISITOR, "", quoted=True)) == (422, "empty")
        away = answer(forged, VISITOR, "I am out of the office.", quoted=False)
        away = b"Auto-Submitted: auto-replied\r\n" + away
        assert await post(away) == (422, "auto_reply")
        r = await http.post("/mail/inbound", content=b"{}", headers={"Content-Type": "image/png"})
        assert r.status_code == 415
    assert len(await mailnode.store.entries(conv)) == before  # nothing was posted


async def test_an_answer_to_a_closed_conversation_goes_on_in_a_new_one(
    mailnode: Node, smtp: SmtpServer
) -> None:
    agent, conv, mail, _ = await answered_by_mail(mailnode, smtp)
    assert (await agent.request({"t": "close", "conv": conv}))["t"] == "ok"
    async with mailnode.http() as http:
        r = await http.post(
            "/mail/inbound",
            content=answer(mail, VISITOR, "One more question"),
            headers={"Content-Type": "message/rfc822"},
        )
    assert r.status_code == 200, r.text
    new = r.json()["conv"]
    assert new != conv
    [entry] = [e for e in await mailnode.store.entries(new) if e.body == "One more question"]
    assert entry.data["previous"] == conv
    opened = await mailnode.store.get_conversation(new)
    assert opened is not None and opened.state.value in ("queued", "active")


async def test_a_connected_visitor_gets_no_mail(mailnode: Node, smtp: SmtpServer) -> None:
    shop = await mailnode.seed(agents=1)
    _visitor, conv = await offline_message(mailnode, shop.key)
    await smtp.wait(1)  # the agent's
    agent = await mailnode.agent(next(iter(shop.agents)))
    await agent.request({"t": "join", "conv": conv})
    await agent.request({"t": "send", "conv": conv, "cid": "a1", "body": "Hello"})
    await mailnode.parts.convs.events.idle()
    await mailnode.parts.mail.outbox.idle()
    assert len(smtp.messages) == 1  # the visitor is there: the widget shows it


async def test_an_address_that_sends_refused_mails_is_held_off(mailnode: Node) -> None:
    async with mailnode.http() as http:
        for _ in range(30):
            r = await http.post(
                "/mail/inbound", content=b"junk", headers={"Content-Type": "message/rfc822"}
            )
            assert r.status_code == 400
        held = await http.post(
            "/mail/inbound", content=b"junk", headers={"Content-Type": "message/rfc822"}
        )
    assert held.status_code == 429 and held.json()["error"] == "rate_limited"
    assert 1 <= int(held.headers["Retry-After"]) <= 61


async def test_an_answer_posted_through_the_rest_api_is_mailed_too(
    mailnode: Node, smtp: SmtpServer
) -> None:
    """The mail follows the conversation events, whatever wrote the entry."""
    shop = await mailnode.seed(agents=1)
    email, agent_id = next(iter(shop.agents.items()))
    visitor, conv = await offline_message(mailnode, shop.key)
    await smtp.wait(1)  # the agent's notification
    await gone(mailnode, shop.site.id, visitor)
    agent = await mailnode.agent(email)
    assert (await agent.request({"t": "join", "conv": conv}))["t"] == "ok"
    _key, token = await mailnode.parts.api_keys.create(shop.site.id, "CRM")
    async with mailnode.http() as http:
        r = await http.post(
            f"/api/v1/conversations/{conv}/messages",
            json={"agent_id": agent_id, "body": "From our CRM: yes.", "cid": "crm-1"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert r.status_code == 201, r.text
    _, to_visitor = await smtp.wait(2)
    assert smtp.envelopes[1][1] == [VISITOR]
    body = to_visitor.get_body(preferencelist=("plain",))
    assert body is not None and "From our CRM: yes." in body.get_content()
    assert reference.sign(mailnode.parts.signer, conv) in str(to_visitor["Message-ID"])
