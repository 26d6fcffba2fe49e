"""Session revocation through real server processes (docs/console.md, "Sessions").

Signing out ends that session on every process (a copied cookie and the
tokens it handed out fail); a password reset, "sign out everywhere" and
disabling end every session of the agent for good, and close their open chat
sockets (``4106 session_ended``; disabling: ``4105``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from chatserver.types import Role

from ..conftest import Client, Server, agent_token, seed
from ..redis_server import RedisServer
from .test_console_admin import Console, console, flash, shop_with_admin

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_clients")]

SESSION_ENDED = 4106


async def console_token(c: Console) -> str:
    """A WebSocket token from the console session, as the workspace gets one."""
    r = await c.http.post(
        "/console/api/token",
        headers={"X-CSRF-Token": c.csrf, "Origin": c.server.url, "Accept": "application/json"},
    )
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


async def hello(server: Server, token: str) -> Client:
    """An agent socket with ``token``: welcomed, or closed (see ``closed``)."""
    client = await Client.connect(server)
    await client.send({"t": "hello", "v": 1, "kind": "agent", "token": token})
    try:
        client.welcome = await client.expect("welcome")
    except AssertionError:
        assert client.closed.done(), "neither welcomed nor closed"
    return client


async def refused(server: Server, token: str) -> int | None:
    """The close code a ``hello`` with ``token`` gets (it must not be welcomed)."""
    client = await hello(server, token)
    assert not client.welcome, "the hello was welcomed"
    return (await asyncio.wait_for(client.closed, 5))[0]


async def closed_with(client: Client) -> int | None:
    return (await asyncio.wait_for(client.closed, 5))[0]


def copy_of(c: Console, server: Server | None = None) -> httpx.AsyncClient:
    """Another HTTP client (of ``server``, else the console's) with a copy of its cookie."""
    copy = httpx.AsyncClient(base_url=(server or c.server).url)
    copy.cookies.set("chat_session", c.http.cookies["chat_session"])
    return copy


async def test_a_copied_cookie_and_its_tokens_fail_after_sign_out(server: Server) -> None:
    shop = await seed(server.data, agents=1)
    (email,) = shop.agents
    async with console(server, email) as laptop, console(server, email) as phone:
        token = await console_token(laptop)
        socket = await hello(server, token)
        assert socket.welcome
        phone_socket = await hello(server, await console_token(phone))
        assert phone_socket.welcome
        async with copy_of(laptop) as stolen:
            assert (await stolen.get("/console/")).status_code == 200
            r = await laptop.post("/console/logout")
            assert r.status_code == 303 and r.headers["location"] == "/console/login"
            # The copy no longer works, for pages or for new tokens...
            assert (await stolen.get("/console/")).status_code == 303
            r = await stolen.post(
                "/console/api/token",
                headers={"X-CSRF-Token": laptop.csrf, "Origin": server.url},
            )
            assert r.status_code == 401
        # ...the socket opened with the session's token closes, and the token is refused.
        assert await closed_with(socket) == SESSION_ENDED
        assert await refused(server, token) == SESSION_ENDED
        # A plain sign out leaves the agent's other devices alone.
        assert (await phone.get("/console/")).status_code == 200
        await phone_socket.quiet(0.5)
        assert not phone_socket.closed.done()
        assert (await phone_socket.request({"t": "ping"}))["t"] == "pong"
        # Signing in again is a new session.
        await laptop.login(email)
        assert (await laptop.get("/console/")).status_code == 200


async def test_re_enabling_an_agent_does_not_revive_their_sessions(server: Server) -> None:
    shop, (admin_email, agent_email, _) = await shop_with_admin(server)
    agent_id = shop.agents[agent_email]
    async with console(server, agent_email) as agent, console(server, admin_email) as admin:
        page_token = await console_token(agent)
        api_token = await agent_token(server, agent_email)
        async with copy_of(agent) as copy:
            r = await admin.post(f"/console/admin/agents/{agent_id}/disable")
            assert r.status_code == 303
            assert (await agent.get("/console/")).status_code == 303
            r = await admin.post(f"/console/admin/agents/{agent_id}/enable")
            assert r.status_code == 303
            assert "Enabled Agent 1" in flash(await admin.get(r.headers["location"]))
            # Enabled again: the old cookie, its copy and both kinds of token stay dead.
            assert (await agent.get("/console/")).status_code == 303
            assert (await copy.get("/console/")).status_code == 303
        assert await refused(server, page_token) == SESSION_ENDED
        assert await refused(server, api_token) == SESSION_ENDED
        # A new sign-in works.
        await agent.login(agent_email)
        assert (await agent.get("/console/")).status_code == 200
        assert (await hello(server, await console_token(agent))).welcome


async def test_a_password_reset_closes_the_open_sockets(server: Server) -> None:
    shop, (admin_email, agent_email, _) = await shop_with_admin(server)
    agent_id, admin_id = shop.agents[agent_email], shop.agents[admin_email]
    async with console(server, agent_email) as agent, console(server, admin_email) as admin:
        workspace = await hello(server, await console_token(agent))
        api_token = await agent_token(server, agent_email)
        app = await hello(server, api_token)
        admin_socket = await hello(server, await console_token(admin))
        assert workspace.welcome and app.welcome and admin_socket.welcome

        r = await admin.post(
            f"/console/admin/agents/{agent_id}/password", {"password": "a new password"}
        )
        assert r.status_code == 303
        assert await closed_with(workspace) == SESSION_ENDED
        assert await closed_with(app) == SESSION_ENDED
        assert await refused(server, api_token) == SESSION_ENDED
        assert (await agent.get("/console/")).status_code == 303
        # The admin's sockets and session are not the agent's: untouched.
        assert not admin_socket.closed.done()
        assert (await admin.get("/console/admin")).status_code == 200

        # The admin's own reset: this browser stays signed in (same session id,
        # same CSRF token) and its socket stays open, but the admin's other
        # sessions end, and tokens from before the reset are refused.
        old_token = await console_token(admin)
        async with console(server, admin_email) as elsewhere:
            other_socket = await hello(server, await console_token(elsewhere))
            r = await admin.post(
                f"/console/admin/agents/{admin_id}/password", {"password": "my own new one"}
            )
            assert r.status_code == 303
            assert await closed_with(other_socket) == SESSION_ENDED
            assert (await elsewhere.get("/console/admin")).status_code == 303
        assert (await admin.get("/console/admin")).status_code == 200
        assert (await admin_socket.request({"t": "ping"}))["t"] == "pong"
        assert await refused(server, old_token) == SESSION_ENDED
        assert (await hello(server, await console_token(admin))).welcome


async def test_sign_out_everywhere(server: Server) -> None:
    shop, (admin_email, agent_email, _) = await shop_with_admin(server)
    agent_id = shop.agents[agent_email]
    async with console(server, agent_email) as one, console(server, agent_email) as two:
        socket = await hello(server, await console_token(two))
        # The header's "Sign out everywhere" ends this session and the others.
        page = await one.get("/console/")
        assert 'name="everywhere"' in page.text
        r = await one.post("/console/logout", {"everywhere": "1"})
        assert r.status_code == 303
        assert (await one.get("/console/")).status_code == 303
        assert (await two.get("/console/")).status_code == 303
        assert await closed_with(socket) == SESSION_ENDED
    # An admin can do it for an agent from the agent's page.
    async with console(server, agent_email) as agent, console(server, admin_email) as admin:
        socket = await hello(server, await console_token(agent))
        page = await admin.get(f"/console/admin/agents/{agent_id}")
        assert f'action="/console/admin/agents/{agent_id}/sign-out"' in page.text
        r = await admin.post(f"/console/admin/agents/{agent_id}/sign-out")
        assert r.status_code == 303
        assert "Signed Agent 1 out everywhere." in flash(await admin.get(r.headers["location"]))
        assert await closed_with(socket) == SESSION_ENDED
        assert (await agent.get("/console/")).status_code == 303
        assert (await admin.get("/console/admin")).status_code == 200
        # The account stays active: signing in again works.
        await agent.login(agent_email)
        assert (await agent.get("/console/")).status_code == 200


async def test_sign_out_on_one_process_holds_on_the_other(
    tmp_path: Path, redis: RedisServer
) -> None:
    procs = [Server(tmp_path / f"p{i}", "--redis", redis.url) for i in range(2)]
    shop = await seed(procs[0].data, agents=2, roles={0: Role.ADMIN}, redis_url=redis.url)
    admin_email, agent_email = list(shop.agents)
    try:
        for p in procs:
            p.start()
        a, b = procs
        async with console(a, agent_email) as on_a:
            token = await console_token(on_a)
            socket_b = await hello(b, token)  # the workspace's socket lands on B
            assert socket_b.welcome
            other = await hello(b, await agent_token(b, agent_email))  # another device
            assert other.welcome
            async with copy_of(on_a, b) as copy_b:
                assert (await copy_b.get("/console/")).status_code == 200
                r = await on_a.post("/console/logout")  # signed out on A
                assert r.status_code == 303
                assert (await copy_b.get("/console/")).status_code == 303  # refused on B
            assert await closed_with(socket_b) == SESSION_ENDED
            assert await refused(b, token) == SESSION_ENDED
            assert not other.closed.done()

        # Sign out everywhere on B reaches the agent's socket on A.
        async with console(b, agent_email) as on_b:
            socket_a = await hello(a, await agent_token(a, agent_email))
            r = await on_b.post("/console/logout", {"everywhere": "1"})
            assert r.status_code == 303
            assert await closed_with(socket_a) == SESSION_ENDED
            assert await closed_with(other) == SESSION_ENDED

        # A password reset by an admin on A closes the agent's socket on B.
        async with console(a, admin_email) as admin:
            socket_b = await hello(b, await agent_token(b, agent_email))
            r = await admin.post(
                f"/console/admin/agents/{shop.agents[agent_email]}/password",
                {"password": "reset on A"},
            )
            assert r.status_code == 303
            assert await closed_with(socket_b) == SESSION_ENDED
    finally:
        for p in procs:
            p.stop()
