"""Templates, navigation and page rendering shared by every console page.

Every page is rendered through ``render``, which adds what the layout needs
(the signed-in agent, the CSRF token, the navigation for the agent's role,
the page's language: ``i18n.py``) and the security headers: a
Content-Security-Policy that allows no inline script (pages load their JS
modules from ``/console/static``), no framing, no referrer leaks and no MIME
sniffing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from chatserver.types import Role

from . import i18n
from .i18n import N_

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
# Recordings' analyst pages keep their templates next to their code.
_RECORDINGS_TEMPLATES = HERE.parent / "recordings" / "templates"
_ARCHIVE_TEMPLATES = HERE.parent / "archive" / "templates"  # and the archive's

TEMPLATES = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(
            [HERE / "templates", _RECORDINGS_TEMPLATES, _ARCHIVE_TEMPLATES]
        ),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
    )
)
# Newstyle gettext: ``_("Hello %(name)s", name=x)`` escapes ``x`` (autoescape stays on).
TEMPLATES.env.install_gettext_callables(  # type: ignore[attr-defined]
    i18n.gettext, i18n.ngettext, newstyle=True
)


def initials(name: str) -> str:
    """Up to two letters for an avatar without a picture ("Ann Smith" -> "AS");
    the same rule as ``static/chat/avatars.js``."""
    words = [w for w in name.split() if w[:1].isalnum()]
    if not words:
        return "?"
    letters = words[0][0] + (words[-1][0] if len(words) > 1 else "")
    return letters.upper()


def avatar_hue(seed: str) -> int:
    """A hue (0-359) from an id: 32-bit FNV-1a over UTF-16 code units, as
    ``static/chat/avatars.js`` computes it, so a page and a script agree."""
    h = 0x811C9DC5
    units = seed.encode("utf-16-le")
    for i in range(0, len(units), 2):
        h = ((h ^ int.from_bytes(units[i : i + 2], "little")) * 0x01000193) & 0xFFFFFFFF
    return h % 360


TEMPLATES.env.filters["initials"] = initials
TEMPLATES.env.filters["avatar_hue"] = avatar_hue

ALL_ROLES = frozenset(Role)
CHAT_ROLES = frozenset({Role.AGENT, Role.ADMIN})


@dataclass(frozen=True, slots=True)
class NavItem:
    label: str
    path: str
    roles: frozenset[Role]


# The layout's navigation; a page that wants a tab adds a line here.
NAV: list[NavItem] = [
    NavItem(N_("Chats"), "/console/", CHAT_ROLES),
    NavItem(N_("Admin"), "/console/admin", frozenset({Role.ADMIN})),
    NavItem(N_("Triggers"), "/console/triggers", frozenset({Role.ADMIN})),
    NavItem(N_("Sessions"), "/console/sessions", frozenset({Role.ADMIN, Role.ANALYST})),
    NavItem(N_("Reports"), "/console/reports", ALL_ROLES),
    NavItem(N_("Conversations"), "/console/conversations", ALL_ROLES),
    NavItem(N_("Notifications"), "/console/mail", CHAT_ROLES),
]

# Roles as the layout names them (the value stays the English word in forms and data).
ROLE_NAMES = {"agent": N_("agent"), "admin": N_("admin"), "analyst": N_("analyst")}
TEMPLATES.env.globals["role_names"] = ROLE_NAMES
TEMPLATES.env.globals["languages"] = i18n.LANGUAGES
TEMPLATES.env.globals["Markup"] = (
    Markup  # markup around an escaped value: Markup("<code>%s</code>") % v
)

# The reports' table and column names as report_table.html shows them ("_" as a
# space), for extraction; the CSV and JSON keep the English names.
REPORT_WORDS = (
    N_("agent"),
    N_("agents"),
    N_("answered"),
    N_("change"),
    N_("change pct"),
    N_("chats"),
    N_("comment"),
    N_("conversation"),
    N_("count"),
    N_("day"),
    N_("department"),
    N_("first response median"),
    N_("handling median"),
    N_("interactions per hour"),
    N_("mean concurrent"),
    N_("messages"),
    N_("metric"),
    N_("missed"),
    N_("name"),
    N_("offline"),
    N_("opened"),
    N_("peak concurrent"),
    N_("period"),
    N_("previous"),
    N_("queue wait median"),
    N_("rated"),
    N_("rating"),
    N_("rating great"),
    N_("rating okay"),
    N_("rating poor"),
    N_("served"),
    N_("share"),
    N_("shown"),
    N_("started"),
    N_("transfers"),
    N_("trigger"),
    N_("weekday"),
    N_("trend"),
    N_("departments"),
    N_("satisfaction"),
    N_("comments"),
    N_("triggers"),
    N_("heatmap"),
    N_("daily"),
)

DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self' ws: wss:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)


def security_headers(response: Response, csp: str = DEFAULT_CSP) -> Response:
    response.headers["Content-Security-Policy"] = csp
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-store"
    return response


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    csp: str = DEFAULT_CSP,
) -> Response:
    """Render ``template`` in the console layout for the signed-in agent.

    ``csp`` replaces the default policy for a page that needs more (the
    replay page shows the shop's images and styles).
    """
    login = getattr(request.state, "login", None)
    role = login.agent.role if login else None
    # The guard picked the agent's language; a page without an agent (login, errors
    # before sign-in) follows the browser.
    lang = getattr(request.state, "language", None) or i18n.from_header(
        request.headers.get("accept-language", "")
    )
    i18n.use(lang)
    ctx: dict[str, Any] = {
        "lang": lang,
        "js_catalog": i18n.js_catalog_json(lang),
        "me": login.agent if login else None,
        "csrf": login.csrf if login else "",
        "nav": [item for item in NAV if role in item.roles],
        "path": request.url.path,
        **(context or {}),
    }
    response = TEMPLATES.TemplateResponse(request, template, ctx, status_code=status_code)
    return security_headers(response, csp)
