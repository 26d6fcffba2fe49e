"""Departments: add, rename (agents and open conversations move along), remove
(refused while open conversations are in the department)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from chatserver import sites
from chatserver.types import ConvState, Role, Site

from .. import forms
from ..auth import guard
from ..confirm import confirmation_page
from ..forms import Form
from ..i18n import _, ngettext
from .common import BASE, done, form_data, node_of, own_site, page

MAX_DEPARTMENTS = 50


async def _departments_page(
    request: Request,
    site: Site,
    add: Form | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    """``errors``/``values``: a rename or remove refused, keyed by department."""
    node = node_of(request)
    agents = await node.store.list_agents(site.id)
    convs = await node.store.list_conversations(
        site.id, [ConvState.QUEUED, ConvState.ACTIVE], limit=100_000
    )
    rows = [
        {
            "name": name,
            "agents": sum(1 for a in agents if name in a.departments and not a.disabled),
            "open": sum(1 for c in convs if c.department == name),
        }
        for name in site.departments
    ]
    ctx = {
        "section": "departments",
        "rows": rows,
        "add": add or Form(),
        "errors": errors or {},
        "values": values or {},
        "max_length": forms.MAX_DEPARTMENT,
    }
    return page(request, "admin/departments.html", ctx, status_code)


@guard(Role.ADMIN)
async def departments(request: Request) -> Response:
    return await _departments_page(request, await own_site(request))


@guard(Role.ADMIN)
async def department_add(request: Request) -> Response:
    node, site = node_of(request), await own_site(request)
    add = forms.department_name(
        forms.Fields(await form_data(request)).text("name"), site.departments
    )
    if add.ok and len(site.departments) >= MAX_DEPARTMENTS:
        add.errors["name"] = _("A site has at most %(n)s departments.") % {"n": MAX_DEPARTMENTS}
    if not add.ok:
        return await _departments_page(request, site, add=add, status_code=422)
    name = add.clean["name"]
    await sites.add_department(node, site, name)
    return done(
        request, f"{BASE}/departments", _("Added the department %(name)s.") % {"name": name}
    )


@guard(Role.ADMIN)
async def department_rename(request: Request) -> Response:
    node, site = node_of(request), await own_site(request)
    fields = forms.Fields(await form_data(request))
    old, value = fields.text("department"), fields.text("name")
    if old not in site.departments:
        return await _departments_page(
            request, site, add=Form(errors={"page": _("That department is gone.")}), status_code=404
        )
    form = forms.department_name(value, site.departments, current=old)
    if not form.ok:
        return await _departments_page(
            request, site, errors={old: form.errors["name"]}, values={old: value}, status_code=422
        )
    new = form.clean["name"]
    if new == old:
        return done(request, f"{BASE}/departments", _("Nothing to rename."))
    await sites.rename_department(node, site, old, new)
    return done(
        request, f"{BASE}/departments", _("Renamed %(old)s to %(new)s.") % {"old": old, "new": new}
    )


@guard(Role.ADMIN)
async def department_remove(request: Request) -> Response:
    node, site = node_of(request), await own_site(request)
    name = forms.Fields(await form_data(request)).text("department")
    if name not in site.departments:
        return await _departments_page(
            request, site, add=Form(errors={"page": _("That department is gone.")}), status_code=404
        )
    question = _("Remove the department %(name)s?") % {"name": name}
    if ask := await confirmation_page(request, question, _("Remove"), f"{BASE}/departments"):
        return ask
    busy = await sites.open_in_department(node, site, name)
    if busy:
        why = ngettext(
            "%(num)s open conversation is in this department: transfer or close it first.",
            "%(num)s open conversations are in this department: transfer or close them first.",
            busy,
        ) % {"num": busy}
        return await _departments_page(request, site, errors={name: why}, status_code=409)
    await sites.remove_department(node, site, name)
    return done(
        request, f"{BASE}/departments", _("Removed the department %(name)s.") % {"name": name}
    )


routes: list[BaseRoute] = [
    Route("/admin/departments", departments, name="admin_departments"),
    Route("/admin/departments/add", department_add, methods=["POST"]),
    Route("/admin/departments/rename", department_rename, methods=["POST"]),
    Route("/admin/departments/remove", department_remove, methods=["POST"]),
]
