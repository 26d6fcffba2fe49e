"""Agents: list, add, edit, reset a password, sign out everywhere, disable and enable.

A password reset, "sign out everywhere" and disabling end every session of
the agent for good (``chatserver.logins``); re-enabling starts them afresh.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from chatserver import accounts
from chatserver.errors import StoreError
from chatserver.types import Agent, Role, Site

from .. import avatars, forms
from ..auth import guard, set_session
from ..confirm import confirmation_page
from ..forms import Form
from ..i18n import _
from .common import BASE, GET_POST, done, form_data, me, missing, node_of, own_site, page


async def _site_agent(request: Request) -> tuple[Site, Agent | None]:
    site = await own_site(request)
    agent = await node_of(request).store.get_agent(request.path_params["agent_id"])
    return site, agent if agent is not None and agent.site_id == site.id else None


@guard(Role.ADMIN)
async def agents(request: Request) -> Response:
    site = await own_site(request)
    listed = sorted(
        await node_of(request).store.list_agents(site.id),
        key=lambda a: (a.disabled, a.name.lower()),
    )
    return page(request, "admin/agents.html", {"section": "agents", "agents": listed})


@guard(Role.ADMIN)
async def agent_new(request: Request) -> Response:
    node, site = node_of(request), await own_site(request)
    if request.method == "GET":
        form = Form(values={"role": Role.AGENT.value, "capacity": "5", "departments": []})
        return page(request, "admin/agent_new.html", _agent_ctx(site, form))
    form = forms.agent_form(await form_data(request), site.departments, new=True)
    if form.ok and await node.store.agent_by_email(form.clean["email"]) is not None:
        form.errors["email"] = _("This email is already in use.")
    if form.ok:
        try:
            agent = await accounts.create(
                node,
                site.id,
                form.clean["email"],
                form.clean["name"],
                form.clean["password"],
                form.clean["role"],
                form.clean["capacity"],
                form.clean["departments"],
            )
        except StoreError:
            form.errors["email"] = _("This email is already in use.")
        else:
            return done(
                request,
                f"{BASE}/agents",
                _("Added %(name)s: they sign in at /console/login as %(email)s.")
                % {"name": agent.name, "email": agent.email},
            )
    return page(request, "admin/agent_new.html", _agent_ctx(site, form), 422)


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


async def _edit_page(
    request: Request,
    site: Site,
    agent: Agent,
    form: Form | None = None,
    password: Form | None = None,
    status_error: str = "",
    status_code: int = 200,
    avatar_error: str = "",
) -> Response:
    ctx = _agent_ctx(
        site,
        form or _agent_values(agent),
        agent=agent,
        password=password or Form(),
        status_error=status_error,
        is_me=agent.id == me(request).id,
        avatar=await avatars.url_of(node_of(request), agent),
        avatar_error=avatar_error,
        max_kb=avatars.MAX_AVATAR_BYTES // 1024,
    )
    return page(request, "admin/agent_edit.html", ctx, status_code)


async def _keeps_an_admin(request: Request, agent: Agent, role: Role, disabled: bool) -> str:
    """Why ``agent`` may not become ``role``/``disabled`` (empty when it may).

    An admin never demotes or disables themselves, so the site always keeps
    the admin doing it; the count below also holds when two admins act at once.
    """
    if agent.role is not Role.ADMIN or agent.disabled or (role is Role.ADMIN and not disabled):
        return ""
    if agent.id == me(request).id:
        return (
            _("You cannot disable your own account.")
            if disabled
            else _("You cannot change your own role: ask another admin.")
        )
    others = [
        a
        for a in await node_of(request).store.list_agents(agent.site_id)
        if a.role is Role.ADMIN and not a.disabled and a.id != agent.id
    ]
    return "" if others else _("The site needs at least one admin.")


@guard(Role.ADMIN)
async def agent_edit(request: Request) -> Response:
    node = node_of(request)
    site, agent = await _site_agent(request)
    if agent is None:
        return missing(request, _("No such agent."))
    if request.method == "GET":
        return await _edit_page(request, site, agent)
    form = forms.agent_form(await form_data(request), site.departments, new=False)
    if form.ok and (why := await _keeps_an_admin(request, agent, form.clean["role"], False)):
        form.errors["role"] = why
    if not form.ok:
        return await _edit_page(request, site, agent, form=form, status_code=422)
    saved = replace(
        agent,
        name=form.clean["name"],
        role=form.clean["role"],
        capacity=form.clean["capacity"],
        departments=form.clean["departments"],
    )
    await accounts.save(node, saved)
    return done(request, f"{BASE}/agents", _("Saved %(name)s.") % {"name": saved.name})


@guard(Role.ADMIN)
async def agent_password(request: Request) -> Response:
    node = node_of(request)
    site, agent = await _site_agent(request)
    if agent is None:
        return missing(request, _("No such agent."))
    password = forms.password_form(await form_data(request))
    if not password.ok:
        return await _edit_page(request, site, agent, password=password, status_code=422)
    saved = await accounts.set_password(node, agent, password.clean["password"])
    response = done(
        request,
        f"{BASE}/agents/{agent.id}",
        _("New password set for %(name)s; their other sessions are signed out.")
        % {"name": agent.name},
    )
    return await _end_sessions(request, saved, response)


@guard(Role.ADMIN)
async def agent_sign_out(request: Request) -> Response:
    """End every session of the agent, on every device; their chat sockets close."""
    _site, agent = await _site_agent(request)
    if agent is None:
        return missing(request, _("No such agent."))
    response = done(
        request,
        f"{BASE}/agents/{agent.id}",
        _("Signed %(name)s out everywhere.") % {"name": agent.name},
    )
    return await _end_sessions(request, agent, response)


@guard(Role.ADMIN)
async def agent_avatar(request: Request) -> Response:
    """Upload or remove the agent's picture (``avatars.py``)."""
    site, agent = await _site_agent(request)
    if agent is None:
        return missing(request, _("No such agent."))
    error = await avatars.change(request, agent)
    if error:
        return await _edit_page(request, site, agent, avatar_error=error, status_code=422)
    return done(
        request, f"{BASE}/agents/{agent.id}", _("Saved %(name)s's picture.") % {"name": agent.name}
    )


async def _end_sessions(request: Request, agent: Agent, response: Response) -> Response:
    """End every session of ``agent`` (their sockets close everywhere).

    An admin doing it to themselves keeps this browser: its session id goes
    on at the new generation (same CSRF token for its open pages), and its
    sockets stay open (their next hello gets a fresh token from the cookie).
    """
    login = request.state.login
    own = agent.id == login.agent.id
    spare = login.grant.session if own else ""
    await accounts.end_sessions(node_of(request), agent.id, spare=spare)
    if own:
        await set_session(response, request, agent, keep=login)
    return response


async def _set_disabled(request: Request, disabled: bool) -> Response:
    node = node_of(request)
    site, agent = await _site_agent(request)
    if agent is None:
        return missing(request, _("No such agent."))
    if disabled:
        question = _("Disable %(name)s? They are signed out everywhere at once.") % {
            "name": agent.name
        }
        back = f"{BASE}/agents/{agent.id}"
        if ask := await confirmation_page(request, question, _("Disable"), back):
            return ask
    why = await _keeps_an_admin(request, agent, agent.role, disabled)
    if why:
        return await _edit_page(request, site, agent, status_error=why, status_code=409)
    agent = await accounts.set_disabled(node, agent, disabled)
    message = (
        _("Disabled %(name)s: signed out everywhere, their chats went back to the queue.")
        % {"name": agent.name}
        if disabled
        else _("Enabled %(name)s: they can sign in again.") % {"name": agent.name}
    )
    return done(request, f"{BASE}/agents", message)


@guard(Role.ADMIN)
async def agent_disable(request: Request) -> Response:
    return await _set_disabled(request, True)


@guard(Role.ADMIN)
async def agent_enable(request: Request) -> Response:
    return await _set_disabled(request, False)


routes: list[BaseRoute] = [
    Route("/admin/agents", agents, name="admin_agents"),
    Route("/admin/agents/new", agent_new, methods=GET_POST, name="admin_agent_new"),
    Route("/admin/agents/{agent_id}", agent_edit, methods=GET_POST, name="admin_agent"),
    Route("/admin/agents/{agent_id}/password", agent_password, methods=["POST"]),
    Route("/admin/agents/{agent_id}/disable", agent_disable, methods=["POST"]),
    Route("/admin/agents/{agent_id}/sign-out", agent_sign_out, methods=["POST"]),
    Route("/admin/agents/{agent_id}/enable", agent_enable, methods=["POST"]),
    Route("/admin/agents/{agent_id}/avatar", agent_avatar, methods=["POST"]),
]
