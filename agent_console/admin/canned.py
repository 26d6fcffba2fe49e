"""Canned responses: site documents of kind ``canned`` whose data is exactly
``{"shortcut": str, "text": str}`` (the chat workspace reads that shape)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from chatserver.types import Doc, Role, Site, new_id

from .. import forms
from ..auth import guard
from ..confirm import confirmation_page
from ..forms import Form
from ..i18n import _
from .common import BASE, GET_POST, done, form_data, missing, node_of, own_site, page

if TYPE_CHECKING:
    from chatserver.node import Node

CANNED = "canned"  # the document kind
MAX_CANNED = 500  # canned responses per site


def _canned(doc: Doc) -> dict[str, str]:
    return {
        "id": doc.id,
        "shortcut": str(doc.data.get("shortcut", "")),
        "text": str(doc.data.get("text", "")),
    }


async def _canned_doc(request: Request, site: Site) -> Doc | None:
    doc_id = request.path_params["doc_id"]
    if len(doc_id) > 64:
        return None
    return await node_of(request).store.get_doc(site.id, CANNED, doc_id)


@guard(Role.ADMIN)
async def canned(request: Request) -> Response:
    site = await own_site(request)
    query = request.query_params.get("q", "").strip()[:200]
    items = sorted(
        (_canned(d) for d in await node_of(request).store.list_docs(site.id, CANNED)),
        key=lambda c: c["shortcut"],
    )
    needle = query.lower().lstrip("/")
    shown = [c for c in items if needle in c["shortcut"] or needle in c["text"].lower()]
    ctx = {"section": "canned", "items": shown, "total": len(items), "q": query}
    return page(request, "admin/canned.html", ctx)


async def _shortcut_taken(node: Node, site: Site, shortcut: str, doc_id: str | None) -> bool:
    docs = await node.store.list_docs(site.id, CANNED)
    return any(d.data.get("shortcut") == shortcut and d.id != doc_id for d in docs)


def _canned_ctx(form: Form, doc_id: str | None = None) -> dict[str, Any]:
    return {"section": "canned", "form": form, "doc_id": doc_id, "limits": forms}


@guard(Role.ADMIN)
async def canned_new(request: Request) -> Response:
    node, site = node_of(request), await own_site(request)
    if request.method == "GET":
        return page(request, "admin/canned_form.html", _canned_ctx(Form()))
    form = forms.canned_form(await form_data(request))
    if form.ok and await _shortcut_taken(node, site, form.clean["shortcut"], None):
        form.errors["shortcut"] = _("Another canned response has this shortcut.")
    if form.ok and len(await node.store.list_docs(site.id, CANNED)) >= MAX_CANNED:
        form.errors["text"] = _("A site has at most %(n)s canned responses.") % {"n": MAX_CANNED}
    if not form.ok:
        return page(request, "admin/canned_form.html", _canned_ctx(form), 422)
    data = {"shortcut": form.clean["shortcut"], "text": form.clean["text"]}
    await node.store.put_doc(site.id, CANNED, new_id("cr"), data)
    return done(request, f"{BASE}/canned", _("Added /%(value)s.") % {"value": data["shortcut"]})


@guard(Role.ADMIN)
async def canned_edit(request: Request) -> Response:
    node, site = node_of(request), await own_site(request)
    doc = await _canned_doc(request, site)
    if doc is None:
        return missing(request, _("No such canned response."))
    if request.method == "GET":
        form = Form(values=_canned(doc))
        return page(request, "admin/canned_form.html", _canned_ctx(form, doc.id))
    form = forms.canned_form(await form_data(request))
    if form.ok and await _shortcut_taken(node, site, form.clean["shortcut"], doc.id):
        form.errors["shortcut"] = _("Another canned response has this shortcut.")
    if not form.ok:
        return page(request, "admin/canned_form.html", _canned_ctx(form, doc.id), 422)
    data = {"shortcut": form.clean["shortcut"], "text": form.clean["text"]}
    await node.store.put_doc(site.id, CANNED, doc.id, data)
    return done(request, f"{BASE}/canned", _("Saved /%(value)s.") % {"value": data["shortcut"]})


@guard(Role.ADMIN)
async def canned_delete(request: Request) -> Response:
    node, site = node_of(request), await own_site(request)
    doc = await _canned_doc(request, site)
    if doc is not None:
        question = _("Delete the canned response /%(value)s?") % {"value": _canned(doc)["shortcut"]}
        ask = await confirmation_page(request, question, _("Delete"), f"{BASE}/canned")
        if ask:
            return ask
    if doc is None or not await node.store.delete_doc(site.id, CANNED, doc.id):
        return missing(request, _("No such canned response."))
    return done(
        request, f"{BASE}/canned", _("Deleted /%(value)s.") % {"value": _canned(doc)["shortcut"]}
    )


routes: list[BaseRoute] = [
    Route("/admin/canned", canned, name="admin_canned"),
    Route("/admin/canned/new", canned_new, methods=GET_POST, name="admin_canned_new"),
    Route("/admin/canned/{doc_id}", canned_edit, methods=GET_POST, name="admin_canned_edit"),
    Route("/admin/canned/{doc_id}/delete", canned_delete, methods=["POST"]),
]
