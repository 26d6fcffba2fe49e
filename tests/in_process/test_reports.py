"""Reports through the console's HTTP API on an in-process node (SQLite).

A live chat is counted (its facts row written when it closes, rewritten when
rated; an open chat counted live); the generated week of
``tests/reports_fixture.py`` gives the figures worked out by hand in
tests/contracts/test_store_reports.py through the API and as CSV; roles,
filters, bad input, escaping, and the start-up sweep.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from chatserver.proactive.hours import HOURS_DOC
from chatserver.types import ConvState, Role

from ..conftest import console_login
from ..node import Node
from ..reports_fixture import HOURS, SINCE, UNTIL, facts_rows

pytestmark = pytest.mark.anyio

WEEK = {"since": SINCE, "until": UNTIL}


@contextlib.asynccontextmanager
async def _signed_in(node: Node, email: str) -> AsyncIterator[httpx.AsyncClient]:
    async with node.http() as http:
        r = await console_login(http, email)
        assert r.status_code == 303, r.text
        yield http


async def test_a_live_chat_is_counted(node: Node) -> None:
    shop = await node.seed(agents=1, roles={0: Role.ADMIN})
    (email,) = shop.agents
    agent = await node.agent(email)
    visitor = await node.visitor(shop.key)
    ack = await visitor.request({"t": "send", "cid": "m1", "body": "hola, ¿envío a Madrid?"})
    conv = ack["conv"]
    await agent.expect("conv", lambda f: f["conv"]["id"] == conv and f["conv"]["state"] == "active")
    await agent.request({"t": "send", "conv": conv, "cid": "a1", "body": "Sí, en 2 días."})
    await agent.request({"t": "close", "conv": conv})
    assert (await visitor.request({"t": "rate", "conv": conv, "rating": "great"}))["t"] == "ok"
    other = await node.visitor(shop.key)  # a second chat stays open (queued: agent at 1)
    await other.request({"t": "send", "cid": "m1", "body": "hello?"})
    await node.parts.convs.events.idle()
    row = await node.store.get_facts(conv)
    assert row is not None and row.served and row.rating == "great"
    assert row.msgs_visitor == 1 and row.msgs_agent == 1 and row.first_response is not None
    async with _signed_in(node, email) as http:
        r = await http.get("/console/api/reports")
        assert r.status_code == 200
        o = r.json()["overview"]
        assert (o["started"], o["open"], o["served"], o["rated"]) == (2, 1, 1, 1)
        assert o["rating_great"] == 1.0 and 0 <= o["first_response_median"] < 10


async def test_tags_set_after_the_close_reach_the_reports(node: Node) -> None:
    """Agents often tag a chat once it is over: the facts row follows the tags."""
    shop = await node.seed(agents=1, roles={0: Role.ADMIN})
    (email,) = shop.agents
    agent = await node.agent(email)
    visitor = await node.visitor(shop.key)
    conv = (await visitor.request({"t": "send", "cid": "m1", "body": "¿Devolución?"}))["conv"]
    await agent.expect("conv", lambda f: f["conv"]["id"] == conv and f["conv"]["state"] == "active")
    await agent.request({"t": "close", "conv": conv})
    ok = await agent.request({"t": "tag", "conv": conv, "add": ["refund"]})
    assert ok["t"] == "ok", ok
    await node.parts.convs.events.idle()
    row = await node.store.get_facts(conv)
    assert row is not None and row.tags == ("refund",)
    async with _signed_in(node, email) as http:
        r = await http.get("/console/api/reports", params={"tag": "refund"})
        assert r.json()["overview"]["started"] == 1
        await agent.request({"t": "tag", "conv": conv, "remove": ["refund"]})
        await node.parts.convs.events.idle()
        r = await http.get("/console/api/reports", params={"tag": "refund"})
        assert r.json()["overview"]["started"] == 0


async def test_known_week_through_the_api_and_csv(node: Node) -> None:
    shop = await node.seed(agents=3, roles={0: Role.ADMIN, 1: Role.AGENT, 2: Role.ANALYST})
    admin, agent, analyst = shop.agents
    a1, a2 = shop.agents[admin], shop.agents[agent]
    site = shop.site.id
    await node.store.put_doc(site, *HOURS_DOC, HOURS.to_json())
    rows = facts_rows(site, a1, a2)
    rows[0] = replace(rows[0], comment='=HYPERLINK("http://evil")')
    await node.store.save_facts(rows)
    async with _signed_in(node, admin) as http:
        doc = (await http.get("/console/api/reports", params=WEEK)).json()
        assert doc["period"] == {"since": SINCE, "until": UNTIL, "timezone": "Europe/Madrid"}
        o = doc["overview"]
        assert (o["started"], o["served"], o["missed"], o["offline"]) == (6, 3, 2, 1)
        assert o["first_response_median"] == 60 and o["handling_median"] == 375
        heat = {row[0]: row[1:] for row in doc["tables"]["heatmap"]["rows"]}
        assert heat["Mon"][10] == 2 and heat["Sat"][0] == 1
        one = await http.get("/console/api/reports/agents.json", params=WEEK)
        names = {row[1]: row[2] for row in one.json()["rows"]}
        assert names == {"Agent 0": 4, "Agent 1": 1}
        got = await http.get("/console/api/reports/comments.csv", params=WEEK)
        assert got.headers["content-type"].startswith("text/csv")
        assert "attachment" in got.headers["content-disposition"]
        table = list(csv.reader(io.StringIO(got.text)))
        assert table[0] == ["day", "conversation", "rating", "comment", "agents"]
        # a formula is quoted so a spreadsheet shows it as text
        assert table[2][3] == '\'=HYPERLINK("http://evil")' and table[1][3] == "Too slow"
        for name in ("overview", "trend", "daily", "departments", "triggers", "heatmap"):
            r = await http.get(f"/console/api/reports/{name}.csv", params=WEEK)
            assert r.status_code == 200 and r.text.count("\n") >= 2, name
        assert (await http.get("/console/api/reports/nope.csv")).status_code == 404
        bad = await http.get("/console/api/reports", params={"since": "yesterday"})
        assert bad.status_code == 400 and "since" in bad.json()["error"]
        wide = await http.get("/console/api/reports", params={"since": "2020-01-01"})
        assert wide.status_code == 400 and "366" in wide.json()["error"]
        page = await http.get("/console/reports", params={**WEEK, "tag": "<script>x"})
        assert page.status_code == 200 and "<svg" in page.text and "<script>x" not in page.text
        assert "&lt;script&gt;x" in page.text
        page = await http.get("/console/reports", params=WEEK)
        assert 'data-metric="started"' in page.text and "Too slow" in page.text
    async with _signed_in(node, agent) as http:  # an agent: its own chats only
        o = (await http.get("/console/api/reports", params={**WEEK, "agent": a1})).json()
        assert o["filters"] == {"agent": a2} and o["overview"]["started"] == 1
        page = await http.get("/console/reports", params={**WEEK, "agent": a1})
        assert page.status_code == 200 and "Reports: your conversations" in page.text
        assert 'id="h-departments"' not in page.text and 'name="agent"' not in page.text
        assert "Very helpful" not in page.text  # c1 is a1's, not this agent's
    async with _signed_in(node, analyst) as http:
        r = await http.get("/console/api/reports", params={**WEEK, "department": "sales"})
        assert r.json()["overview"]["started"] == 2
    async with node.http() as anonymous:
        assert (await anonymous.get("/console/api/reports")).status_code == 401


async def test_the_sweep_writes_rows_a_crash_missed(node: Node) -> None:
    shop = await node.seed(agents=1)
    site = shop.site.id
    visitor = await node.store.create_visitor(site)
    conv, _ = await node.store.open_conversation(site, visitor.id)
    # closed in the store with no event (as if the process died before its listener ran)
    await node.store.update_conversation(conv.id, state=ConvState.CLOSED)
    assert await node.store.get_facts(conv.id) is None
    await node.parts.reports.sweep()
    row = await node.store.get_facts(conv.id)
    assert row is not None and row.missed and row.closed is not None
