"""The workspace page and its JSON endpoints through a real server (no browser)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from chatserver.store_sqlite import SQLiteStore
from chatserver.types import Role

from ..conftest import Client, Server, Shop, console_login, csrf_of, seed

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_clients")]


@pytest.fixture
async def shop(server: Server) -> Shop:
    return await seed(server.data, agents=4, roles={1: Role.ADMIN, 2: Role.ANALYST})


@pytest.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url) as client:
        yield client


def email(shop: Shop, i: int) -> str:
    return list(shop.agents)[i]


async def test_old_address_leads_to_the_workspace(http: httpx.AsyncClient) -> None:
    r = await http.get("/console")
    assert r.status_code == 307 and r.headers["location"] == "/console/"
    assert (await http.get("/static/console.js")).status_code == 404  # the old page is gone


async def test_workspace_carries_a_working_token_and_no_inline_script(
    server: Server, http: httpx.AsyncClient, shop: Shop
) -> None:
    await console_login(http, email(shop, 0))
    page = await http.get("/console/")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    scripts = re.findall(r"<script([^>]*)>", page.text)
    assert scripts == [  # every one a file (the theme, confirmations, the workspace) or data
        ' src="/console/static/theme.js"',
        ' type="application/json" id="console-i18n"',  # the JS's messages (agent_console/i18n.py)
        ' type="module" src="/console/static/confirm.js"',
        ' type="module" src="/console/static/chat/main.js"',
    ]
    token = re.search(r'data-token="([^"]+)"', page.text)
    assert token is not None
    agent = await Client.connect(server)
    await agent.send({"t": "hello", "v": 1, "kind": "agent", "token": token.group(1)})
    welcome = await agent.expect("welcome")
    assert welcome["agent"]["id"] == shop.agents[email(shop, 0)]
    assert (await http.get("/console/static/chat/main.js")).status_code == 200


async def test_token_endpoint_needs_the_csrf_token(
    server: Server, http: httpx.AsyncClient, shop: Shop
) -> None:
    r = await http.post("/console/api/token")
    assert r.status_code == 401 and r.json() == {"error": "sign in first"}
    await console_login(http, email(shop, 0))
    csrf = csrf_of((await http.get("/console/")).text)
    origin = {"Origin": server.url}
    assert (await http.post("/console/api/token", headers=origin)).status_code == 403
    r = await http.post("/console/api/token", headers={**origin, "X-CSRF-Token": csrf})
    assert r.status_code == 200
    agent = await Client.connect(server)
    await agent.send({"t": "hello", "v": 1, "kind": "agent", "token": r.json()["token"]})
    assert (await agent.expect("welcome"))["agent"]["name"] == "Agent 0"
    assert (await http.get("/console/api/token")).status_code == 405


async def test_canned_responses_of_the_own_site_only(
    server: Server, http: httpx.AsyncClient, shop: Shop
) -> None:
    other = await seed(server.data, agents=1)
    store = SQLiteStore(server.data / "chatserver.db")
    await store.start()
    try:
        await store.put_doc(shop.site.id, "canned", "c2", {"shortcut": "thanks", "text": "Thanks!"})
        await store.put_doc(shop.site.id, "canned", "c1", {"shortcut": "Hi", "text": "Hello <b>"})
        await store.put_doc(shop.site.id, "canned", "bad", {"shortcut": "", "text": "no key"})
        await store.put_doc(shop.site.id, "canned", "bad2", {"text": 5})
        await store.put_doc(other.site.id, "canned", "x", {"shortcut": "theirs", "text": "no"})
    finally:
        await store.close()
    assert (await http.get("/console/api/canned")).status_code == 401
    await console_login(http, email(shop, 0))
    r = await http.get("/console/api/canned")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json() == [
        {"shortcut": "Hi", "text": "Hello <b>"},
        {"shortcut": "thanks", "text": "Thanks!"},
    ]


async def test_agents_list_with_status_from_presence(
    server: Server, http: httpx.AsyncClient, shop: Shop
) -> None:
    await seed(server.data, agents=1)  # another site's agent is never listed
    store = SQLiteStore(server.data / "chatserver.db")
    await store.start()
    try:
        gone = await store.get_agent(shop.agents[email(shop, 3)])
        assert gone is not None
        await store.save_agent(replace(gone, disabled=True))
    finally:
        await store.close()
    admin = await Client.agent(server, email(shop, 1), status="away")
    await console_login(http, email(shop, 0))
    listed = (await http.get("/console/api/agents")).json()
    assert [(a["name"], a["role"], a["status"]) for a in listed] == [
        ("Agent 0", "agent", "offline"),  # signed in to the page, no socket yet
        ("Agent 1", "admin", "away"),
    ]
    await admin.request({"t": "status", "status": "online"})
    listed = (await http.get("/console/api/agents")).json()
    assert listed[1]["status"] == "online"
    await admin.close()
    for _ in range(50):
        listed = (await http.get("/console/api/agents")).json()
        if listed[1]["status"] == "offline":
            break
        await admin.quiet(0.1)
    assert listed[1]["status"] == "offline"


async def test_analysts_get_no_workspace(http: httpx.AsyncClient, shop: Shop) -> None:
    await console_login(http, email(shop, 2))
    for path in ("/console/", "/console/api/canned", "/console/api/agents"):
        assert (await http.get(path)).status_code == 403, path
