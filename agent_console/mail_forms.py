"""Validation of the e-mail pages' forms (pure functions, like ``forms.py``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from chatserver.mail.message import valid_email
from chatserver.mail.settings import Security

from .forms import Fields, Form
from .i18n import N_, _

MAX_HOST = 253
SECURITY = {
    "starttls": N_("STARTTLS (usually port 587)"),
    "tls": N_("TLS from the start (usually port 465)"),
    "none": N_("None (a relay on this machine or network only)"),
}
MIN_UNANSWERED, MAX_UNANSWERED = 1, 240  # minutes
_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}$|^\[[0-9A-Fa-f:.]+\]$")


def _email(form: Form, fields: Fields, name: str, required: bool) -> None:
    value = fields.text(name).strip()
    form.values[name] = value
    if not value and not required:
        form.clean[name] = ""
    elif not valid_email(value):
        form.errors[name] = _("An e-mail address like chat@shop.example.")
    else:
        form.clean[name] = value


def _number(form: Form, fields: Fields, name: str, low: int, high: int) -> None:
    value = fields.text(name).strip()
    form.values[name] = value
    if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
        form.errors[name] = _("A whole number from %(low)s to %(high)s.") % {
            "low": low,
            "high": high,
        }
    else:
        form.clean[name] = int(value)


def _line(form: Form, fields: Fields, name: str, limit: int) -> None:
    """A one-line value: what goes into a header or a URL never holds a line break."""
    value = fields.text(name).strip()
    form.values[name] = value
    if len(value) > limit or any(c in value for c in "\r\n\0"):
        form.errors[name] = _("One line of at most %(limit)s characters.") % {"limit": limit}
    else:
        form.clean[name] = value


def smtp_form(data: Mapping[str, Any]) -> Form:
    """The site's SMTP server.  The password is never put back in the page: an
    empty one keeps the stored password (``clean["password"]`` is ``None``)."""
    fields, form = Fields(data), Form()
    host = fields.text("host").strip()
    form.values["host"] = host
    if not _HOST.match(host):
        form.errors["host"] = _("A host name such as smtp.shop.example.")
    else:
        form.clean["host"] = host
    _number(form, fields, "port", 1, 65535)
    security = fields.text("security")
    form.values["security"] = security
    if security in SECURITY:
        form.clean["security"] = Security(security).value
    else:
        form.errors["security"] = _("Choose how the connection is protected.")
    _line(form, fields, "user", 254)
    password = fields.text("password")
    if len(password) > 1024 or any(c in password for c in "\r\n\0"):
        form.errors["password"] = _("One line of at most 1024 characters.")
    form.clean["password"] = password or None
    _email(form, fields, "sender", required=True)
    _line(form, fields, "sender_name", 100)
    _email(form, fields, "reply_to", required=False)
    _number(form, fields, "unanswered", MIN_UNANSWERED, MAX_UNANSWERED)
    url = fields.text("public_url").strip().rstrip("/")
    form.values["public_url"] = url
    if not re.match(r"^https?://[^\s/?#]+$", url):
        form.errors["public_url"] = _("The server's address, such as https://chat.shop.example.")
    else:
        form.clean["public_url"] = url
    return form
