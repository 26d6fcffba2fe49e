"""The admin pages through a real server: forms, validation, roles, CSRF, isolation.

Every request goes through uvicorn to the real app; what the pages claim to
have done is checked in the server's own SQLite file and, for what reaches
running connections (a disabled agent, site settings, departments), with
real WebSocket clients.  The last test runs two processes on one Redis.
"""

from __future__ import annotations

import asyncio
import html
import io
import json
import re
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from agent_console.admin import routes as admin_routes
from chatserver.cli import ensure_demo
from chatserver.store_sqlite import SQLiteStore
from chatserver.types import Agent, Doc, Role, Site
from chatserver.web.demo import DEMO_ADMIN_EMAIL, DEMO_EMAIL

from ..conftest import PASSWORD, Client, Server, Shop, agent_token, console_login, csrf_of, seed
from ..redis_server import RedisServer

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_clients")]

_ERRORS = re.compile(r'<p class="field-error" id="([^"]+)-error">(.*?)</p>', re.S)
_FLASH = re.compile(r'<p class="flash" role="status">(.*?)</p>', re.S)
_TAG = re.compile(r'<code id="script-tag">(.*?)</code>', re.S)


class Console:
    """A browser-like console session: cookies, the CSRF token, the Origin header."""

    def __init__(self, server: Server, http: httpx.AsyncClient) -> None:
        self.server = server
        self.http = http
        self.csrf = ""

    async def login(self, email: str, password: str = PASSWORD) -> Console:
        r = await console_login(self.http, email, password)
        assert r.status_code == 303, r.text
        self.csrf = csrf_of((await self.http.get("/console/")).text)  # 403 pages have it too
        return self

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.http.get(path, **kw)

    async def post(
        self, path: str, data: dict[str, Any] | None = None, *, csrf: str | None = None
    ) -> httpx.Response:
        form = {**(data or {})}
        token = self.csrf if csrf is None else csrf
        if token:
            form["csrf"] = token
        return await self.http.post(path, data=form, headers={"Origin": self.server.url})


@asynccontextmanager
async def console(server: Server, email: str) -> AsyncIterator[Console]:
    async with httpx.AsyncClient(base_url=server.url) as http:
        yield await Console(server, http).login(email)


@asynccontextmanager
async def store_of(server: Server) -> AsyncIterator[SQLiteStore]:
    """The server's SQLite file, opened next to the running server."""
    store = SQLiteStore(server.data / "chatserver.db")
    await store.start()
    try:
        yield store
    finally:
        await store.close()


async def agent_of(server: Server, agent_id: str) -> Agent:
    async with store_of(server) as store:
        agent = await store.get_agent(agent_id)
    assert agent is not None
    return agent


async def site_of(server: Server, site_id: str) -> Site:
    async with store_of(server) as store:
        site = await store.get_site(site_id)
    assert site is not None
    return site


async def canned_of(server: Server, site_id: str) -> list[Doc]:
    async with store_of(server) as store:
        return await store.list_docs(site_id, "canned")


def errors(page: httpx.Response) -> dict[str, str]:
    """The field errors a page shows, by field."""
    return {field: html.unescape(text) for field, text in _ERRORS.findall(page.text)}


def flash(page: httpx.Response) -> str:
    found = _FLASH.search(page.text)
    return html.unescape(found.group(1)) if found else ""


async def shop_with_admin(server: Server, **kw: Any) -> tuple[Shop, list[str]]:
    """A site whose agent 0 is an admin, agent 1 an agent, agent 2 an analyst."""
    kw.setdefault("departments", ("sales", "support"))
    shop = await seed(
        server.data, agents=3, roles={0: Role.ADMIN, 2: Role.ANALYST}, capacity=3, **kw
    )
    return shop, list(shop.agents)


async def add_canned(admin: Console, shortcut: str, text: str) -> str:
    r = await admin.post("/console/admin/canned/new", {"shortcut": shortcut, "text": text})
    assert r.status_code == 303, errors(r)
    page = await admin.get("/console/admin/canned", params={"q": shortcut})
    found = re.search(r'data-canned="([^"]+)"', page.text)
    assert found
    return found.group(1)


async def add_key(admin: Console, name: str = "CRM sync") -> str:
    """An API key made on its page; its id (the page shows the key itself once)."""
    r = await admin.post("/console/admin/api-keys", {"name": name})
    assert r.status_code == 201, errors(r)
    found = re.findall(r'data-key="([^"]+)"', r.text)
    assert found
    return found[-1]


async def add_webhook(admin: Console, url: str = "http://127.0.0.1:9/hook") -> str:
    """A webhook endpoint (to a closed local port it may not reach): its id."""
    data = {"url": url, "events": "message.created"}
    r = await admin.post("/console/admin/webhooks/new", data)
    assert r.status_code == 200, errors(r)
    found = re.search(r'href="/console/admin/webhooks/(wh_[^"/]+)"', r.text)
    assert found
    return found.group(1)


def routes(
    agent_id: str, doc_id: str, key_id: str, hook_id: str
) -> tuple[list[str], list[tuple[str, dict[str, Any]]]]:
    """Every admin page (GET) and every state-changing admin route (POST) with valid data."""
    hook = f"/console/admin/webhooks/{hook_id}"
    pages = [
        "/console/admin",
        "/console/admin/agents",
        "/console/admin/agents/new",
        f"/console/admin/agents/{agent_id}",
        "/console/admin/departments",
        "/console/admin/canned",
        "/console/admin/canned/new",
        f"/console/admin/canned/{doc_id}",
        "/console/admin/webhooks",
        "/console/admin/webhooks/new",
        hook,
        "/console/admin/site",
        "/console/admin/privacy",
        "/console/admin/privacy/erase",
        "/console/admin/audit",
        "/console/admin/api-keys",
        "/console/admin/mail",
    ]
    agent_fields = {"name": "Changed", "role": "agent", "capacity": "7", "departments": "sales"}
    posts: list[tuple[str, dict[str, Any]]] = [
        (
            "/console/admin/agents/new",
            {**agent_fields, "email": f"new-{agent_id}@test.shop", "password": "long enough"},
        ),
        (f"/console/admin/agents/{agent_id}", agent_fields),
        (f"/console/admin/agents/{agent_id}/password", {"password": "another password"}),
        (f"/console/admin/agents/{agent_id}/sign-out", {}),
        (f"/console/admin/agents/{agent_id}/disable", {}),
        (f"/console/admin/agents/{agent_id}/enable", {}),
        (f"/console/admin/agents/{agent_id}/avatar", {"action": "remove"}),
        ("/console/admin/departments/add", {"name": "billing"}),
        ("/console/admin/departments/rename", {"department": "sales", "name": "ventas"}),
        ("/console/admin/departments/remove", {"department": "support"}),
        ("/console/admin/canned/new", {"shortcut": "newone", "text": "New"}),
        (f"/console/admin/canned/{doc_id}", {"shortcut": "changed", "text": "Changed"}),
        (f"/console/admin/canned/{doc_id}/delete", {}),
        ("/console/admin/webhooks/new", {"url": "http://127.0.0.1:9/", "events": "note.created"}),
        (f"{hook}/test", {}),
        (f"{hook}/disable", {}),
        (f"{hook}/enable", {}),
        (f"{hook}/resend", {"delivery": f"{hook_id}.c_x.1"}),
        (f"{hook}/delete", {}),
        (
            "/console/admin/site",
            {"name": "Changed", "routing": "auto", "color": "#000000", "language": "es"},
        ),
        ("/console/admin/privacy", {"visitor": "v_unknown"}),  # reads only: 422, nobody found
        ("/console/admin/privacy/erase", {"visitor": "v_unknown"}),  # 422, nobody found
        ("/console/admin/privacy/retention", {"activity_retention_days": "90"}),
        ("/console/admin/audit/retention", {"days": "90"}),
        ("/console/admin/api-keys", {"name": "Another key"}),
        (f"/console/admin/api-keys/{key_id}/revoke", {}),
        (
            "/console/admin/mail",
            {
                "host": "smtp.shop.example",
                "port": "587",
                "security": "starttls",
                "sender": "chat@shop.example",
                "unanswered": "5",
                "public_url": "https://chat.shop.example",
            },
        ),
        ("/console/admin/mail/test", {}),
        ("/console/admin/mail/remove", {}),
    ]
    return pages, posts


async def snapshot(server: Server, shop: Shop) -> tuple[Any, ...]:
    """Everything an admin route could change on a site."""
    async with store_of(server) as store:
        site = await store.get_site(shop.site.id)
        agents = await store.list_agents(shop.site.id)
        docs = await store.list_docs(shop.site.id, "canned")
        docs += await store.list_docs(shop.site.id, "webhook")
        docs += await store.list_docs(shop.site.id, "mail")  # the SMTP settings
        docs += await store.list_docs(shop.site.id, "avatar")  # agents' pictures
        keys = await store.list_docs(shop.site.id, "api-key")
    return (
        site,
        sorted(agents, key=lambda a: a.id),
        [(d.id, d.data) for d in docs],
        [(k.id, k.data) for k in keys],
    )


@pytest.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url) as client:
        yield client


# -- access ---------------------------------------------------------------------


async def test_only_admins_reach_the_admin_pages(server: Server) -> None:
    shop, (admin_email, agent_email, analyst_email) = await shop_with_admin(server)
    async with console(server, admin_email) as admin:
        doc_id = await add_canned(admin, "hello", "Hello!")
        key_id = await add_key(admin)
        hook_id = await add_webhook(admin)
        home = await admin.get("/console/")
        assert 'href="/console/admin"' in home.text  # the Admin tab
        pages, posts = routes(shop.agents[agent_email], doc_id, key_id, hook_id)
        for path in pages:
            assert (await admin.get(path)).status_code == 200, path
    # The lists above name every admin route there is (a new one must join them).
    for route in admin_routes:
        assert isinstance(route, Route)
        path = "/console" + route.path.format(
            agent_id=shop.agents[agent_email], doc_id=doc_id, key_id=key_id, hook_id=hook_id
        )
        assert route.methods is not None
        assert ("GET" in route.methods) == (path in pages), path
        assert ("POST" in route.methods) == (path in [p for p, _ in posts]), path
    before = await snapshot(server, shop)
    for email in (agent_email, analyst_email):
        async with console(server, email) as user:
            assert 'href="/console/admin"' not in (await user.get("/console/")).text
            for path in pages:
                assert (await user.get(path)).status_code == 403, (email, path)
            for path, data in posts:  # with the user's own valid CSRF token
                assert (await user.post(path, data)).status_code == 403, (email, path)
    assert await snapshot(server, shop) == before
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        for path in pages:
            r = await anonymous.get(path)
            assert r.status_code == 303 and r.headers["location"].startswith("/console/login")
        for path, data in posts:
            r = await anonymous.post(path, data=data, headers={"Origin": server.url})
            assert r.status_code == 401, path
    assert await snapshot(server, shop) == before


async def test_every_state_changing_route_needs_the_csrf_token(server: Server) -> None:
    shop, (admin_email, agent_email, _) = await shop_with_admin(server)
    async with console(server, admin_email) as admin, console(server, admin_email) as other:
        doc_id = await add_canned(admin, "hello", "Hello!")
        key_id = await add_key(admin)
        hook_id = await add_webhook(admin)
        before = await snapshot(server, shop)
        _, posts = routes(shop.agents[agent_email], doc_id, key_id, hook_id)
        for path, data in posts:
            assert (await admin.post(path, data, csrf="")).status_code == 403, path
            assert (await admin.post(path, data, csrf="csrf.bogus")).status_code == 403, path
            # Another session's token (same admin, another browser) does not pass either.
            assert (await admin.post(path, data, csrf=other.csrf)).status_code == 403, path
            r = await admin.http.post(
                path, data={**data, "csrf": admin.csrf}, headers={"Origin": "https://evil.example"}
            )
            assert r.status_code == 403, path
        assert await snapshot(server, shop) == before
        # The same requests with the token work (the first one, for instance).
        path, data = posts[0]
        assert (await admin.post(path, data)).status_code == 303


async def test_another_sites_admin_cannot_reach_this_site(server: Server) -> None:
    shop, (admin_email, agent_email, _) = await shop_with_admin(server)
    other, (other_admin, *_) = await shop_with_admin(server)
    async with console(server, admin_email) as admin:
        doc_id = await add_canned(admin, "secret", "Our secret text")
        key_id = await add_key(admin, "Our secret integration")
        hook_id = await add_webhook(admin, "http://127.0.0.1:9/our-secret-hook")
    before = await snapshot(server, shop)
    agent_id = shop.agents[agent_email]
    async with console(server, other_admin) as intruder:
        pages, posts = routes(agent_id, doc_id, key_id, hook_id)
        for path in pages:
            r = await intruder.get(path)
            assert r.status_code in (200, 404), path
            assert agent_email not in r.text and "Our secret text" not in r.text, path
            assert "Our secret integration" not in r.text and key_id not in r.text, path
            assert "our-secret-hook" not in r.text, path
            assert shop.key not in r.text and shop.site.id not in r.text, path
        for path in (
            f"/console/admin/agents/{agent_id}",
            f"/console/admin/canned/{doc_id}",
            f"/console/admin/webhooks/{hook_id}",
        ):
            assert (await intruder.get(path)).status_code == 404
        for path, data in posts:
            r = await intruder.post(path, data)
            if agent_id in path or doc_id in path or key_id in path or hook_id in path:
                assert r.status_code == 404, path
        # Whatever the intruder did landed on their own site only.
    assert await snapshot(server, shop) == before
    mine = await site_of(server, other.site.id)
    assert mine.name == "Changed" and mine.departments == ("ventas", "billing")


# -- agents ---------------------------------------------------------------------


async def test_add_an_agent_who_then_signs_in(server: Server) -> None:
    shop, (admin_email, *_) = await shop_with_admin(server)
    async with console(server, admin_email) as admin:
        bad = {
            "name": "  ",
            "email": "not-an-email",
            "password": "short",
            "role": "boss",
            "capacity": "51",
            "departments": ["sales", "nope"],
        }
        r = await admin.post("/console/admin/agents/new", bad)
        assert r.status_code == 422
        assert set(errors(r)) == {"name", "email", "password", "role", "capacity", "departments"}
        assert 'value="not-an-email"' in r.text and 'value="51"' in r.text  # values kept
        assert "short" not in r.text  # a password is never sent back
        for capacity in ("0", "x", "-1", "2.5"):
            r = await admin.post("/console/admin/agents/new", {**bad, "capacity": capacity})
            assert "capacity" in errors(r), capacity

        good = {
            "name": "Zoë <Agent>",
            "email": f"zoe-{shop.site.id}@test.shop",
            "password": "a fine password",
            "role": "agent",
            "capacity": "4",
            "departments": ["support"],
        }
        taken = {**good, "email": admin_email.upper()}
        r = await admin.post("/console/admin/agents/new", taken)
        assert r.status_code == 422 and errors(r) == {"email": "This email is already in use."}

        r = await admin.post("/console/admin/agents/new", good)
        assert r.status_code == 303 and r.headers["location"] == "/console/admin/agents"
        page = await admin.get("/console/admin/agents")
        assert "Added Zoë <Agent>" in flash(page)
        assert "Zoë &lt;Agent&gt;" in page.text and "<Agent>" not in page.text
        assert flash(await admin.get("/console/admin/agents")) == ""  # shown once

    async with store_of(server) as store:
        zoe = await store.agent_by_email(good["email"])
    assert zoe is not None and zoe.site_id == shop.site.id
    assert (zoe.name, zoe.role, zoe.capacity, zoe.departments) == (
        "Zoë <Agent>",
        Role.AGENT,
        4,
        ("support",),
    )
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await console_login(http, good["email"], good["password"])
        assert r.status_code == 303 and r.headers["location"] == "/console/"
        assert "Zoë &lt;Agent&gt;" in (await http.get("/console/")).text


async def test_edit_an_agent_and_reset_passwords(server: Server) -> None:
    shop, (admin_email, agent_email, _) = await shop_with_admin(server)
    agent_id, admin_id = shop.agents[agent_email], shop.agents[admin_email]
    async with console(server, admin_email) as admin, console(server, agent_email) as agent:
        page = await admin.get(f"/console/admin/agents/{agent_id}")
        assert 'value="Agent 1"' in page.text
        fields = {"name": "Bea", "role": "admin", "capacity": "9", "departments": "support"}
        r = await admin.post(f"/console/admin/agents/{agent_id}", {**fields, "capacity": "0"})
        assert r.status_code == 422 and set(errors(r)) == {"capacity"}
        assert 'value="Bea"' in r.text
        r = await admin.post(f"/console/admin/agents/{agent_id}", fields)
        assert r.status_code == 303 and "Saved Bea." in flash(
            await admin.get(r.headers["location"])
        )
        bea = await agent_of(server, agent_id)
        assert (bea.name, bea.role, bea.capacity, bea.departments) == (
            "Bea",
            Role.ADMIN,
            9,
            ("support",),
        )
        assert (await agent.get("/console/admin")).status_code == 200  # an admin at once

        # An admin cannot demote or disable themselves.
        r = await admin.post(f"/console/admin/agents/{admin_id}", {**fields, "role": "agent"})
        assert r.status_code == 422
        assert errors(r) == {"role": "You cannot change your own role: ask another admin."}
        r = await admin.post(f"/console/admin/agents/{admin_id}/disable")
        assert r.status_code == 409 and "You cannot disable your own account." in r.text
        me = await agent_of(server, admin_id)
        assert me.role is Role.ADMIN and not me.disabled
        # Another admin can be demoted: Bea goes back to agent.
        r = await admin.post(f"/console/admin/agents/{agent_id}", {**fields, "role": "agent"})
        assert r.status_code == 303
        assert (await agent.get("/console/admin")).status_code == 403

        # A password reset ends the agent's sessions; the new password works.
        r = await admin.post(f"/console/admin/agents/{agent_id}/password", {"password": "1234567"})
        assert r.status_code == 422 and set(errors(r)) == {"pw-password"}
        r = await admin.post(
            f"/console/admin/agents/{agent_id}/password", {"password": "new pw 123"}
        )
        assert r.status_code == 303
        assert (await agent.get("/console/")).status_code == 303  # signed out
        await agent.login(agent_email, "new pw 123")
        assert (await agent.get("/console/")).status_code == 200

        # The admin's own reset keeps this session and ends the others.
        async with console(server, admin_email) as elsewhere:
            r = await admin.post(
                f"/console/admin/agents/{admin_id}/password", {"password": "mine 1234"}
            )
            assert r.status_code == 303
            assert (await elsewhere.get("/console/admin")).status_code == 303
        assert (await admin.get("/console/admin")).status_code == 200


async def test_disabling_an_agent_closes_their_socket_and_frees_their_chats(
    server: Server,
) -> None:
    shop, (admin_email, agent_email, _) = await shop_with_admin(server)
    agent_id = shop.agents[agent_email]
    async with console(server, agent_email) as agent_console:
        agent = await Client.agent(server, agent_email)
        token = await agent_token(server, agent_email)
        visitor = await Client.visitor(server, shop.key)
        ack = await visitor.request({"t": "send", "cid": "1", "body": "hello"})
        conv = ack["conv"]
        await agent.expect(
            "conv", lambda f: f["conv"]["id"] == conv and f["conv"]["state"] == "active"
        )

        async with console(server, admin_email) as admin:
            r = await admin.post(f"/console/admin/agents/{agent_id}/disable")
            assert r.status_code == 303
            assert "Disabled Agent 1" in flash(await admin.get(r.headers["location"]))
            code, _reason = await asyncio.wait_for(agent.closed, 5)
            assert code == 4105
            # The chat went back to the queue: the visitor is told, nobody holds it.
            await visitor.expect(
                "conv", lambda f: f["conv"]["id"] == conv and f["conv"]["state"] == "queued"
            )
            assert (await agent_of(server, agent_id)).disabled
            # Signed out everywhere: console, token login, the old token's hello.
            assert (await agent_console.get("/console/")).status_code == 303
            r = await agent_console.http.post(
                "/api/login", json={"email": agent_email, "password": PASSWORD}
            )
            assert r.status_code == 401
            again = await Client.connect(server)
            await again.send({"t": "hello", "v": 1, "kind": "agent", "token": token})
            assert (await asyncio.wait_for(again.closed, 5))[0] == 4105
            # A colleague coming online gets the freed chat.
            async with store_of(server) as store:
                admin_agent = await store.agent_by_email(admin_email)
            assert admin_agent is not None
            colleague = await Client.agent(server, admin_email)
            await colleague.expect(
                "conv",
                lambda f: (
                    f["conv"]["id"] == conv
                    and [a["id"] for a in f["conv"]["agents"]] == [admin_agent.id]
                ),
            )

            r = await admin.post(f"/console/admin/agents/{agent_id}/enable")
            assert r.status_code == 303
    async with console(server, agent_email):  # signs in again
        back = await Client.agent(server, agent_email)
        assert back.welcome["agent"]["id"] == agent_id


# -- departments ----------------------------------------------------------------


async def test_departments_add_rename_remove(server: Server) -> None:
    shop, (admin_email, agent_email, _) = await shop_with_admin(
        server, agent_departments={0: ("support",), 1: ("sales", "support")}
    )
    agent_id = shop.agents[agent_email]
    async with console(server, admin_email) as admin:
        for name, why in (
            ("", "A name is required."),
            ("SALES", "There is a department with this name already."),
            ("a/b", "Letters, digits, spaces, '-' and '_' only."),
            ("x" * 65, "At most 64 characters."),
        ):
            r = await admin.post("/console/admin/departments/add", {"name": name})
            assert r.status_code == 422 and errors(r) == {"add-name": why}, name
        r = await admin.post("/console/admin/departments/add", {"name": "  Returns  "})
        assert r.status_code == 303
        assert "Added the department Returns." in flash(await admin.get(r.headers["location"]))
        assert (await site_of(server, shop.site.id)).departments == ("sales", "support", "Returns")

        # A visitor waits in "sales" (agent 1 away); a rename carries chat and agent along.
        agent = await Client.agent(server, agent_email, status="away")
        visitor = await Client.visitor(server, shop.key, dept="sales")
        ack = await visitor.request({"t": "send", "cid": "1", "body": "a question on sales"})
        later = await Client.visitor(server, shop.key, dept="sales")  # writes after the rename
        r = await admin.post(
            "/console/admin/departments/rename", {"department": "sales", "name": "SUPPORT"}
        )
        assert r.status_code == 422 and "There is a department" in r.text
        assert 'value="SUPPORT"' in r.text  # what was typed, in sales' row
        r = await admin.post(
            "/console/admin/departments/rename", {"department": "sales", "name": "Ventas"}
        )
        assert r.status_code == 303
        assert (await site_of(server, shop.site.id)).departments == ("Ventas", "support", "Returns")
        assert (await agent_of(server, agent_id)).departments == ("Ventas", "support")
        async with store_of(server) as store:
            moved = await store.get_conversation(ack["conv"])
        assert moved is not None and moved.department == "Ventas"
        # A visitor whose page named "sales" before can still start a chat (in no department).
        ack2 = await later.request({"t": "send", "cid": "1", "body": "me too"})
        assert ack2["t"] == "ack"
        async with store_of(server) as store:
            theirs = await store.get_conversation(ack2["conv"])
        assert theirs is not None and theirs.department is None
        # Routing knows the new name: the agent comes back and gets the chat.
        await agent.request({"t": "status", "status": "online"})
        await agent.expect(
            "conv", lambda f: f["conv"]["id"] == ack["conv"] and f["conv"]["state"] == "active"
        )

        # Removing a department with an open chat is refused; once closed it works.
        r = await admin.post("/console/admin/departments/remove", {"department": "Ventas"})
        assert r.status_code == 409
        assert "1 open conversation is in this department" in r.text
        await agent.request({"t": "close", "conv": ack["conv"]})
        r = await admin.post("/console/admin/departments/remove", {"department": "Ventas"})
        assert r.status_code == 303
        assert (await site_of(server, shop.site.id)).departments == ("support", "Returns")
        assert (await agent_of(server, agent_id)).departments == ("support",)
        r = await admin.post("/console/admin/departments/remove", {"department": "Ventas"})
        assert r.status_code == 404


# -- canned responses -------------------------------------------------------------


async def test_canned_responses(server: Server) -> None:
    shop, (admin_email, *_) = await shop_with_admin(server)
    async with console(server, admin_email) as admin:
        for shortcut, text, field in (
            ("", "text", "shortcut"),
            ("has space", "text", "shortcut"),
            ("x" * 33, "text", "shortcut"),
            ("ok", "   ", "text"),
            ("ok", "x" * 4001, "text"),
        ):
            r = await admin.post("/console/admin/canned/new", {"shortcut": shortcut, "text": text})
            assert r.status_code == 422 and set(errors(r)) == {field}, (shortcut, text[:10])
        r = await admin.post("/console/admin/canned/new", {"shortcut": "has space", "text": "kept"})
        assert 'value="has space"' in r.text and ">kept</textarea>" in r.text

        xss = "<img src=x onerror=alert(1)> We ship\nin 2 days."
        ship = await add_canned(admin, "/Shipping", xss)  # "/" and case are forgiven
        await add_canned(admin, "returns", "Returns are free for 30 days.")
        r = await admin.post("/console/admin/canned/new", {"shortcut": "shipping", "text": "again"})
        assert errors(r) == {"shortcut": "Another canned response has this shortcut."}

        page = await admin.get("/console/admin/canned")
        assert "/shipping" in page.text and "/returns" in page.text
        assert "<img src=x" not in page.text and "&lt;img src=x onerror=alert(1)&gt;" in page.text
        found = await admin.get("/console/admin/canned", params={"q": "FREE"})
        assert "/returns" in found.text and "/shipping" not in found.text
        assert "1 of 2 match" in html.unescape(found.text)

        r = await admin.post(
            f"/console/admin/canned/{ship}", {"shortcut": "returns", "text": "clash"}
        )
        assert r.status_code == 422 and "shortcut" in errors(r)
        r = await admin.post(
            f"/console/admin/canned/{ship}", {"shortcut": "shipping", "text": "  Two days.  "}
        )
        assert r.status_code == 303 and "Saved /shipping." in flash(
            await admin.get("/console/admin/canned")
        )

        # The documents have exactly the shape the chat workspace reads.
        docs = {d.id: d.data for d in await canned_of(server, shop.site.id)}
        assert docs[ship] == {"shortcut": "shipping", "text": "Two days."}
        assert sorted(d["shortcut"] for d in docs.values()) == ["returns", "shipping"]

        r = await admin.post(f"/console/admin/canned/{ship}/delete")
        assert r.status_code == 303 and "Deleted /shipping." in flash(
            await admin.get("/console/admin/canned")
        )
        assert [d.data["shortcut"] for d in await canned_of(server, shop.site.id)] == ["returns"]
        assert (await admin.post(f"/console/admin/canned/{ship}/delete")).status_code == 404
        assert (await admin.get(f"/console/admin/canned/{'x' * 200}")).status_code == 404


# -- site settings ----------------------------------------------------------------


def site_fields(**kw: Any) -> dict[str, Any]:
    fields = {
        "name": "Test shop",
        "origins": "",
        "typing_preview": "on",
        "routing": "auto",
        "color": "#2563eb",
        "greeting": "",
        "language": "en",
    }
    fields.update(kw)
    return {k: v for k, v in fields.items() if v is not None}


async def test_site_settings_validation(server: Server) -> None:
    shop, (admin_email, *_) = await shop_with_admin(server)
    async with console(server, admin_email) as admin:
        bad = site_fields(
            name="",
            origins="https://shop.example\nshop.example/path",
            routing="random",
            color="blue",
            greeting="x" * 501,
            language="fr",
        )
        r = await admin.post("/console/admin/site", bad)
        assert r.status_code == 422
        assert set(errors(r)) == {"name", "origins", "routing", "color", "greeting", "language"}
        assert "Line 2" in errors(r)["origins"]
        assert "shop.example/path</textarea>" in r.text  # kept as typed
        for origin in (
            "https://shop.example/x",
            "ftp://shop.example",
            "https://user@shop.example",
            "https://shop.example?x=1",
            "https://*.example",
            "https://shop.example:99999",
            "*",
        ):
            r = await admin.post("/console/admin/site", site_fields(origins=origin))
            assert set(errors(r)) == {"origins"}, origin
        assert (await site_of(server, shop.site.id)).name == "Test shop"  # nothing saved

        ok = site_fields(
            name="Renamed <shop>",
            origins="HTTPS://Shop.Example:443/\n\nhttp://localhost:8080\nhttps://shop.example",
            typing_preview=None,  # unticked
            routing="manual",
            color="#ABC",
            greeting="Hola!",
            language="es",
            redact_patterns="<b>\\d{5}\n",
            recording="on",
            recording_sample="12.5",
            recording_retention_days="60",
        )
        r = await admin.post("/console/admin/site", ok)
        assert r.status_code == 303
        assert "Saved." in flash(await admin.get("/console/admin/site"))
        site = await site_of(server, shop.site.id)
        assert site.name == "Renamed <shop>"
        assert site.allowed_origins == ("https://shop.example", "http://localhost:8080")
        s = site.settings
        assert (s.typing_preview, s.routing, s.color, s.greeting, s.language) == (
            False,
            "manual",
            "#abc",
            "Hola!",
            "es",
        )
        assert site.departments == shop.site.departments and site.key == shop.key
        assert s.redact_patterns == ("<b>\\d{5}",)
        assert (s.recording, s.recording_sample, s.recording_consent) == (True, 0.125, False)
        assert s.recording_retention_days == 60
        page = await admin.get("/console/admin/site")
        assert "&lt;b&gt;\\d{5}</textarea>" in page.text  # escaped in the form


async def test_site_settings_take_effect_at_once(server: Server) -> None:
    shop, (admin_email, agent_email, _) = await shop_with_admin(server)
    agent = await Client.agent(server, agent_email)  # the hub caches the site from here
    visitor = await Client.visitor(server, shop.key)
    ack = await visitor.request({"t": "send", "cid": "1", "body": "hi"})
    conv = ack["conv"]
    await agent.expect("conv", lambda f: f["conv"]["id"] == conv and f.get("follow"))
    await visitor.send({"t": "typing", "draft": "draft one"})
    await agent.expect("preview", lambda f: f["text"] == "draft one")

    async with console(server, admin_email) as admin:
        r = await admin.post(
            "/console/admin/site",
            site_fields(
                typing_preview=None,
                routing="manual",
                color="#112233",
                greeting="Welcome!",
                origins="https://shop.example",
            ),
        )
        assert r.status_code == 303
        # The live visitor's drafts stop reaching agents at once.
        mark = len(agent.frames)
        await visitor.send({"t": "typing", "draft": "draft two"})
        await agent.expect("typing", lambda f: f["from"]["kind"] == "visitor", after=mark)
        assert not [f for f in agent.frames[mark:] if f["t"] == "preview"]
        # New connections get the new settings; other origins are refused.
        fresh = await Client.connect(server, origin="https://shop.example")
        await fresh.send({"t": "hello", "v": 1, "kind": "visitor", "site": shop.key})
        welcome = await fresh.expect("welcome")
        settings = welcome["site"]["settings"]
        assert (settings["color"], settings["greeting"], settings["routing"]) == (
            "#112233",
            "Welcome!",
            "manual",
        )
        evil = await Client.connect(server, origin="https://evil.example")
        await evil.send({"t": "hello", "v": 1, "kind": "visitor", "site": shop.key})
        assert (await asyncio.wait_for(evil.closed, 5))[0] == 4104
        again = await Client.agent(server, agent_email)
        assert again.welcome["site"]["settings"]["routing"] == "manual"

        # Manual routing: a new chat waits; switching back to auto assigns it now.
        ack2 = await fresh.request({"t": "send", "cid": "1", "body": "anyone?"})
        await asyncio.sleep(0.3)
        async with store_of(server) as store:
            waiting = await store.get_conversation(ack2["conv"])
        assert waiting is not None and waiting.state.value == "queued"
        r = await admin.post("/console/admin/site", site_fields(routing="auto"))
        assert r.status_code == 303
        await agent.expect(
            "conv", lambda f: f["conv"]["id"] == ack2["conv"] and f["conv"]["state"] == "active"
        )


async def test_the_script_tag_carries_the_site_key(server: Server) -> None:
    shop, (admin_email, *_) = await shop_with_admin(server)
    async with console(server, admin_email) as admin:
        for path in ("/console/admin", "/console/admin/site"):
            page = await admin.get(path)
            found = _TAG.search(page.text)
            assert found, path
            tag = html.unescape(found.group(1))
            assert tag == (
                f'<script src="{server.url}/widget.js" data-site="{shop.key}" async></script>'
            )
            assert 'src="/console/static/admin.js"' in page.text  # the copy button
        js = await admin.get("/console/static/admin.js")
        assert js.status_code == 200 and "clipboard" in js.text


# -- the demo ---------------------------------------------------------------------


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[tuple[Server, dict[str, str]]]:
    data = tmp_path / "data"
    _site, logins = await ensure_demo(data)
    srv = Server(data).start()
    yield srv, logins
    srv.stop()


async def test_the_demo_admin_runs_the_demo_site(demo: tuple[Server, dict[str, str]]) -> None:
    server, logins = demo
    async with httpx.AsyncClient(base_url=server.url) as http:
        admin = await Console(server, http).login(DEMO_ADMIN_EMAIL, logins[DEMO_ADMIN_EMAIL])
        agents = await admin.get("/console/admin/agents")
        assert "Marc (demo admin)" in agents.text and "Anna (demo agent)" in agents.text
        departments = await admin.get("/console/admin/departments")
        assert 'data-department="sales"' in departments.text
        r = await admin.post(
            "/console/admin/site", site_fields(name="My renamed demo", greeting="Hi there")
        )
        assert r.status_code == 303
        # The demo shop still finds its site, and ensure_demo does not make another.
        shop = await http.get("/demo/")
        assert shop.status_code == 200
        site, _ = await ensure_demo(server.data)
        assert site.name == "My renamed demo" and site.key in shop.text
        async with store_of(server) as store:
            assert len(await store.list_sites()) == 1
            assert await store.agent_by_email(DEMO_EMAIL) is not None


# -- many processes -------------------------------------------------------------


@pytest.mark.slow
async def test_admin_changes_reach_every_process(tmp_path: Path, redis: RedisServer) -> None:
    procs = [Server(tmp_path / f"p{i}", "--redis", redis.url) for i in range(2)]
    shop = await seed(
        procs[0].data,
        agents=3,
        roles={0: Role.ADMIN},
        departments=("sales",),
        redis_url=redis.url,
    )
    admin_email, agent_email, other_email = list(shop.agents)
    try:
        for p in procs:
            p.start()
        a, b = procs
        agent = await Client.agent(b, agent_email)  # on B, which now caches the site
        visitor = await Client.visitor(b, shop.key)
        ack = await visitor.request({"t": "send", "cid": "1", "body": "hi"})
        await agent.expect("conv", lambda f: f["conv"]["id"] == ack["conv"] and f.get("follow"))
        await visitor.send({"t": "typing", "draft": "seen"})
        await agent.expect("preview", lambda f: f["text"] == "seen")

        async with console(a, admin_email) as admin:  # the admin works on A
            r = await admin.post(
                "/console/admin/site",
                site_fields(typing_preview=None, greeting="From A", color="#654321"),
            )
            assert r.status_code == 303
            r = await admin.post("/console/admin/departments/add", {"name": "billing"})
            assert r.status_code == 303
            # B dropped its copy (within the pub/sub hop): new agents there see it all...
            deadline = asyncio.get_running_loop().time() + 5
            while True:
                other = await Client.agent(b, other_email)
                site = other.welcome["site"]
                if site["departments"] == ["sales", "billing"]:
                    break
                assert asyncio.get_running_loop().time() < deadline, site
                await other.close()
                await asyncio.sleep(0.05)
            assert site["settings"]["greeting"] == "From A"
            # ...and the live visitor's drafts no longer reach agents.
            mark = len(agent.frames)
            await visitor.send({"t": "typing", "draft": "hidden"})
            await agent.expect("typing", lambda f: f["from"]["kind"] == "visitor", after=mark)
            assert not [f for f in agent.frames[mark:] if f["t"] == "preview"]

            # Disabling on A closes the agent's socket on B and frees the chat.
            r = await admin.post(f"/console/admin/agents/{shop.agents[agent_email]}/disable")
            assert r.status_code == 303
            assert (await asyncio.wait_for(agent.closed, 5))[0] == 4105
            await other.expect(
                "conv",
                lambda f: (
                    f["conv"]["id"] == ack["conv"]
                    and [x["id"] for x in f["conv"]["agents"]] == [shop.agents[other_email]]
                ),
                timeout=10,
            )
    finally:
        for p in procs:
            p.stop()


# -- privacy --------------------------------------------------------------------


async def test_an_admin_downloads_a_visitors_archive(server: Server) -> None:
    shop, (admin_email, *_) = await shop_with_admin(server)
    other, _ = await shop_with_admin(server)
    visitor = await Client.visitor(server, shop.key)
    await visitor.send({"t": "identify", "name": "Ann <b>", "email": "ann@example.com"})
    ack = await visitor.request({"t": "send", "cid": "m1", "body": "Where is my parcel?"})
    assert ack["t"] == "ack"
    stranger = await Client.visitor(server, other.key)
    await stranger.send({"t": "identify", "email": "ann@example.com"})  # the same address
    await stranger.request({"t": "send", "cid": "m1", "body": "Another shop's chat"})
    async with console(server, admin_email) as admin:
        page = await admin.get("/console/admin/privacy")
        assert page.status_code == 200 and 'name="email"' in page.text
        r = await admin.post("/console/admin/privacy", {"email": "ANN@example.com"})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/zip"
        assert r.headers["content-disposition"].startswith('attachment; filename="visitor-')
        archive = zipfile.ZipFile(io.BytesIO(r.content))
        data = json.loads(archive.read("visitor.json"))
        assert data["visitor"]["name"] == "Ann <b>"
        assert "Where is my parcel?" in archive.read("transcript.txt").decode()
        assert b"Another shop" not in r.content
        missing = await admin.post("/console/admin/privacy", {"email": "x@example.com"})
        assert missing.status_code == 422 and "No visitor of this site matches" in missing.text
        empty = await admin.post("/console/admin/privacy", {})
        assert empty.status_code == 422 and "Give a visitor id" in empty.text
        echoed = await admin.post("/console/admin/privacy", {"visitor": '"><script>x</script>'})
        assert "<script>x</script>" not in echoed.text  # escaped where it is shown again
    await visitor.close()
    await stranger.close()


async def test_the_audit_trail_shows_who_did_what(server: Server) -> None:
    shop, (admin_email, agent_email, _) = await shop_with_admin(server)
    visitor = await Client.visitor(server, shop.key)
    ack = await visitor.request({"t": "send", "cid": "m1", "body": "Hello"})
    conv = ack["conv"]
    async with httpx.AsyncClient(base_url=server.url) as http:  # a wrong password first
        await console_login(http, admin_email, password="not the password")
    async with console(server, admin_email) as admin:
        r = await admin.post("/console/admin/site", site_fields(name="Renamed <i>"))
        assert r.status_code == 303
        assert (await admin.get(f"/console/conversations/{conv}")).status_code == 200
        page = await admin.get("/console/admin/audit")
        assert page.status_code == 200
        rows = re.findall(r'<tr data-entry="[^"]+">(.*?)</tr>', page.text, re.S)
        actions = [re.findall(r"<td>(.*?)</td>", row, re.S)[2] for row in rows]
        assert actions[:4] == [
            "conversation.read",
            "console.site_settings",
            "login",
            "login.failed",
        ]
        assert conv in rows[0] and "127.0.0.1" in rows[0]
        assert "fields: " in rows[1] and "name" in rows[1] and "csrf" not in rows[1]
        only = await admin.get("/console/admin/audit", params={"action": "login"})
        assert only.text.count("<tr data-entry=") == 1
        csv_file = await admin.get("/console/admin/audit", params={"format": "csv"})
        assert csv_file.headers["content-type"].startswith("text/csv")
        assert csv_file.text.splitlines()[0] == "time,actor,name,action,target,address,detail"
        bad = await admin.get("/console/admin/audit", params={"since": "yesterday"})
        assert bad.status_code == 422 and "YYYY-MM-DD" in bad.text
        r = await admin.post("/console/admin/audit/retention", {"days": "30"})
        assert r.status_code == 303
        assert (await site_of(server, shop.site.id)).settings.audit_retention_days == 30
        r = await admin.post("/console/admin/audit/retention", {"days": "-1"})
        assert r.status_code == 422
    async with console(server, agent_email) as agent:
        assert (await agent.get("/console/admin/audit")).status_code == 403
    await visitor.close()
