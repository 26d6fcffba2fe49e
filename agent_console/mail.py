"""An agent's e-mail notifications: which mails they want (``/console/mail``).

Two choices, kept per agent as a site document (``MailService.prefs``):
offline messages left on the site (on by default) and chats left
unanswered for the site's delay (off by default).  Mail goes to the agent's
sign-in address, in the site's language.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .admin.common import done, form_data, me, node_of, page
from .auth import guard
from .forms import Fields
from .i18n import _
from .web import CHAT_ROLES

PATH = "/console/mail"


@guard(*CHAT_ROLES)
async def mail_prefs(request: Request) -> Response:
    node, agent = node_of(request), me(request)
    if request.method == "POST":
        fields = Fields(await form_data(request))
        prefs = {"offline": fields.checked("offline"), "unanswered": fields.checked("unanswered")}
        await node.mail.set_prefs(agent.site_id, agent.id, prefs)
        return done(request, PATH, _("Saved your e-mail notifications."))
    settings = await node.mail.settings(agent.site_id)
    ctx: dict[str, Any] = {
        "prefs": await node.mail.prefs(agent.site_id, agent.id),
        "sends": settings is not None,
        "minutes": round(settings.unanswered / 60) if settings else 0,
    }
    return page(request, "mail_prefs.html", ctx)


routes: list[BaseRoute] = [Route("/mail", mail_prefs, methods=["GET", "POST"], name="mail_prefs")]
