"""Console access through a real server: login, cookie, CSRF, roles, throttling."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest

from chatserver.types import Role

from ..conftest import PASSWORD, Server, Shop, console_login, csrf_of, seed

pytestmark = pytest.mark.anyio


@pytest.fixture
async def shop(server: Server) -> Shop:
    return await seed(server.data, agents=3, roles={1: Role.ADMIN, 2: Role.ANALYST})


@pytest.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url) as client:
        yield client


def _email(shop: Shop, i: int) -> str:
    return list(shop.agents)[i]


async def test_pages_need_a_session(http: httpx.AsyncClient) -> None:
    r = await http.get("/console/")
    assert r.status_code == 303
    assert r.headers["location"] == "/console/login?next=/console/"
    r = await http.get("/console/", headers={"Accept": "application/json"})
    assert r.status_code == 401


async def test_login_sets_a_safe_cookie_and_logout_clears_it(
    http: httpx.AsyncClient, shop: Shop
) -> None:
    r = await console_login(http, _email(shop, 0))
    assert r.status_code == 303 and r.headers["location"] == "/console/"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("chat_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http on loopback
    page = await http.get("/console/")
    assert page.status_code == 200
    assert "Agent 0" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"

    # Logout without the CSRF token is refused and the session lives on.
    r = await http.post("/console/logout", headers={"Origin": str(http.base_url)})
    assert r.status_code == 403
    assert (await http.get("/console/")).status_code == 200
    r = await http.post(
        "/console/logout", data={"csrf": csrf_of(page.text)}, headers={"Origin": str(http.base_url)}
    )
    assert r.status_code == 303
    assert (await http.get("/console/")).status_code == 303


async def test_wrong_password_and_unknown_email_look_the_same(
    http: httpx.AsyncClient, shop: Shop
) -> None:
    wrong = await console_login(http, _email(shop, 0), "not the password")
    unknown = await console_login(http, "nobody@test.shop")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong email or password." in wrong.text and "Wrong email or password." in unknown.text
    assert (await http.get("/console/")).status_code == 303


async def test_login_form_needs_its_token(http: httpx.AsyncClient, shop: Shop) -> None:
    r = await http.post(
        "/console/login", data={"email": _email(shop, 0), "password": PASSWORD, "csrf": "x.y"}
    )
    assert r.status_code == 403
    assert "chat_session" not in r.headers.get("set-cookie", "")


async def test_csrf_token_from_another_session_is_refused(server: Server, shop: Shop) -> None:
    async with (
        httpx.AsyncClient(base_url=server.url) as a,
        httpx.AsyncClient(base_url=server.url) as b,
    ):
        await console_login(a, _email(shop, 0))
        await console_login(b, _email(shop, 0))
        token_b = csrf_of((await b.get("/console/")).text)
        r = await a.post("/console/logout", data={"csrf": token_b}, headers={"Origin": server.url})
        assert r.status_code == 403
        token_a = csrf_of((await a.get("/console/")).text)
        r = await a.post(
            "/console/logout", data={"csrf": token_a}, headers={"Origin": "https://evil.example"}
        )
        assert r.status_code == 403


async def test_roles(http: httpx.AsyncClient, shop: Shop) -> None:
    r = await console_login(http, _email(shop, 2))  # the analyst
    assert r.headers["location"] == "/console/sessions"
    assert (await http.get("/console/")).status_code == 403


async def test_disabled_agent_loses_the_session(server: Server, http: httpx.AsyncClient) -> None:
    shop = await seed(server.data, agents=1)
    await console_login(http, _email(shop, 0))
    assert (await http.get("/console/")).status_code == 200

    from dataclasses import replace

    from chatserver.store_sqlite import SQLiteStore

    store = SQLiteStore(server.data / "chatserver.db")
    await store.start()
    try:
        agent = await store.agent_by_email(_email(shop, 0))
        assert agent is not None
        await store.save_agent(replace(agent, disabled=True))
    finally:
        await store.close()
    assert (await http.get("/console/")).status_code == 303


async def test_login_is_throttled(own_server: Server) -> None:
    # A server of its own: the throttle counts per client address too.
    shop = await seed(own_server.data, agents=1)
    own_server.start()
    email = _email(shop, 0)
    async with httpx.AsyncClient(base_url=own_server.url) as http:
        statuses = [(await console_login(http, email, "wrong")).status_code for _ in range(11)]
        assert statuses[:10] == [401] * 10 and statuses[10] == 429
        r = await console_login(http, email)  # even the right password waits now
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0


async def test_concurrent_form_guesses_get_ten_password_checks(own_server: Server) -> None:
    # The form reserves its attempt in the Store before the password check, like
    # POST /api/login: of 60 submitted at once, ten are checked (401), the rest wait.
    shop = await seed(own_server.data, agents=1)
    own_server.start()
    email = _email(shop, 0)
    base = own_server.url
    browsers = [httpx.AsyncClient(base_url=base, timeout=60) for _ in range(60)]
    try:
        pages = await asyncio.gather(*(b.get("/console/login") for b in browsers))
        answers = await asyncio.gather(
            *(
                b.post(
                    "/console/login",
                    data={"email": email, "password": f"wrong {i}", "csrf": csrf_of(page.text)},
                    headers={"Origin": base},
                )
                for i, (b, page) in enumerate(zip(browsers, pages, strict=True))
            )
        )
    finally:
        for b in browsers:
            await b.aclose()
    counts = Counter(r.status_code for r in answers)
    print(f"console form: {dict(counts)}")
    assert counts == {401: 10, 429: 50}


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil"])
async def test_next_never_leaves_the_server(
    http: httpx.AsyncClient, shop: Shop, target: str
) -> None:
    page = await http.get("/console/login", params={"next": target})
    r = await http.post(
        "/console/login",
        data={
            "email": _email(shop, 0),
            "password": PASSWORD,
            "csrf": csrf_of(page.text),
            "next": target,
        },
        headers={"Origin": str(http.base_url).rstrip("/")},
    )
    assert r.status_code == 303 and r.headers["location"] == "/console/"


async def test_escaped_output(http: httpx.AsyncClient, server: Server) -> None:
    r = await http.get("/console/login", params={"next": "/console/?q=<script>"})
    assert "<script>" not in r.text.split("</head>", 1)[1]
