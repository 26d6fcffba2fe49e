"""The triggers pages of the console, through a real server (HTTP and WebSocket clients)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from agent_console.triggers import _shown, _value
from chatserver.types import Role

from ..conftest import Client, Server, Shop, console_login, csrf_of, seed

pytestmark = pytest.mark.anyio


@pytest.fixture
async def shop(server: Server) -> Shop:
    return await seed(server.data, agents=2, roles={0: Role.ADMIN}, departments=("sales",))


@pytest.fixture
async def admin(server: Server, shop: Shop) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await console_login(http, next(iter(shop.agents)))
        assert r.status_code == 303
        yield http


def origin(http: httpx.AsyncClient) -> dict[str, str]:
    return {"Origin": str(http.base_url).rstrip("/")}


async def post(
    http: httpx.AsyncClient, path: str, data: dict[str, Any], **kw: Any
) -> httpx.Response:
    page = await http.get("/console/triggers")
    return await http.post(
        path, data={**data, "csrf": csrf_of(page.text)}, headers=origin(http), **kw
    )


CHECKOUT_FORM = {
    "name": "Checkout help",
    "enabled": "on",
    "match": "all",
    "c0_kind": "url",
    "c0_op": "contains",
    "c0_value": "/checkout",
    "c1_kind": "time_on_page",
    "c1_op": ">=",
    "c1_value": "1",
    "c2_kind": "attribute",
    "c2_path": "cart.total",
    "c2_op": ">=",
    "c2_value": "50",
    "a0_type": "message",
    "a0_body": "Free shipping over 50 today!",
    "a0_as": "shop",
    "a1_type": "open",
    "frequency": "visit",
    "gap": "600",
}


def rule_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-rule="([^"]+)"', html)


async def test_admins_only(server: Server, shop: Shop, admin: httpx.AsyncClient) -> None:
    page = await admin.get("/console/triggers")
    assert page.status_code == 200
    assert 'href="/console/triggers"' in page.text  # in the navigation
    assert "script-src 'self'" in page.headers["content-security-policy"]
    async with httpx.AsyncClient(base_url=server.url) as agent:
        await console_login(agent, list(shop.agents)[1])
        assert (await agent.get("/console/triggers")).status_code == 403
        home = await agent.get("/console/")
        assert 'href="/console/triggers"' not in home.text
    # No CSRF token, no change.
    r = await admin.post("/console/triggers/new", data=CHECKOUT_FORM, headers=origin(admin))
    assert r.status_code == 403
    assert rule_ids((await admin.get("/console/triggers")).text) == []


async def test_create_edit_toggle_reorder_delete(admin: httpx.AsyncClient) -> None:
    r = await post(admin, "/console/triggers/new", CHECKOUT_FORM)
    assert r.status_code == 303, r.text
    second = {**CHECKOUT_FORM, "name": "Second <b>one</b>"}
    assert (await post(admin, "/console/triggers/new", second)).status_code == 303
    listing = (await admin.get("/console/triggers")).text
    first_id, second_id = rule_ids(listing)
    assert "Second &lt;b&gt;one&lt;/b&gt;" in listing  # escaped
    assert "Page URL contains /checkout and" in listing
    assert "cart.total at least 50" in listing

    form = (await admin.get(f"/console/triggers/{first_id}")).text
    assert 'value="/checkout"' in form and 'value="cart.total"' in form
    edited = {**CHECKOUT_FORM, "name": "Checkout help v2", "c1_value": "5"}
    r = await post(admin, f"/console/triggers/{first_id}", edited)
    assert r.status_code == 303
    assert "Checkout help v2" in (await admin.get("/console/triggers")).text

    r = await post(admin, f"/console/triggers/{first_id}/toggle", {})
    assert r.status_code == 303
    listing = (await admin.get("/console/triggers")).text
    assert 'aria-pressed="false">Disabled' in listing

    r = await post(admin, f"/console/triggers/{second_id}/up", {})
    assert r.status_code == 303
    assert rule_ids((await admin.get("/console/triggers")).text) == [second_id, first_id]
    await post(admin, f"/console/triggers/{second_id}/down", {})
    assert rule_ids((await admin.get("/console/triggers")).text) == [first_id, second_id]
    assert (await post(admin, f"/console/triggers/{second_id}/sideways", {})).status_code == 404

    assert (await post(admin, f"/console/triggers/{first_id}/delete", {})).status_code == 303
    assert rule_ids((await admin.get("/console/triggers")).text) == [second_id]
    assert (await admin.get(f"/console/triggers/{first_id}")).status_code == 404


async def test_bad_rules_come_back_with_field_errors(admin: httpx.AsyncClient) -> None:
    bad = {
        **CHECKOUT_FORM,
        "name": "",
        "c0_op": "regex",
        "c0_value": "(a+)+$",
        "c2_value": "fifty",
        "a0_as": "a_nobody",
    }
    r = await post(admin, "/console/triggers/new", bad)
    assert r.status_code == 400
    html = r.text
    assert "The trigger was not saved" in html
    assert 'id="err-name"' in html
    assert 'id="err-conditions-0-value"' in html and "quantifier" in html
    assert 'id="err-conditions-2-value"' in html and "must be a number" in html
    assert 'id="err-actions-0-as"' in html
    assert 'value="fifty"' in html  # what the admin typed is kept
    assert rule_ids((await admin.get("/console/triggers")).text) == []
    # "More rows" re-renders the form without saving.
    r = await post(admin, "/console/triggers/new", {**CHECKOUT_FORM, "more": "1"})
    assert r.status_code == 200 and 'name="c4_kind"' in r.text
    assert rule_ids((await admin.get("/console/triggers")).text) == []


async def test_export_and_import(admin: httpx.AsyncClient) -> None:
    await post(admin, "/console/triggers/new", CHECKOUT_FORM)
    await post(admin, "/console/triggers/new", {**CHECKOUT_FORM, "name": "Two", "a1_type": ""})
    r = await admin.get("/console/triggers/export")
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    exported = r.json()
    assert exported["format"] == "chatserver.triggers" and exported["version"] == 1
    assert [t["name"] for t in exported["triggers"]] == ["Checkout help", "Two"]
    first = exported["triggers"][0]
    assert first["conditions"][2] == {
        "kind": "attribute",
        "op": ">=",
        "path": "cart.total",
        "value": 50,
    }
    assert first["actions"] == [
        {"type": "message", "body": "Free shipping over 50 today!", "as": "shop"},
        {"type": "open"},
    ]

    # A file with one bad rule is refused whole, every problem listed.
    broken = json.loads(json.dumps(exported))
    broken["triggers"][1]["conditions"][0].update(op="regex", value="(x*)*")
    broken["triggers"].append({"name": "Three", "conditions": [], "actions": []})
    files = {"file": ("t.json", json.dumps(broken).encode(), "application/json")}
    r = await post(admin, "/console/triggers/import", {"mode": "add"}, files=files)
    assert r.status_code == 400
    assert "Nothing was imported." in r.text
    assert "rule 2 (&#39;Two&#39;): conditions.0.value" in r.text
    assert "rule 3 (&#39;Three&#39;): conditions" in r.text
    assert len(rule_ids(r.text)) == 2
    files = {"file": ("t.json", b"{not json", "application/json")}
    r = await post(admin, "/console/triggers/import", {"mode": "add"}, files=files)
    assert r.status_code == 400 and "not a JSON file" in r.text

    # Adding keeps what is there; replacing swaps everything.
    files = {"file": ("t.json", json.dumps(exported).encode(), "application/json")}
    r = await post(admin, "/console/triggers/import", {"mode": "add"}, files=files)
    assert r.status_code == 200 and "Imported 2 rules." in r.text
    assert len(rule_ids(r.text)) == 4
    only = {**exported, "triggers": exported["triggers"][1:]}
    files = {"file": ("t.json", json.dumps(only).encode(), "application/json")}
    r = await post(admin, "/console/triggers/import", {"mode": "replace"}, files=files)
    assert len(rule_ids(r.text)) == 1
    again = (await admin.get("/console/triggers/export")).json()
    assert [t["name"] for t in again["triggers"]] == ["Two"]


async def test_business_hours_form(admin: httpx.AsyncClient) -> None:
    page = await admin.get("/console/triggers/hours")
    assert page.status_code == 200 and "open all the time" in page.text
    days = {d: "09:00-17:00" for d in ("monday", "tuesday", "wednesday", "thursday", "friday")}
    r = await post(
        admin, "/console/triggers/hours", {"timezone": "Mars/Base", **days, "sunday": "9-5"}
    )
    assert r.status_code == 400
    assert "unknown time zone" in r.text and "is not like 09:00-17:30" in r.text
    r = await post(admin, "/console/triggers/hours", {"timezone": "Europe/Madrid", **days})
    assert r.status_code == 200 and "Saved." in r.text
    assert 'value="09:00-17:00"' in r.text
    listing = (await admin.get("/console/triggers")).text
    assert "Time zone Europe/Madrid" in listing
    r = await post(admin, "/console/triggers/hours", {"clear": "1"})
    assert "open all the time" in r.text


async def test_a_rule_from_the_form_fires_and_counts(
    server: Server, shop: Shop, admin: httpx.AsyncClient, close_clients: None
) -> None:
    assert (await post(admin, "/console/triggers/new", CHECKOUT_FORM)).status_code == 303
    (rule_id,) = rule_ids((await admin.get("/console/triggers")).text)
    visitor = await Client.visitor(
        server, shop.key, page={"url": "https://shop.example/checkout", "title": "Cart"}
    )
    assert (await visitor.request({"t": "page", "url": "https://shop.example/checkout"}))[
        "t"
    ] == "ok"
    reply = await visitor.request({"t": "attrs", "set": {"cart": {"items": 2, "total": 60}}})
    assert reply["t"] == "ok"
    follow = await visitor.expect("conv", lambda f: bool(f.get("follow")), timeout=10)
    conv = follow["conv"]["id"]
    assert "tags" not in follow["conv"]  # tags (here "proactive") are for agents only
    # The greeting: live, or from the history the follow-start frame calls for.
    # The conversation is announced before the greeting is appended: ask until it is there.
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        history = await visitor.request({"t": "history", "conv": conv, "since": 0})
        texts = [m for m in history["messages"] if m["kind"] == "text"]
        if texts or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.1)
    (greeting,) = texts
    assert greeting["body"] == "Free shipping over 50 today!"
    assert greeting["data"]["auto"]["trigger"] == rule_id
    await visitor.expect("open")
    listing = (await admin.get("/console/triggers")).text
    row = listing.split(f'data-rule="{rule_id}"', 1)[1]
    assert re.search(r'trg-fired">1<', row) and re.search(r'trg-chats">0<', row)

    # The visitor answers: a chat followed, and the conversation is routed now.
    agent = await Client.agent(server, list(shop.agents)[1])
    await visitor.request({"t": "send", "cid": "r1", "body": "Yes please"})
    await agent.expect("conv", lambda f: f["conv"]["id"] == conv and f["conv"]["agents"] != [])
    for _ in range(50):
        listing = (await admin.get("/console/triggers")).text
        if 'trg-chats">1<' in listing:
            break
        await asyncio.sleep(0.1)
    row = listing.split(f'data-rule="{rule_id}"', 1)[1]
    assert 'trg-fired">1<' in row and 'trg-chats">1<' in row


@pytest.mark.parametrize(
    ("kind", "op", "value"),
    [
        ("attribute", "equals", "42"),
        ("attribute", "equals", 42),
        ("attribute", "equals", 4.5),
        ("attribute", "equals", True),
        ("attribute", "not_equals", "true"),
        ("attribute", "equals", "pro"),
        ("attribute", ">=", 50),
        ("has_chat", "is", False),
        ("business_hours", "is", True),
        ("time_on_page", ">=", 2.5),
        ("url", "contains", "/checkout"),
    ],
)
def test_form_values_read_back_as_stored(kind: str, op: str, value: Any) -> None:
    """What the form shows of a stored value is read back as the same value and type."""
    back = _value(kind, op, _shown(value, kind, op))
    assert back == value and type(back) is type(value)


async def test_visitor_browser_and_language_reach_the_agents(
    server: Server, shop: Shop, close_clients: None
) -> None:
    """The WebSocket request's User-Agent and Accept-Language, read at hello."""
    ua = (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
    )
    visitor = await Client.connect(
        server, user_agent_header=ua, additional_headers={"Accept-Language": "ca-ES,ca;q=0.9"}
    )
    await visitor.send({"t": "hello", "v": 1, "kind": "visitor", "site": shop.key})
    vid = (await visitor.expect("welcome"))["visitor"]
    script = await Client.visitor(server, shop.key)  # websockets' own User-Agent
    agent = await Client.agent(server, list(shop.agents)[1])
    listed = {v["id"]: v for v in (await agent.request({"t": "visitors"}))["visitors"]}
    phone = listed[vid]
    assert (phone["browser"], phone["os"], phone["device"], phone["lang"]) == (
        "Safari",
        "iOS",
        "mobile",
        "ca-es",
    )
    assert listed[script.welcome["visitor"]]["device"] == "bot"
