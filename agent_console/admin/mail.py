"""The site's e-mail: its SMTP server, a test mail, where answers come in.

Kept as the site document ``mail``/``smtp`` (``chatserver/mail/settings.py``),
which wins over the server's ``--smtp`` default for this site.  The
password is write-only: the page never shows it, an empty field keeps it.
"""

from __future__ import annotations

import logging
from html import escape
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from chatserver.mail.message import Mail
from chatserver.mail.render import one_line
from chatserver.mail.send import MailError, send
from chatserver.mail.settings import DEFAULT_UNANSWERED, DOC, Security, SmtpSettings
from chatserver.types import Role, Site

from .. import forms, mail_forms
from ..auth import guard
from ..confirm import confirmation_page
from ..forms import Form
from ..i18n import _
from .common import BASE, GET_POST, done, form_data, me, node_of, own_site, page

log = logging.getLogger("chatserver.mail")


def _base(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def _values(settings: SmtpSettings | None, request: Request) -> Form:
    if settings is None:
        return Form(
            values={
                "port": "587",
                "security": "starttls",
                "unanswered": str(int(DEFAULT_UNANSWERED // 60)),
                "public_url": _base(request),
            }
        )
    return Form(
        values={
            "host": settings.host,
            "port": str(settings.port),
            "security": settings.security.value,
            "user": settings.user,
            "sender": settings.sender,
            "sender_name": settings.sender_name,
            "reply_to": settings.reply_to,
            "unanswered": str(max(1, round(settings.unanswered / 60))),
            "public_url": settings.public_url or _base(request),
        }
    )


async def _stored(request: Request, site: Site) -> SmtpSettings | None:
    doc = await node_of(request).store.get_doc(site.id, *DOC)
    if doc is None or not doc.data.get("host"):
        return None
    try:
        return SmtpSettings.from_json(doc.data)
    except (KeyError, ValueError, TypeError):
        return None


def _ctx(request: Request, form: Form, stored: SmtpSettings | None) -> dict[str, Any]:
    node = node_of(request)
    return {
        "section": "mail",
        "form": form,
        "security": mail_forms.SECURITY,
        "has_password": bool(stored and stored.password),
        "own": stored is not None,
        "default": node.mail.default,
        "inbound": f"{(stored.public_url if stored else '') or _base(request)}/mail/inbound",
        "limits": forms,
        "mail_limits": mail_forms,
    }


@guard(Role.ADMIN)
async def mail_settings(request: Request) -> Response:
    node, site = node_of(request), await own_site(request)
    stored = await _stored(request, site)
    if request.method == "GET":
        return page(request, "admin/mail.html", _ctx(request, _values(stored, request), stored))
    form = mail_forms.smtp_form(await form_data(request))
    if not form.ok:
        return page(request, "admin/mail.html", _ctx(request, form, stored), 422)
    c = form.clean
    password = c["password"] if c["password"] is not None else (stored.password if stored else "")
    if not c["user"]:
        password = ""  # no user, no credentials
    settings = SmtpSettings(
        host=c["host"],
        port=c["port"],
        security=Security(c["security"]),
        sender=c["sender"],
        user=c["user"],
        password=password,
        sender_name=c["sender_name"],
        reply_to=c["reply_to"],
        unanswered=float(c["unanswered"] * 60),
        public_url=c["public_url"],
    )
    await node.store.put_doc(site.id, *DOC, settings.to_json())
    return done(
        request, f"{BASE}/mail", _("Saved. Mail of this site goes through this server now.")
    )


@guard(Role.ADMIN)
async def mail_remove(request: Request) -> Response:
    node, site = node_of(request), await own_site(request)
    question = _("Remove the site's e-mail settings?")
    if ask := await confirmation_page(request, question, _("Remove"), f"{BASE}/mail"):
        return ask
    await node.store.delete_doc(site.id, *DOC)
    return done(request, f"{BASE}/mail", _("Removed. The site uses the server's default, if any."))


@guard(Role.ADMIN)
async def mail_test(request: Request) -> Response:
    """Send one mail to the signed-in admin now, and say what the server answered."""
    node, site, admin = node_of(request), await own_site(request), me(request)
    settings = await node.mail.settings(site.id)
    if settings is None:
        return done(request, f"{BASE}/mail", _("No SMTP server is set: nothing was sent."))
    text = _("This is a test from %(name)s's chat server. Mail works.") % {"name": site.name}
    subject = one_line(_("Test mail from %(name)s") % {"name": site.name})
    mail = Mail(site.id, admin.email, subject, text, f"<p>{escape(text)}</p>", "test")
    try:
        await send(node, mail)
    except MailError as exc:
        log.info("test mail of site %s failed: %s", site.id, exc)
        return done(
            request, f"{BASE}/mail", _("The test mail was not sent: %(exc)s.") % {"exc": exc}
        )
    return done(
        request, f"{BASE}/mail", _("Sent a test mail to %(email)s.") % {"email": admin.email}
    )


routes: list[BaseRoute] = [
    Route("/admin/mail", mail_settings, methods=GET_POST, name="admin_mail"),
    Route("/admin/mail/remove", mail_remove, methods=["POST"]),
    Route("/admin/mail/test", mail_test, methods=["POST"]),
]
