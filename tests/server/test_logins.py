"""Sign-in and sessions through real server processes: ``POST /api/logout``, the
login throttle shared through the Store, and the periodic re-check of open
agent sockets (docs/console.md, "Sessions"; docs/protocol.md §3.6).

The Redis tests run two server processes on one real redis-server.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from chatserver.logins import Grant
from chatserver.store import Store
from chatserver.store_redis import RedisStore
from chatserver.store_sqlite import SQLiteStore
from chatserver.types import Role

from ..conftest import PASSWORD, Client, Server, agent_token, seed
from ..redis_server import RedisServer
from .test_console_admin import console, shop_with_admin
from .test_console_sessions import closed_with, console_token, hello, refused
from .test_widget_features import PNG

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_clients")]

SESSION_ENDED = 4106
ACCOUNT_DISABLED = 4105
UNAUTHORIZED = 4102


def grant_of(token: str) -> Grant:
    """The sign-in an agent token carries (tests only: clients treat tokens as opaque)."""
    grant = Grant.parse(token.split(".")[1:-1])
    assert grant is not None
    return grant


async def logout(server: Server, token: str | None) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient() as http:
        return await http.post(f"{server.url}/api/logout", headers=headers)


async def upload(server: Server, token: str) -> int:
    """The status of an attachment upload with ``token`` (an HTTP use of a token)."""
    async with httpx.AsyncClient() as http:
        r = await http.post(
            f"{server.url}/api/attachments",
            params={"name": "a.png"},
            content=PNG,
            headers={"Authorization": f"Bearer {token}"},
        )
        return r.status_code


async def still_open(client: Client) -> bool:
    return not client.closed.done() and (await client.request({"t": "ping"}))["t"] == "pong"


@asynccontextmanager
async def opened(store: Store) -> AsyncIterator[Store]:
    await store.start()
    try:
        yield store
    finally:
        await store.close()


# -- POST /api/logout ----------------------------------------------------------


async def test_api_logout_ends_exactly_that_token(server: Server) -> None:
    shop = await seed(server.data, agents=1)
    (email,) = shop.agents
    token, other_token = await agent_token(server, email), await agent_token(server, email)
    sockets = [await hello(server, token), await hello(server, token)]
    other = await hello(server, other_token)
    assert all(s.welcome for s in (*sockets, other))
    assert await upload(server, token) == 200

    r = await logout(server, token)
    assert r.status_code == 204, r.text
    for socket in sockets:
        assert await closed_with(socket) == SESSION_ENDED
    assert await refused(server, token) == SESSION_ENDED
    assert await upload(server, token) == 401
    # Signing out twice is harmless; the agent's other sign-in goes on.
    assert (await logout(server, token)).status_code == 204
    assert await still_open(other)
    assert await upload(server, other_token) == 200
    assert (await hello(server, other_token)).welcome


async def test_api_logout_refuses_what_is_not_a_token(server: Server) -> None:
    shop = await seed(server.data, agents=1)
    token = await agent_token(server, next(iter(shop.agents)))
    assert (await logout(server, None)).status_code == 401
    # Forged: one whole character of the signature changed (the last one holds
    # padding bits too, which a base64 decoder may ignore: changing it alone can
    # leave the same signature, about once in 256 runs).
    forged = token[:-5] + ("B" if token[-5] == "A" else "A") + token[-4:]
    assert (await logout(server, forged)).status_code == 401
    assert (await logout(server, "visitor.s_x.v_y.sig")).status_code == 401
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{server.url}/api/logout", headers={"Authorization": f"Basic {token}"})
        assert r.status_code == 401
        assert (await http.get(f"{server.url}/api/logout")).status_code == 405
    # None of that signed the token out.
    assert (await hello(server, token)).welcome


async def test_api_logout_on_one_process_holds_on_the_other(
    tmp_path: Path, redis: RedisServer
) -> None:
    procs = [Server(tmp_path / f"p{i}", "--redis", redis.url) for i in range(2)]
    shop = await seed(procs[0].data, agents=1, redis_url=redis.url)
    (email,) = shop.agents
    try:
        a, b = (p.start() for p in procs)
        token = await agent_token(a, email)
        on_a, on_b = await hello(a, token), await hello(b, token)
        other = await hello(b, await agent_token(b, email))
        assert on_a.welcome and on_b.welcome and other.welcome
        assert (await logout(a, token)).status_code == 204
        assert await closed_with(on_a) == SESSION_ENDED
        assert await closed_with(on_b) == SESSION_ENDED
        assert await refused(b, token) == SESSION_ENDED
        assert await upload(b, token) == 401
        assert await still_open(other)
    finally:
        for p in procs:
            p.stop()


# -- the login throttle, shared by every process ----------------------------------


async def attempt(server: Server, email: str, password: str, address: str) -> int:
    """``POST /api/login`` as if from ``address`` (uvicorn trusts X-Forwarded-For
    from 127.0.0.1, as it would from a proxy there)."""
    async with httpx.AsyncClient() as http:
        r = await http.post(
            f"{server.url}/api/login",
            json={"email": email, "password": password},
            headers={"X-Forwarded-For": address},
        )
        return r.status_code


async def test_failed_logins_over_two_processes_are_throttled_as_one(
    tmp_path: Path, redis: RedisServer
) -> None:
    procs = [Server(tmp_path / f"p{i}", "--redis", redis.url) for i in range(2)]
    shop = await seed(procs[0].data, agents=2, redis_url=redis.url)
    email, other_email = shop.agents
    try:
        a, b = (p.start() for p in procs)
        # One e-mail, ten addresses, five failures on each process: the e-mail is blocked
        # everywhere (each process alone has seen five, under its limit of ten).
        for i in range(10):
            assert await attempt((a, b)[i % 2], email, "wrong", f"10.0.0.{i}") == 401
        for p in (a, b):
            assert await attempt(p, email, "wrong", "10.0.1.1") == 429
            assert await attempt(p, email, PASSWORD, "10.0.1.2") == 429  # even the right one
        # Another e-mail from a fresh address is not blocked.
        assert await attempt(b, other_email, PASSWORD, "10.0.2.1") == 200

        # One address, ten different e-mails over both processes: the address is blocked.
        for i in range(10):
            assert await attempt((b, a)[i % 2], f"nobody{i}@x.test", "wrong", "10.0.3.3") == 401
        for p in (a, b):
            assert await attempt(p, other_email, PASSWORD, "10.0.3.3") == 429
        assert await attempt(a, other_email, PASSWORD, "10.0.3.4") == 200

        # A success clears the e-mail's count on every process (not the addresses').
        for i in range(9):
            assert await attempt((a, b)[i % 2], other_email, "wrong", f"10.0.4.{i}") == 401
        assert await attempt(a, other_email, PASSWORD, "10.0.5.1") == 200
        for i in range(9):
            assert await attempt((b, a)[i % 2], other_email, "wrong", f"10.0.6.{i}") == 401
        assert await attempt(b, other_email, PASSWORD, "10.0.5.2") == 200
    finally:
        for p in procs:
            p.stop()


async def test_the_embedded_throttle_outlives_a_restart(own_server: Server) -> None:
    shop = await seed(own_server.data, agents=1)
    (email,) = shop.agents
    own_server.start()
    for i in range(10):
        assert await attempt(own_server, email, "wrong", f"10.1.0.{i}") == 401
    own_server.restart()
    assert await attempt(own_server, email, PASSWORD, "10.1.1.1") == 429


async def burst(
    servers: list[Server], email: str, n: int, address: str = "10.9.9.9"
) -> Counter[int]:
    """``n`` concurrent wrong-password ``POST /api/login`` for ``email`` from one
    ``address``, spread over ``servers`` in turn: how many of each status came back."""
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=60) as http:

        async def one(i: int) -> int:
            r = await http.post(
                f"{servers[i % len(servers)].url}/api/login",
                json={"email": email, "password": f"wrong {i}"},
                headers={"X-Forwarded-For": address},
            )
            return r.status_code

        return Counter(await asyncio.gather(*(one(i) for i in range(n))))


async def test_concurrent_guesses_get_ten_password_checks_embedded(own_server: Server) -> None:
    # Each attempt is counted in the Store before its password is checked, so of
    # 200 at once only the first ten reach the check (401); the rest wait (429).
    shop = await seed(own_server.data, agents=1)
    (email,) = shop.agents
    own_server.start()
    counts = await burst([own_server], email, 200)
    print(f"embedded: {dict(counts)}")
    assert counts == {401: 10, 429: 190}
    # Blocked for the right password too, from another address (the e-mail's count).
    assert await attempt(own_server, email, PASSWORD, "10.9.9.10") == 429


async def test_concurrent_guesses_over_two_redis_processes_get_ten_checks(
    tmp_path: Path, redis: RedisServer
) -> None:
    procs = [Server(tmp_path / f"p{i}", "--redis", redis.url) for i in range(2)]
    shop = await seed(procs[0].data, agents=1, redis_url=redis.url)
    (email,) = shop.agents
    try:
        a, b = (p.start() for p in procs)
        counts = await burst([a, b], email, 200)
        print(f"redis, two processes: {dict(counts)}")
        assert counts == {401: 10, 429: 190}
        for p in (a, b):
            assert await attempt(p, email, PASSWORD, "10.9.9.10") == 429
    finally:
        for p in procs:
            p.stop()


# -- the periodic re-check of open agent sockets ---------------------------------


async def test_recheck_closes_sockets_whose_end_was_never_announced(tmp_path: Path) -> None:
    server = Server(tmp_path / "server", "--session-check", "0.3")
    shop = await seed(server.data, agents=3)
    revoked_email, ended_email, disabled_email = shop.agents
    try:
        server.start()
        revoked = await agent_token(server, revoked_email)
        kept = await agent_token(server, revoked_email)
        sockets = {
            "revoked": await hello(server, revoked),
            "kept": await hello(server, kept),
            "ended": await Client.agent(server, ended_email),
            "disabled": await Client.agent(server, disabled_email),
        }
        assert all(s.welcome for s in sockets.values())
        await asyncio.sleep(1.0)  # a few checks pass: nothing has ended
        assert all(not s.closed.done() for s in sockets.values())

        # Straight into the store: no control event tells the server.
        async with opened(SQLiteStore(server.data / "chatserver.db")) as store:
            grant = grant_of(revoked)
            await store.revoke_session(grant.session, grant.expiry)
            await store.end_sessions(shop.agents[ended_email])
            agent = await store.get_agent(shop.agents[disabled_email])
            assert agent is not None
            await store.save_agent(replace(agent, disabled=True))
            await store.end_sessions(agent.id)
        assert await closed_with(sockets["revoked"]) == SESSION_ENDED
        assert await closed_with(sockets["ended"]) == SESSION_ENDED
        assert await closed_with(sockets["disabled"]) == ACCOUNT_DISABLED
        assert await still_open(sockets["kept"])
    finally:
        server.stop()


async def test_recheck_closes_sockets_of_agents_who_lost_chat_rights_unannounced(
    tmp_path: Path,
) -> None:
    server = Server(tmp_path / "server", "--session-check", "0.3")
    shop = await seed(server.data, agents=4, roles={1: Role.ADMIN})
    agent_email, admin_email, disabled_email, kept_email = shop.agents
    try:
        server.start()
        sockets = {email: await Client.agent(server, email) for email in shop.agents}
        assert all(s.welcome for s in sockets.values())
        # Straight into the store, as the console saves them, but no control
        # event tells the server (a missed ``agent`` event).
        async with opened(SQLiteStore(server.data / "chatserver.db")) as store:
            for email, change in (
                (agent_email, {"role": Role.ANALYST}),
                (admin_email, {"role": Role.ANALYST}),
                (disabled_email, {"disabled": True}),
                (kept_email, {"role": Role.ADMIN, "capacity": 9}),  # still takes chats
            ):
                agent = await store.get_agent(shop.agents[email])
                assert agent is not None
                await store.save_agent(replace(agent, **change))  # type: ignore[arg-type]
        assert await closed_with(sockets[agent_email]) == UNAUTHORIZED
        assert await closed_with(sockets[admin_email]) == UNAUTHORIZED
        assert await closed_with(sockets[disabled_email]) == ACCOUNT_DISABLED
        assert await still_open(sockets[kept_email])
    finally:
        server.stop()


async def test_recheck_spares_the_browser_that_reset_its_own_password(tmp_path: Path) -> None:
    server = Server(tmp_path / "server", "--session-check", "0.3")
    shop, (admin_email, _, _) = await shop_with_admin(server)
    try:
        server.start()
        async with console(server, admin_email) as admin:
            socket = await hello(server, await console_token(admin))
            assert socket.welcome
            r = await admin.post(
                f"/console/admin/agents/{shop.agents[admin_email]}/password",
                {"password": "my own new one"},
            )
            assert r.status_code == 303
            await asyncio.sleep(1.5)  # several re-checks
            assert await still_open(socket)
            assert (await admin.get("/console/admin")).status_code == 200
    finally:
        server.stop()


async def test_recheck_on_every_redis_process(tmp_path: Path, redis: RedisServer) -> None:
    procs = [
        Server(tmp_path / f"p{i}", "--redis", redis.url, "--session-check", "0.3") for i in range(2)
    ]
    shop = await seed(procs[0].data, agents=2, roles={1: Role.ADMIN}, redis_url=redis.url)
    email, admin_email = shop.agents
    try:
        a, b = (p.start() for p in procs)
        token = await agent_token(a, email)
        on_a, on_b = await hello(a, token), await hello(b, token)
        admin_socket = await Client.agent(b, admin_email)
        assert on_a.welcome and on_b.welcome
        async with opened(RedisStore(redis.url)) as store:
            grant = grant_of(token)
            await store.revoke_session(grant.session, grant.expiry)
        assert await closed_with(on_a) == SESSION_ENDED
        assert await closed_with(on_b) == SESSION_ENDED
        assert await refused(a, token) == SESSION_ENDED
        assert await still_open(admin_socket)
    finally:
        for p in procs:
            p.stop()


async def test_recheck_closes_an_agent_made_analyst_on_every_redis_process(
    tmp_path: Path, redis: RedisServer
) -> None:
    procs = [
        Server(tmp_path / f"p{i}", "--redis", redis.url, "--session-check", "0.3") for i in range(2)
    ]
    shop = await seed(procs[0].data, agents=2, redis_url=redis.url)
    email, other_email = shop.agents
    try:
        a, b = (p.start() for p in procs)
        token = await agent_token(a, email)
        on_a, on_b = await hello(a, token), await hello(b, token)
        other = await Client.agent(b, other_email)
        assert on_a.welcome and on_b.welcome and other.welcome
        async with opened(RedisStore(redis.url)) as store:  # no control event
            agent = await store.get_agent(shop.agents[email])
            assert agent is not None
            await store.save_agent(replace(agent, role=Role.ANALYST))
        assert await closed_with(on_a) == UNAUTHORIZED
        assert await closed_with(on_b) == UNAUTHORIZED
        assert await refused(a, token) == SESSION_ENDED  # that sign-in is over
        assert await still_open(other)
    finally:
        for p in procs:
            p.stop()
