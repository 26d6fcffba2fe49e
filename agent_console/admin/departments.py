"""Departments: add, rename (agents and open conversations move along), remove
(refused while open conversations are in the department)."""

from __future__ import annotations

from dataclasses import replace

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from chatserver import control
from chatserver.hub import Hub
from chatserver.types import ConvState, Role, Site

from .. import forms
from ..auth import guard
from ..forms import Form
from .common import BASE, done, form_data, hub_of, own_site, page

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
    hub = hub_of(request)
    agents = await hub.store.list_agents(site.id)
    convs = await hub.store.list_conversations(
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
    hub, site = hub_of(request), await own_site(request)
    add = forms.department_name(
        forms.Fields(await form_data(request)).text("name"), site.departments
    )
    if add.ok and len(site.departments) >= MAX_DEPARTMENTS:
        add.errors["name"] = f"A site has at most {MAX_DEPARTMENTS} departments."
    if not add.ok:
        return await _departments_page(request, site, add=add, status_code=422)
    name = add.clean["name"]
    await hub.store.save_site(replace(site, departments=(*site.departments, name)))
    await control.site_saved(hub, site.id)
    return done(request, f"{BASE}/departments", f"Added the department {name}.")


async def _agents_departments(hub: Hub, site: Site, old: str, new: str | None) -> None:
    """Every agent serving ``old`` serves ``new`` instead (or nothing, with ``None``)."""
    for agent in await hub.store.list_agents(site.id):
        if old in agent.departments:
            renamed = (new if d == old else d for d in agent.departments)
            depts = tuple(dict.fromkeys(d for d in renamed if d is not None))
            agent = replace(agent, departments=depts)
            await hub.store.save_agent(agent)
            await control.agent_saved(hub, agent)


async def _move_conversations(hub: Hub, site: Site, old: str, new: str | None) -> int:
    """Open conversations of ``old`` move to ``new``; waiting ones are queued again.

    A waiting conversation's department is also held by the router (it picks
    who may take it), so it is submitted again with the new one, keeping its
    place (the queue is ordered by ``queued_at``).
    """
    moved = 0
    for conv in await hub.store.list_conversations(
        site.id, [ConvState.QUEUED, ConvState.ACTIVE], limit=100_000
    ):
        if conv.department != old:
            continue
        moved += 1
        async with hub.convs.locked(conv.id):
            conv = await hub.store.update_conversation(conv.id, department=new)
            if conv.state is ConvState.QUEUED and conv.id in await hub.router.queue(site.id):
                visitor = await hub.store.get_visitor(conv.visitor_id)
                await hub.router.submit(conv, visitor.last_agent_id if visitor else None)
    return moved


@guard(Role.ADMIN)
async def department_rename(request: Request) -> Response:
    hub, site = hub_of(request), await own_site(request)
    fields = forms.Fields(await form_data(request))
    old, value = fields.text("department"), fields.text("name")
    if old not in site.departments:
        return await _departments_page(
            request, site, add=Form(errors={"page": "That department is gone."}), status_code=404
        )
    form = forms.department_name(value, site.departments, current=old)
    if not form.ok:
        return await _departments_page(
            request, site, errors={old: form.errors["name"]}, values={old: value}, status_code=422
        )
    new = form.clean["name"]
    if new == old:
        return done(request, f"{BASE}/departments", "Nothing to rename.")
    # The site first (new visitors may pick the new name), then who serves it,
    # then the conversations already in it; each step routes what it can.
    await hub.store.save_site(
        replace(site, departments=tuple(new if d == old else d for d in site.departments))
    )
    await control.site_saved(hub, site.id)
    await _agents_departments(hub, site, old, new)
    await _move_conversations(hub, site, old, new)
    await hub.agents_changed(await hub.site(site.id))
    return done(request, f"{BASE}/departments", f"Renamed {old} to {new}.")


@guard(Role.ADMIN)
async def department_remove(request: Request) -> Response:
    hub, site = hub_of(request), await own_site(request)
    name = forms.Fields(await form_data(request)).text("department")
    if name not in site.departments:
        return await _departments_page(
            request, site, add=Form(errors={"page": "That department is gone."}), status_code=404
        )
    busy = [
        c
        for c in await hub.store.list_conversations(
            site.id, [ConvState.QUEUED, ConvState.ACTIVE], limit=100_000
        )
        if c.department == name
    ]
    if busy:
        why = (
            f"{len(busy)} open conversation{'s are' if len(busy) > 1 else ' is'} in this "
            "department: transfer or close them first."
        )
        return await _departments_page(request, site, errors={name: why}, status_code=409)
    await hub.store.save_site(
        replace(site, departments=tuple(d for d in site.departments if d != name))
    )
    await control.site_saved(hub, site.id)
    await _agents_departments(hub, site, name, None)
    # A chat opened in it while this ran: it goes to any agent rather than nobody.
    if await _move_conversations(hub, site, name, None):
        await hub.agents_changed(await hub.site(site.id))
    return done(request, f"{BASE}/departments", f"Removed the department {name}.")


routes: list[BaseRoute] = [
    Route("/admin/departments", departments, name="admin_departments"),
    Route("/admin/departments/add", department_add, methods=["POST"]),
    Route("/admin/departments/rename", department_rename, methods=["POST"]),
    Route("/admin/departments/remove", department_remove, methods=["POST"]),
]
