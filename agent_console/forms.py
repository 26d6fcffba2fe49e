"""Validation of the admin pages' forms (pure functions, no I/O).

Each ``*_form`` function takes the submitted fields and returns a ``Form``:
``values`` holds what the page puts back in the inputs (as entered, so a
mistake is fixed rather than retyped, or the cleaned value once valid) and
``errors`` maps a field name to the message shown next to it.  A form is
valid when ``errors`` is empty; its ``clean`` values are then ready for the
Store.  Checks that need the Store (a taken email or shortcut, the last
admin) are made by the page, which adds to ``errors``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from chatserver.types import Role

from .i18n import N_, _

MIN_PASSWORD = 8
MAX_PASSWORD = 1024
MAX_NAME = 100  # an agent's or a site's name
MAX_EMAIL = 254
MIN_CAPACITY, MAX_CAPACITY = 1, 50
MAX_DEPARTMENT = 64  # a department name is an id on the wire
MAX_SHORTCUT = 32
MAX_CANNED_TEXT = 4000
MAX_GREETING = 500
MAX_ORIGINS = 50
MAX_PATTERNS = 10  # the site's own redaction patterns (docs/privacy.md)
MAX_PATTERN = 200
LANGUAGES = {"en": "English", "ca": "Català", "es": "Español"}
ROUTING = {
    "auto": N_("Automatic (least-loaded agent)"),
    "manual": N_("Manual (agents take chats)"),
}

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DEPARTMENT = re.compile(r"^\w[\w \-]*$")
_SHORTCUT = re.compile(r"^[a-z0-9_-]+$")
_COLOR = re.compile(r"^#(?:[0-9a-f]{3}|[0-9a-f]{6})$")
_HOST_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOST = re.compile(rf"^{_HOST_LABEL}(?:\.{_HOST_LABEL})*$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(slots=True)
class Form:
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    clean: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


class Fields:
    """Read access to submitted fields (a Starlette ``FormData`` or a plain dict)."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data

    def text(self, name: str) -> str:
        value = self._data.get(name)
        return value if isinstance(value, str) else ""

    def texts(self, name: str) -> list[str]:
        getlist = getattr(self._data, "getlist", None)
        values = getlist(name) if getlist else [self._data.get(name)]
        return [v for v in values if isinstance(v, str)]

    def checked(self, name: str) -> bool:
        return self.text(name) not in ("", "0", "off", "false")


def _name(form: Form, fields: Fields, name: str = "name", required: str = "") -> None:
    value = " ".join(fields.text(name).split())
    form.values[name] = fields.text(name)
    if not value:
        form.errors[name] = required or _("A name is required.")
    elif len(value) > MAX_NAME:
        form.errors[name] = _("At most %(n)s characters.") % {"n": MAX_NAME}
    else:
        form.clean[name] = value


def _password(form: Form, fields: Fields) -> None:
    value = fields.text("password")  # never put back in the page
    if len(value) < MIN_PASSWORD:
        form.errors["password"] = _("At least %(n)s characters.") % {"n": MIN_PASSWORD}
    elif len(value) > MAX_PASSWORD:
        form.errors["password"] = _("At most %(n)s characters.") % {"n": MAX_PASSWORD}
    else:
        form.clean["password"] = value


def agent_form(data: Mapping[str, Any], departments: Collection[str], *, new: bool) -> Form:
    """Add (``new``: with email and password) or edit an agent."""
    fields, form = Fields(data), Form()
    _name(form, fields)
    if new:
        email = fields.text("email").strip()
        form.values["email"] = email
        if not _EMAIL.match(email) or len(email) > MAX_EMAIL:
            form.errors["email"] = _("An email address like ana@shop.example.")
        else:
            form.clean["email"] = email
        _password(form, fields)
    role = fields.text("role")
    form.values["role"] = role
    try:
        form.clean["role"] = Role(role)
    except ValueError:
        form.errors["role"] = _("Choose a role.")
    capacity = fields.text("capacity").strip()
    form.values["capacity"] = capacity
    if (
        not (capacity.isascii() and capacity.isdigit())
        or not MIN_CAPACITY <= int(capacity) <= MAX_CAPACITY
    ):
        form.errors["capacity"] = _("A whole number from %(n)s to %(n2)s.") % {
            "n": MIN_CAPACITY,
            "n2": MAX_CAPACITY,
        }
    else:
        form.clean["capacity"] = int(capacity)
    chosen = fields.texts("departments")
    form.values["departments"] = chosen
    unknown = [d for d in chosen if d not in departments]
    if unknown:
        form.errors["departments"] = _("Unknown department: %(items)s.") % {
            "items": ", ".join(unknown)
        }
    else:
        form.clean["departments"] = tuple(d for d in departments if d in chosen)
    return form


def password_form(data: Mapping[str, Any]) -> Form:
    form = Form()
    _password(form, Fields(data))
    return form


def department_name(value: str, existing: Collection[str], current: str | None = None) -> Form:
    """A new department name (or ``current`` renamed), unique ignoring case."""
    form = Form(values={"name": value})
    name = " ".join(value.split())
    taken = {d.lower() for d in existing if d != current}
    if not name:
        form.errors["name"] = _("A name is required.")
    elif len(name) > MAX_DEPARTMENT:
        form.errors["name"] = _("At most %(n)s characters.") % {"n": MAX_DEPARTMENT}
    elif not _DEPARTMENT.match(name):
        form.errors["name"] = _("Letters, digits, spaces, '-' and '_' only.")
    elif name.lower() in taken:
        form.errors["name"] = _("There is a department with this name already.")
    else:
        form.clean["name"] = name
    return form


def canned_form(data: Mapping[str, Any]) -> Form:
    """A canned response: a shortcut (``/`` and case are forgiven) and its text."""
    fields, form = Fields(data), Form()
    raw = fields.text("shortcut")
    form.values["shortcut"] = raw
    shortcut = raw.strip().lstrip("/").lower()
    if not shortcut:
        form.errors["shortcut"] = _("A shortcut is required.")
    elif len(shortcut) > MAX_SHORTCUT:
        form.errors["shortcut"] = _("At most %(n)s characters.") % {"n": MAX_SHORTCUT}
    elif not _SHORTCUT.match(shortcut):
        form.errors["shortcut"] = _("Lowercase letters, digits, '-' and '_' only.")
    else:
        form.clean["shortcut"] = shortcut
    text = fields.text("text").replace("\r\n", "\n")
    form.values["text"] = text
    if not text.strip():
        form.errors["text"] = _("The text is required.")
    elif len(text) > MAX_CANNED_TEXT:
        form.errors["text"] = _("At most %(n)s characters (this has %(n2)s).") % {
            "n": MAX_CANNED_TEXT,
            "n2": len(text),
        }
    else:
        form.clean["text"] = text.strip()
    return form


def parse_origin(line: str) -> str | None:
    """``scheme://host[:port]`` normalised (lowercase, no default port), else ``None``."""
    try:
        parts = urlsplit(line.strip())
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname or ""
    if (
        parts.scheme not in _DEFAULT_PORTS
        or parts.username is not None
        or parts.password is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or "?" in line
        or "#" in line
    ):
        return None
    if host.startswith("[") or ":" in host:
        netloc = f"[{host}]"  # an IPv6 literal; urlsplit checked it
    elif _HOST.match(host):
        netloc = host
    else:
        return None
    if port == 0:
        return None
    if port is not None and port != _DEFAULT_PORTS[parts.scheme]:
        netloc += f":{port}"
    return f"{parts.scheme}://{netloc}"


def site_form(data: Mapping[str, Any]) -> Form:
    fields, form = Fields(data), Form()
    _name(form, fields, required=_("The shop's name is required."))

    text = fields.text("origins")
    form.values["origins"] = text
    origins: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        origin = parse_origin(line)
        if origin is None:
            form.errors["origins"] = _(
                "Line %(number)s: “%(value)s” is not an origin like "
                "https://shop.example or http://localhost:8080 (no path)."
            ) % {"number": number, "value": line.strip()[:80]}
            break
        if origin not in origins:
            origins.append(origin)
    else:
        if len(origins) > MAX_ORIGINS:
            form.errors["origins"] = _("At most %(n)s origins.") % {"n": MAX_ORIGINS}
        else:
            form.clean["origins"] = tuple(origins)

    form.values["typing_preview"] = form.clean["typing_preview"] = fields.checked("typing_preview")
    form.values["cobrowse"] = form.clean["cobrowse"] = fields.checked("cobrowse")
    routing = fields.text("routing")
    form.values["routing"] = routing
    if routing in ROUTING:
        form.clean["routing"] = routing
    else:
        form.errors["routing"] = _("Choose how chats are routed.")

    color = fields.text("color").strip().lower()
    form.values["color"] = fields.text("color")
    if _COLOR.match(color):
        form.clean["color"] = color
    else:
        form.errors["color"] = _("A hex colour such as #2563eb or #25e.")

    greeting = fields.text("greeting").replace("\r\n", "\n")
    form.values["greeting"] = greeting
    if len(greeting.strip()) > MAX_GREETING:
        form.errors["greeting"] = _("At most %(n)s characters.") % {"n": MAX_GREETING}
    else:
        form.clean["greeting"] = greeting.strip()

    language = fields.text("language")
    form.values["language"] = language
    if language in LANGUAGES:
        form.clean["language"] = language
    else:
        form.errors["language"] = _("Choose a language.")

    _recording(form, fields)

    text = fields.text("redact_patterns")
    form.values["redact_patterns"] = text
    patterns = [line.strip() for line in text.splitlines() if line.strip()]
    problem = _patterns_problem(patterns)
    if problem:
        form.errors["redact_patterns"] = problem
    else:
        form.clean["redact_patterns"] = tuple(dict.fromkeys(patterns))
    return form


MAX_RETENTION_DAYS = 3650
MAX_REWIND_SECONDS = 600


def _recording(form: Form, fields: Fields) -> None:
    """Session recording (docs/recordings.md): on, the share of visits, consent,
    retention, and the agents' rewind."""
    form.values["recording"] = form.clean["recording"] = fields.checked("recording")
    form.values["recording_consent"] = form.clean["recording_consent"] = fields.checked(
        "recording_consent"
    )
    sample = fields.text("recording_sample").strip() or "100"
    form.values["recording_sample"] = sample
    try:
        share = float(sample)
    except ValueError:
        share = -1.0
    if 0 <= share <= 100:
        form.clean["recording_sample"] = round(share / 100, 4)
    else:
        form.errors["recording_sample"] = _("A percentage from 0 to 100.")
    days = fields.text("recording_retention_days").strip() or "30"
    form.values["recording_retention_days"] = days
    if days.isdigit() and int(days) <= MAX_RETENTION_DAYS:
        form.clean["recording_retention_days"] = int(days)
    else:
        form.errors["recording_retention_days"] = _("A number of days, 0 to %(n)s.") % {
            "n": MAX_RETENTION_DAYS
        }
    rewind = fields.text("rewind_seconds").strip() or "60"
    form.values["rewind_seconds"] = rewind
    if rewind.isdigit() and int(rewind) <= MAX_REWIND_SECONDS:
        form.clean["rewind_seconds"] = int(rewind)
    else:
        form.errors["rewind_seconds"] = _("A number of seconds, 0 to %(n)s.") % {
            "n": MAX_REWIND_SECONDS
        }


def _patterns_problem(patterns: list[str]) -> str:
    """Why the redaction patterns cannot be saved, or ``""``."""
    if len(patterns) > MAX_PATTERNS:
        return _("At most %(n)s patterns.") % {"n": MAX_PATTERNS}
    for number, pattern in enumerate(patterns, 1):
        if len(pattern) > MAX_PATTERN:
            return _("Line %(number)s: at most %(n)s characters.") % {
                "number": number,
                "n": MAX_PATTERN,
            }
        try:  # the syntax JavaScript and Python share; the widget skips one it cannot read
            re.compile(pattern)
        except re.error as exc:
            return _("Line %(number)s: not a regular expression (%(exc)s).") % {
                "number": number,
                "exc": exc,
            }
        if re.fullmatch(pattern, ""):
            return _(
                "Line %(number)s: it matches an empty text, so it would hide nothing useful."
            ) % {"number": number}
    return ""
