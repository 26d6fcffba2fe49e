"""The agent console: server-rendered pages (Jinja2) and small JS modules.

``routes`` is mounted at ``/console`` by ``chatserver.web.app``.  ``auth`` holds
login, the session cookie, CSRF and the role guard every page goes through;
``web`` the template environment, the layout's navigation and ``render``;
``admin`` the admin pages (``forms`` validates their input); ``mail`` an
agent's e-mail notifications; ``avatars`` agents' pictures; ``i18n`` the
console's languages and ``language`` an agent's choice of one.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from . import admin, alert_prefs, auth, avatars, cobrowse, language, mail, pages, triggers
from .web import STATIC_DIR

routes: list[BaseRoute] = [
    Route("/login", auth.login_page, methods=["GET", "POST"], name="console_login"),
    Route("/logout", auth.logout, methods=["POST"], name="console_logout"),
    *pages.routes,
    *admin.routes,
    *triggers.routes,
    *cobrowse.routes,
    *mail.routes,  # an agent's e-mail notifications
    *avatars.routes,  # agents' pictures and their profile page
    *alert_prefs.routes,  # how the workspace gets an agent's attention
    *language.routes,  # the console's language an agent chose
    Mount("/static", StaticFiles(directory=STATIC_DIR), name="console_static"),
]
