"""The admin pages (role ``admin``): agents, departments, canned responses, site.

Every page acts on the signed-in admin's own site: a record named in a URL
is looked up and checked against that site, and another site's id gets the
same 404 as an unknown one.  Every form posts through ``guard`` (session,
role, CSRF token and origin checked), is validated by ``forms``, shows its
errors next to the fields with the entered values kept (status 422), and on
success redirects (POST-redirect-GET) to a page that shows a one-time
confirmation carried by a short-lived signed cookie.

Changes are written to the Store, then handed to ``chatserver.control``,
which updates routing and tells every process (through the broker) to drop
its cached site or to refresh, or close, the agent's live connections.
``docs/admin.md`` says what takes effect when.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from chatserver import control
from chatserver.errors import StoreError
from chatserver.hub import Hub
from chatserver.security import hash_password
from chatserver.types import Agent, ConvState, Doc, Role, Site, new_id

from . import forms
from .auth import guard, set_session
from .forms import Form
from .web import render, security_headers

CANNED = "canned"  # the document kind of canned responses: {"shortcut", "text"}
MAX_CANNED = 500  # canned responses per site
MAX_DEPARTMENTS = 50
FLASH_COOKIE = "chat_flash"
_BASE = "/console/admin"
_GET_POST = ["GET", "POST"]


# -- plumbing ----------------------------------------------------------------


def _hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def _me(request: Request) -> Agent:
    agent: Agent = request.state.login.agent
    return agent


async def _site(request: Request) -> Site:
    """The admin's site, read from the Store (never the hub's cache)."""
    site = await _hub(request).store.get_site(_me(request).site_id)
    assert site is not None, "an agent's site always exists"
    return site


async def _form(request: Request) -> Any:
    return await request.form()  # parsed (and cached) by guard's CSRF check


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _unb64(data: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def _done(request: Request, path: str, message: str) -> Response:
    """Redirect after a successful POST, with a confirmation for the next page."""
    response = RedirectResponse(path, status_code=303)
    token = _hub(request).signer.sign("flash", _b64(message[:300]))
    response.set_cookie(
        FLASH_COOKIE,
        token,
        max_age=60,
        path=_BASE,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return security_headers(response)


def _page(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> Response:
    """Render an admin page, showing (and clearing) a pending confirmation."""
    flash = None
    token = request.cookies.get(FLASH_COOKIE)
    if token:
        fields = _hub(request).signer.verify("flash", token)
        flash = _unb64(fields[0]) if fields and len(fields) == 1 else None
    response = render(request, template, {"flash": flash, **context}, status_code=status_code)
    if token:
        response.delete_cookie(FLASH_COOKIE, path=_BASE)
    return response


def _missing(request: Request, what: str) -> Response:
    return render(request, "error.html", {"message": f"No such {what}."}, status_code=404)


def script_tag(request: Request, site: Site) -> str:
    """The tag a shop pastes on its pages, for the host and scheme the admin uses."""
    return (
        f'<script src="{request.url.scheme}://{request.url.netloc}/widget.js" '
        f'data-site="{site.key}" async></script>'
    )


# -- home ------------------------------------------------------------------------


@guard(Role.ADMIN)
async def home(request: Request) -> Response:
    hub, site = _hub(request), await _site(request)
    agents = await hub.store.list_agents(site.id)
    canned = await hub.store.list_docs(site.id, CANNED)
    return _page(
        request,
        "admin/home.html",
        {
            "section": "home",
            "site": site,
            "agents": [a for a in agents if not a.disabled],
            "disabled": [a for a in agents if a.disabled],
            "canned_count": len(canned),
            "script_tag": script_tag(request, site),
        },
    )


# -- agents ----------------------------------------------------------------------


async def _site_agent(request: Request) -> tuple[Site, Agent | None]:
    site = await _site(request)
    agent = await _hub(request).store.get_agent(request.path_params["agent_id"])
    return site, agent if agent is not None and agent.site_id == site.id else None


@guard(Role.ADMIN)
async def agents(request: Request) -> Response:
    site = await _site(request)
    listed = sorted(
        await _hub(request).store.list_agents(site.id),
        key=lambda a: (a.disabled, a.name.lower()),
    )
    return _page(request, "admin/agents.html", {"section": "agents", "agents": listed})


@guard(Role.ADMIN)
async def agent_new(request: Request) -> Response:
    hub, site = _hub(request), await _site(request)
    if request.method == "GET":
        form = Form(values={"role": Role.AGENT.value, "capacity": "5", "departments": []})
        return _page(request, "admin/agent_new.html", _agent_ctx(site, form))
    form = forms.agent_form(await _form(request), site.departments, new=True)
    if form.ok and await hub.store.agent_by_email(form.clean["email"]) is not None:
        form.errors["email"] = "This email is already in use."
    if form.ok:
        password_hash = await asyncio.to_thread(hash_password, form.clean["password"])
        try:
            agent = await hub.store.create_agent(
                site.id,
                form.clean["email"],
                form.clean["name"],
                password_hash,
                form.clean["role"],
                form.clean["capacity"],
                form.clean["departments"],
            )
        except StoreError:
            form.errors["email"] = "This email is already in use."
        else:
            return _done(
                request,
                f"{_BASE}/agents",
                f"Added {agent.name}: they sign in at /console/login as {agent.email}.",
            )
    return _page(request, "admin/agent_new.html", _agent_ctx(site, form), 422)


def _agent_ctx(site: Site, form: Form, **more: Any) -> dict[str, Any]:
    return {
        "section": "agents",
        "form": form,
        "departments": site.departments,
        "roles": list(Role),
        "limits": forms,
        "is_me": False,
        "new": "agent" not in more,
        **more,
    }


def _agent_values(agent: Agent) -> Form:
    return Form(
        values={
            "name": agent.name,
            "role": agent.role.value,
            "capacity": str(agent.capacity),
            "departments": list(agent.departments),
        }
    )


def _edit_page(
    request: Request,
    site: Site,
    agent: Agent,
    form: Form | None = None,
    password: Form | None = None,
    status_error: str = "",
    status_code: int = 200,
) -> Response:
    ctx = _agent_ctx(
        site,
        form or _agent_values(agent),
        agent=agent,
        password=password or Form(),
        status_error=status_error,
        is_me=agent.id == _me(request).id,
    )
    return _page(request, "admin/agent_edit.html", ctx, status_code)


async def _keeps_an_admin(request: Request, agent: Agent, role: Role, disabled: bool) -> str:
    """Why ``agent`` may not become ``role``/``disabled`` (empty when it may).

    An admin never demotes or disables themselves, so the site always keeps
    the admin doing it; the count below also holds when two admins act at once.
    """
    if agent.role is not Role.ADMIN or agent.disabled or (role is Role.ADMIN and not disabled):
        return ""
    if agent.id == _me(request).id:
        return (
            "You cannot disable your own account."
            if disabled
            else "You cannot change your own role: ask another admin."
        )
    others = [
        a
        for a in await _hub(request).store.list_agents(agent.site_id)
        if a.role is Role.ADMIN and not a.disabled and a.id != agent.id
    ]
    return "" if others else "The site needs at least one admin."


@guard(Role.ADMIN)
async def agent_edit(request: Request) -> Response:
    hub = _hub(request)
    site, agent = await _site_agent(request)
    if agent is None:
        return _missing(request, "agent")
    if request.method == "GET":
        return _edit_page(request, site, agent)
    form = forms.agent_form(await _form(request), site.departments, new=False)
    if form.ok and (why := await _keeps_an_admin(request, agent, form.clean["role"], False)):
        form.errors["role"] = why
    if not form.ok:
        return _edit_page(request, site, agent, form=form, status_code=422)
    saved = replace(
        agent,
        name=form.clean["name"],
        role=form.clean["role"],
        capacity=form.clean["capacity"],
        departments=form.clean["departments"],
    )
    await hub.store.save_agent(saved)
    await control.agent_saved(hub, saved)
    return _done(request, f"{_BASE}/agents", f"Saved {saved.name}.")


@guard(Role.ADMIN)
async def agent_password(request: Request) -> Response:
    hub = _hub(request)
    site, agent = await _site_agent(request)
    if agent is None:
        return _missing(request, "agent")
    password = forms.password_form(await _form(request))
    if not password.ok:
        return _edit_page(request, site, agent, password=password, status_code=422)
    password_hash = await asyncio.to_thread(hash_password, password.clean["password"])
    saved = replace(agent, password_hash=password_hash)
    await hub.store.save_agent(saved)
    response = _done(
        request,
        f"{_BASE}/agents/{agent.id}",
        f"New password set for {agent.name}; their other console sessions are signed out.",
    )
    if agent.id == _me(request).id:
        set_session(response, request, saved)  # this session lives on
    return response


async def _set_disabled(request: Request, disabled: bool) -> Response:
    hub = _hub(request)
    site, agent = await _site_agent(request)
    if agent is None:
        return _missing(request, "agent")
    why = await _keeps_an_admin(request, agent, agent.role, disabled)
    if why:
        return _edit_page(request, site, agent, status_error=why, status_code=409)
    if agent.disabled != disabled:
        agent = replace(agent, disabled=disabled)
        await hub.store.save_agent(agent)
        await control.agent_saved(hub, agent)
    message = (
        f"Disabled {agent.name}: signed out everywhere, their chats went back to the queue."
        if disabled
        else f"Enabled {agent.name}: they can sign in again."
    )
    return _done(request, f"{_BASE}/agents", message)


@guard(Role.ADMIN)
async def agent_disable(request: Request) -> Response:
    return await _set_disabled(request, True)


@guard(Role.ADMIN)
async def agent_enable(request: Request) -> Response:
    return await _set_disabled(request, False)


# -- departments -------------------------------------------------------------------


async def _departments_page(
    request: Request,
    site: Site,
    add: Form | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    """``errors``/``values``: a rename or remove refused, keyed by department."""
    hub = _hub(request)
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
    return _page(request, "admin/departments.html", ctx, status_code)


@guard(Role.ADMIN)
async def departments(request: Request) -> Response:
    return await _departments_page(request, await _site(request))


@guard(Role.ADMIN)
async def department_add(request: Request) -> Response:
    hub, site = _hub(request), await _site(request)
    add = forms.department_name(forms.Fields(await _form(request)).text("name"), site.departments)
    if add.ok and len(site.departments) >= MAX_DEPARTMENTS:
        add.errors["name"] = f"A site has at most {MAX_DEPARTMENTS} departments."
    if not add.ok:
        return await _departments_page(request, site, add=add, status_code=422)
    name = add.clean["name"]
    await hub.store.save_site(replace(site, departments=(*site.departments, name)))
    await control.site_saved(hub, site.id)
    return _done(request, f"{_BASE}/departments", f"Added the department {name}.")


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
    hub, site = _hub(request), await _site(request)
    fields = forms.Fields(await _form(request))
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
        return _done(request, f"{_BASE}/departments", "Nothing to rename.")
    # The site first (new visitors may pick the new name), then who serves it,
    # then the conversations already in it; each step routes what it can.
    await hub.store.save_site(
        replace(site, departments=tuple(new if d == old else d for d in site.departments))
    )
    await control.site_saved(hub, site.id)
    await _agents_departments(hub, site, old, new)
    await _move_conversations(hub, site, old, new)
    await hub.agents_changed(await hub.site(site.id))
    return _done(request, f"{_BASE}/departments", f"Renamed {old} to {new}.")


@guard(Role.ADMIN)
async def department_remove(request: Request) -> Response:
    hub, site = _hub(request), await _site(request)
    name = forms.Fields(await _form(request)).text("department")
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
    return _done(request, f"{_BASE}/departments", f"Removed the department {name}.")


# -- canned responses ------------------------------------------------------------


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
    return await _hub(request).store.get_doc(site.id, CANNED, doc_id)


@guard(Role.ADMIN)
async def canned(request: Request) -> Response:
    site = await _site(request)
    query = request.query_params.get("q", "").strip()[:200]
    items = sorted(
        (_canned(d) for d in await _hub(request).store.list_docs(site.id, CANNED)),
        key=lambda c: c["shortcut"],
    )
    needle = query.lower().lstrip("/")
    shown = [c for c in items if needle in c["shortcut"] or needle in c["text"].lower()]
    ctx = {"section": "canned", "items": shown, "total": len(items), "q": query}
    return _page(request, "admin/canned.html", ctx)


async def _shortcut_taken(hub: Hub, site: Site, shortcut: str, doc_id: str | None) -> bool:
    docs = await hub.store.list_docs(site.id, CANNED)
    return any(d.data.get("shortcut") == shortcut and d.id != doc_id for d in docs)


def _canned_ctx(form: Form, doc_id: str | None = None) -> dict[str, Any]:
    return {"section": "canned", "form": form, "doc_id": doc_id, "limits": forms}


@guard(Role.ADMIN)
async def canned_new(request: Request) -> Response:
    hub, site = _hub(request), await _site(request)
    if request.method == "GET":
        return _page(request, "admin/canned_form.html", _canned_ctx(Form()))
    form = forms.canned_form(await _form(request))
    if form.ok and await _shortcut_taken(hub, site, form.clean["shortcut"], None):
        form.errors["shortcut"] = "Another canned response has this shortcut."
    if form.ok and len(await hub.store.list_docs(site.id, CANNED)) >= MAX_CANNED:
        form.errors["text"] = f"A site has at most {MAX_CANNED} canned responses."
    if not form.ok:
        return _page(request, "admin/canned_form.html", _canned_ctx(form), 422)
    data = {"shortcut": form.clean["shortcut"], "text": form.clean["text"]}
    await hub.store.put_doc(site.id, CANNED, new_id("cr"), data)
    return _done(request, f"{_BASE}/canned", f"Added /{data['shortcut']}.")


@guard(Role.ADMIN)
async def canned_edit(request: Request) -> Response:
    hub, site = _hub(request), await _site(request)
    doc = await _canned_doc(request, site)
    if doc is None:
        return _missing(request, "canned response")
    if request.method == "GET":
        form = Form(values=_canned(doc))
        return _page(request, "admin/canned_form.html", _canned_ctx(form, doc.id))
    form = forms.canned_form(await _form(request))
    if form.ok and await _shortcut_taken(hub, site, form.clean["shortcut"], doc.id):
        form.errors["shortcut"] = "Another canned response has this shortcut."
    if not form.ok:
        return _page(request, "admin/canned_form.html", _canned_ctx(form, doc.id), 422)
    data = {"shortcut": form.clean["shortcut"], "text": form.clean["text"]}
    await hub.store.put_doc(site.id, CANNED, doc.id, data)
    return _done(request, f"{_BASE}/canned", f"Saved /{data['shortcut']}.")


@guard(Role.ADMIN)
async def canned_delete(request: Request) -> Response:
    hub, site = _hub(request), await _site(request)
    doc = await _canned_doc(request, site)
    if doc is None or not await hub.store.delete_doc(site.id, CANNED, doc.id):
        return _missing(request, "canned response")
    return _done(request, f"{_BASE}/canned", f"Deleted /{_canned(doc)['shortcut']}.")


# -- site settings ---------------------------------------------------------------


def _site_values(site: Site) -> Form:
    s = site.settings
    return Form(
        values={
            "name": site.name,
            "origins": "\n".join(site.allowed_origins),
            "typing_preview": s.typing_preview,
            "routing": s.routing,
            "color": s.color,
            "greeting": s.greeting,
            "language": s.language,
        }
    )


@guard(Role.ADMIN)
async def site_settings(request: Request) -> Response:
    hub, site = _hub(request), await _site(request)
    form = _site_values(site) if request.method == "GET" else forms.site_form(await _form(request))
    if request.method == "POST" and form.ok:
        clean = form.clean
        saved = replace(
            site,
            name=clean["name"],
            allowed_origins=clean["origins"],
            settings=replace(
                site.settings,
                typing_preview=clean["typing_preview"],
                routing=clean["routing"],
                color=clean["color"],
                greeting=clean["greeting"],
                language=clean["language"],
            ),
        )
        await hub.store.save_site(saved)
        await control.site_saved(hub, site.id)
        return _done(
            request, f"{_BASE}/site", "Saved. New chat windows and agent connections use it now."
        )
    ctx = {
        "section": "site",
        "site": site,
        "form": form,
        "script_tag": script_tag(request, site),
        "languages": forms.LANGUAGES,
        "routing": forms.ROUTING,
        "limits": forms,
    }
    return _page(request, "admin/site.html", ctx, 200 if form.ok else 422)


routes: list[BaseRoute] = [
    Route("/admin", home, name="admin_home"),
    Route("/admin/agents", agents, name="admin_agents"),
    Route("/admin/agents/new", agent_new, methods=_GET_POST, name="admin_agent_new"),
    Route("/admin/agents/{agent_id}", agent_edit, methods=_GET_POST, name="admin_agent"),
    Route("/admin/agents/{agent_id}/password", agent_password, methods=["POST"]),
    Route("/admin/agents/{agent_id}/disable", agent_disable, methods=["POST"]),
    Route("/admin/agents/{agent_id}/enable", agent_enable, methods=["POST"]),
    Route("/admin/departments", departments, name="admin_departments"),
    Route("/admin/departments/add", department_add, methods=["POST"]),
    Route("/admin/departments/rename", department_rename, methods=["POST"]),
    Route("/admin/departments/remove", department_remove, methods=["POST"]),
    Route("/admin/canned", canned, name="admin_canned"),
    Route("/admin/canned/new", canned_new, methods=_GET_POST, name="admin_canned_new"),
    Route("/admin/canned/{doc_id}", canned_edit, methods=_GET_POST, name="admin_canned_edit"),
    Route("/admin/canned/{doc_id}/delete", canned_delete, methods=["POST"]),
    Route("/admin/site", site_settings, methods=_GET_POST, name="admin_site"),
]
