"""The pure parts of the mail: rendering, references, quotes, headers, settings."""

from __future__ import annotations

import pytest

from chatserver.mail import reference
from chatserver.mail.inbound import html_to_text
from chatserver.mail.message import HeaderInjection, Mail, mime
from chatserver.mail.quotes import MARKER, strip
from chatserver.mail.render import KINDS, render
from chatserver.mail.settings import Security, SmtpSettings, parse_url
from chatserver.mail.strings import LANGUAGES, STRINGS
from chatserver.security import Signer
from chatserver.types import ConversationId, SiteId

SIGNER = Signer(b"k" * 32)
CONV = ConversationId("c_AbCdEfGh-_12345z")
CONTEXT = {
    "shop": "Shop <&> “Quotes”",
    "name": "<img src=x onerror=alert(1)>",
    "email": "ann@example.com",
    "body": "line 1 <b>bold</b>\nline 2 & more",
    "link": "https://chat.example/console/conversations/c_1",
    "prefs_url": "https://chat.example/console/mail",
    "minutes": 5,
    "agent": "Jo <Agent>",
    "unsubscribe": "https://chat.example/mail/unsubscribe?t=x",
    "lines": [{"who": "You", "body": "<i>hi</i>", "time": "2026-12-07 10:00 UTC"}],
}


def test_every_language_has_every_string() -> None:
    assert set(STRINGS) == set(LANGUAGES)
    for language in LANGUAGES:
        assert set(STRINGS[language]) == set(STRINGS["en"]), language


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_html_escapes_what_people_wrote_and_text_keeps_it(kind: str, language: str) -> None:
    subject, text, html = render(kind, language, **CONTEXT)
    assert "\n" not in subject and subject
    assert "<b>bold</b>" not in html and "<img" not in html and "<i>hi</i>" not in html
    assert "&lt;" in html
    assert f'<html lang="{language}">' in html
    if kind in ("offline", "unanswered", "reply"):
        assert "line 1 <b>bold</b>" in text  # plain text is not escaped
        assert "line 1 &lt;b&gt;bold&lt;/b&gt;<br>" in html  # line breaks kept
    if kind in ("reply", "transcript"):
        assert CONTEXT["unsubscribe"] in text and CONTEXT["unsubscribe"] in html


def test_the_language_changes_the_words() -> None:
    subjects = {lang: render("transcript", lang, **CONTEXT)[0] for lang in LANGUAGES}
    assert subjects == {
        "en": "Your chat with Shop <&> “Quotes”",
        "ca": "La vostra conversa amb Shop <&> “Quotes”",
        "es": "Su conversación con Shop <&> “Quotes”",
    }
    assert render("reply", "xx", **CONTEXT)[0] == render("reply", "en", **CONTEXT)[0]


def test_the_reply_starts_with_the_marker_the_quote_stripper_knows() -> None:
    _, text, _ = render("reply", "ca", **CONTEXT)
    assert text.startswith(MARKER)
    assert strip("Gràcies!\n\n" + text) == "Gràcies!"


def test_a_reference_verifies_only_with_its_secret_and_conversation() -> None:
    ref = reference.sign(SIGNER, CONV)
    assert ref.startswith(CONV + ".")
    assert reference.verify(SIGNER, ref) == CONV
    assert reference.verify(Signer(b"x" * 32), ref) is None
    other = reference.sign(SIGNER, ConversationId("c_other1234"))
    moved = "c_other1234." + ref.rpartition(".")[2]
    assert reference.verify(SIGNER, moved) is None and other != moved
    assert reference.verify(SIGNER, ref[:-1] + ("A" if ref[-1] != "A" else "B")) is None


def test_find_takes_the_first_valid_reference_and_tells_forgeries() -> None:
    ref = reference.sign(SIGNER, CONV)
    forged = f"{CONV}.{'A' * 32}"
    in_reply_to = f"<m.abc.{ref}@shop.example>"
    assert reference.find(SIGNER, f"<{forged}@x>", in_reply_to) == (CONV, True)
    assert reference.find(SIGNER, f"reply+{ref}@in.shop.example") == (CONV, True)
    assert reference.find(SIGNER, f"<m.{forged}@shop.example>") == (None, True)
    assert reference.find(SIGNER, "<CAF=abc@mail.gmail.com>", "") == (None, False)


@pytest.mark.parametrize(
    ("mail", "kept"),
    [
        ("Thanks!\n\nOn Mon, 7 Dec 2026, Shop <a@b.c> wrote:\n> earlier", "Thanks!"),
        ("Thanks!\nOn Mon, 7 Dec 2026 at 10:00, Shop\n<chat@shop.example> wrote:\n> x", "Thanks!"),
        ("Gràcies\n\nEl dl., 7 de des. 2026, Botiga va escriure:\n> abans", "Gràcies"),
        ("Gracias\n\nEl lun, 7 dic 2026, Tienda escribió:\n> antes", "Gracias"),
        ("Ok\n\n-----Original Message-----\nFrom: x", "Ok"),
        ("Ok\n\nFrom: Shop <a@b.c>\nSent: Monday\nTo: me", "Ok"),
        ("> quoted first\nmy answer\n> more quote", "my answer"),
        ("Answer\n-- \nAnn, Girona", "Answer"),
        ("Answer\r\n\r\n## ---- Write your answer above this line ----\r\nold", "Answer"),
        ("> only a quote", ""),
        ("From: me to you, thanks\nsecond line", "From: me to you, thanks\nsecond line"),
    ],
)
def test_quoted_history_and_signatures_are_stripped(mail: str, kept: str) -> None:
    assert strip(mail) == kept


def test_html_answers_become_text_without_their_quote() -> None:
    markup = (
        "<div>Yes <b>please</b>&nbsp;&amp; thanks<br>Ann</div>"
        '<div class="gmail_quote">On Mon wrote:<blockquote>old</blockquote></div>'
        "<script>evil()</script>"
    )
    assert html_to_text(markup).strip() == "Yes please\xa0& thanks\nAnn"


def test_no_header_value_takes_a_line_break() -> None:
    base = {"site_id": SiteId("s_1"), "text": "t", "html": "<p>t</p>", "kind": "reply"}
    with pytest.raises(HeaderInjection):
        Mail(to="a@b.c", subject="Hi\r\nBcc: x@y.z", **base)  # type: ignore[arg-type]
    with pytest.raises(HeaderInjection):
        Mail(to="a@b.c", subject="Hi", to_name="Ann\nBcc: x@y.z", **base)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Mail(to="a@b.c\r\nBcc: x@y.z", subject="Hi", **base)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Mail(to="<a@b.c>", subject="Hi", **base)  # type: ignore[arg-type]


def test_a_mail_survives_its_json_and_becomes_a_two_part_message() -> None:
    mail = Mail(
        SiteId("s_1"),
        "ann@example.com",
        "Re: hello",
        "text",
        "<p>html</p>",
        "reply",
        ref=CONV,
        unsubscribe="https://c.example/mail/unsubscribe?t=x",
        to_name="Ann, Smith",
    )
    assert Mail.from_json(mail.to_json()) == mail
    ref = reference.sign(SIGNER, CONV)
    msg = mime(mail, "chat@shop.example", "Shop", "shop.example", ref, f"in+{ref}@in.example")
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert str(msg["Message-ID"]) == f"<{mail.id}.{ref}@shop.example>"
    assert str(msg["Reply-To"]) == f"in+{ref}@in.example"
    assert str(msg["To"]) == '"Ann, Smith" <ann@example.com>'
    assert str(msg["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    assert msg["Auto-Submitted"] is None  # an agent's answer is a person's message
    transcript = Mail(SiteId("s_1"), "ann@example.com", "T", "t", "<p>t</p>", "transcript")
    assert str(mime(transcript, "c@s.example", "S", "s.example", None, None)["Auto-Submitted"]) == (
        "auto-generated"
    )
    assert reference.find(SIGNER, str(msg["Message-ID"])) == (CONV, True)


def test_the_smtp_url_names_server_security_credentials_and_sender() -> None:
    s = parse_url("smtp+starttls://me%40x:p%3Ass@mail.example?from=chat@shop.example&name=Shop")
    assert (s.host, s.port, s.security) == ("mail.example", 587, Security.STARTTLS)
    assert (s.user, s.password, s.sender, s.sender_name) == (
        "me@x",
        "p:ss",
        "chat@shop.example",
        "Shop",
    )
    assert "p:ss" not in repr(s)
    assert parse_url("smtps://h?from=a@b.c").port == 465
    assert parse_url("smtp://h:2525?from=a@b.c").security is Security.NONE
    assert SmtpSettings.from_json(s.to_json()) == s
    for bad in ("http://h?from=a@b.c", "smtp://h", "smtp://?from=a@b.c", "smtp://h?from=x"):
        with pytest.raises(ValueError):
            parse_url(bad)
