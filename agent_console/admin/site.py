"""The admin home and the site's settings, with the script tag to copy."""

from __future__ import annotations

from dataclasses import replace

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from chatserver import sites
from chatserver.api.keys import KIND as API_KEY_KIND
from chatserver.types import Role, Site

from .. import forms
from ..assets import widget_asset
from ..auth import guard
from ..forms import Form
from ..i18n import _
from .canned import CANNED
from .common import BASE, GET_POST, done, form_data, node_of, own_site, page, script_tag


@guard(Role.ADMIN)
async def home(request: Request) -> Response:
    node, site = node_of(request), await own_site(request)
    agents = await node.store.list_agents(site.id)
    canned = await node.store.list_docs(site.id, CANNED)
    keys = await node.store.list_docs(site.id, API_KEY_KIND)
    return page(
        request,
        "admin/home.html",
        {
            "section": "home",
            "site": site,
            "agents": [a for a in agents if not a.disabled],
            "disabled": [a for a in agents if a.disabled],
            "canned_count": len(canned),
            "api_key_count": len(keys),
            "webhooks": await node.webhooks.endpoints(site.id),
            "script_tag": script_tag(request, site),
        },
    )


def _site_values(site: Site) -> Form:
    s = site.settings
    return Form(
        values={
            "name": site.name,
            "origins": "\n".join(site.allowed_origins),
            "typing_preview": s.typing_preview,
            "cobrowse": s.cobrowse,
            "routing": s.routing,
            "color": s.color,
            "greeting": s.greeting,
            "language": s.language,
            "redact_patterns": "\n".join(s.redact_patterns),
            "recording": s.recording,
            "recording_sample": f"{s.recording_sample * 100:g}",
            "recording_consent": s.recording_consent,
            "recording_retention_days": str(s.recording_retention_days),
            "rewind_seconds": str(s.rewind_seconds),
        }
    )


@guard(Role.ADMIN)
async def site_settings(request: Request) -> Response:
    node, site = node_of(request), await own_site(request)
    form = (
        _site_values(site) if request.method == "GET" else forms.site_form(await form_data(request))
    )
    if request.method == "POST" and form.ok:
        clean = form.clean
        saved = replace(
            site,
            name=clean["name"],
            allowed_origins=clean["origins"],
            settings=replace(
                site.settings,
                typing_preview=clean["typing_preview"],
                cobrowse=clean["cobrowse"],
                routing=clean["routing"],
                color=clean["color"],
                greeting=clean["greeting"],
                language=clean["language"],
                redact_patterns=clean["redact_patterns"],
                recording=clean["recording"],
                recording_sample=clean["recording_sample"],
                recording_consent=clean["recording_consent"],
                recording_retention_days=clean["recording_retention_days"],
                rewind_seconds=clean["rewind_seconds"],
            ),
        )
        await sites.save(node, saved)
        return done(
            request, f"{BASE}/site", _("Saved. New chat windows and agent connections use it now.")
        )
    ctx = {
        "section": "site",
        "site": site,
        "form": form,
        "script_tag": script_tag(request, site),
        "languages": forms.LANGUAGES,
        "routing": forms.ROUTING,
        "limits": forms,
        "preview_url": widget_asset("preview"),
    }
    return page(request, "admin/site.html", ctx, 200 if form.ok else 422)


routes: list[BaseRoute] = [
    Route("/admin", home, name="admin_home"),
    Route("/admin/site", site_settings, methods=GET_POST, name="admin_site"),
]
