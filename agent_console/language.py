"""The language an agent chose for the console, kept on the server (a site document
of kind ``language``, id the agent's: the same place as their alert preferences), so
it follows them to every browser; no document means Automatic (the browser's
``Accept-Language``).  ``i18n.py`` says how a request's language is picked.

Set on the profile page: ``POST /console/profile/language`` with ``language`` one of
``auto``, ``en``, ``ca``, ``es`` (anything else: the page says so, nothing changes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from chatserver.types import Agent

from . import i18n
from .admin.common import done, form_data, me, node_of
from .auth import guard
from .i18n import _

if TYPE_CHECKING:
    from chatserver.node import Node

AUTO = "auto"
PROFILE = "/console/profile"
chosen = i18n.chosen  # read by auth.guard on every request


async def choose(node: Node, agent: Agent, lang: str | None) -> None:
    if lang is None:
        await node.store.delete_doc(agent.site_id, i18n.KIND, agent.id)
    else:
        await node.store.put_doc(agent.site_id, i18n.KIND, agent.id, {"lang": lang})


@guard()
async def profile_language(request: Request) -> Response:
    """The profile page's language select."""
    node, agent = node_of(request), me(request)
    value = (await form_data(request)).get("language")
    if value != AUTO and not i18n.supported(value):
        return done(request, PROFILE, _("Choose one of the languages listed."))
    lang = None if value == AUTO else str(value)
    await choose(node, agent, lang)
    i18n.use(i18n.pick(lang, request.headers.get("accept-language", "")))
    return done(request, PROFILE, _("Saved your language."))


routes: list[BaseRoute] = [
    Route(
        "/profile/language",
        profile_language,
        methods=["POST"],
        name="console_profile_language",
    ),
]
