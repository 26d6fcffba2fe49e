"""Erase a visitor from the console and from the command line (docs/privacy.md,
"Answering an erasure request"), on a real server process."""

from __future__ import annotations

import asyncio
import re

import pytest

from chatserver.audit import open_audit
from chatserver.audit.log import AuditQuery

from ..conftest import Client, Server
from .test_cli import run
from .test_console_admin import console, flash, shop_with_admin, store_of

pytestmark = pytest.mark.anyio


async def test_an_admin_erases_a_visitor_after_confirming(server: Server) -> None:
    shop, (admin_email, *_) = await shop_with_admin(server)
    other, _ = await shop_with_admin(server)
    visitor = await Client.visitor(server, shop.key)
    await visitor.send({"t": "identify", "name": "Ann <b>", "email": "ann@example.com"})
    ack = await visitor.request({"t": "send", "cid": "m1", "body": "Where is my parcel?"})
    conv, vid = ack["conv"], visitor.welcome["visitor"]
    stranger = await Client.visitor(server, other.key)
    await stranger.send({"t": "identify", "email": "ann@example.com"})  # the same address
    await stranger.request({"t": "send", "cid": "m1", "body": "Another shop's chat"})
    async with console(server, admin_email) as admin:
        assert (await admin.get("/console/admin/privacy/erase")).status_code == 200
        listed = await admin.post("/console/admin/privacy/erase", {"email": "ANN@example.com"})
        assert listed.status_code == 200 and vid in listed.text
        assert "Ann &lt;b&gt;" in listed.text and "Ann <b>" not in listed.text
        assert stranger.welcome["visitor"] not in listed.text
        ids = re.search(r'name="ids" value="([^"]+)"', listed.text)
        assert ids is not None and ids.group(1) == vid
        fields = {"email": "ann@example.com", "ids": vid, "step": "erase", "keep_facts": "on"}
        wrong = await admin.post("/console/admin/privacy/erase", {**fields, "confirm": "yes"})
        assert wrong.status_code == 422 and "Type ERASE" in wrong.text
        async with store_of(server) as store:
            assert await store.get_visitor(vid) is not None  # nothing erased yet
        r = await admin.post("/console/admin/privacy/erase", {**fields, "confirm": "ERASE"})
        assert r.status_code == 303, r.text
        shown = await admin.get("/console/admin/privacy")
        assert "Erased: 1 visitors, 1 conversations" in flash(shown)
        code, _ = await asyncio.wait_for(visitor.closed, 5)
        assert code == 4007
        trail = await admin.get("/console/admin/audit", params={"action": "visitor.erase"})
        assert trail.text.count("<tr data-entry=") == 1 and vid in trail.text
        none = await admin.post("/console/admin/privacy/erase", {"visitor": vid})
        assert none.status_code == 422 and "No visitor of this site matches" in none.text
    async with store_of(server) as store:
        assert await store.get_visitor(vid) is None
        assert await store.get_conversation(conv) is None
        assert await store.get_visitor(stranger.welcome["visitor"]) is not None
    # the widget comes back with its old token: a new visitor, a new token
    back = await Client.visitor(server, shop.key, token=visitor.welcome["token"])
    assert back.welcome["visitor"] != vid and back.welcome["token"] != visitor.welcome["token"]
    await back.close()
    await stranger.close()


async def test_the_command_line_erases_a_visitor(server: Server) -> None:
    shop, _ = await shop_with_admin(server)
    visitor = await Client.visitor(server, shop.key)
    await visitor.send({"t": "identify", "name": "Bo", "email": "bo@example.com"})
    await visitor.request({"t": "send", "cid": "m1", "body": "Delete me"})
    vid = visitor.welcome["visitor"]
    await visitor.close()
    who = ("privacy", "erase", "--site", shop.key, "--email", "bo@example.com")
    refused = run(*who, data=server.data, stdin="no\n")
    assert refused.returncode != 0 and "nothing erased" in refused.stderr
    done = run(*who, "--yes", data=server.data)
    assert done.returncode == 0, done.stderr
    assert "erased: 1 visitors, 1 conversations" in done.stdout
    async with store_of(server) as store:
        assert await store.get_visitor(vid) is None and await store.is_erased(vid)
        query = AuditQuery(shop.site.id, action="visitor.erase")
        (entry,) = await open_audit(store).entries(query)
        assert entry.actor == "cli" and entry.target == vid


async def test_an_admin_sets_the_retention_periods(server: Server) -> None:
    shop, (admin_email, agent_email, _) = await shop_with_admin(server)
    async with console(server, admin_email) as admin:
        shown = await admin.get("/console/admin/privacy")
        assert 'name="conversation_retention_days"' in shown.text and "No sweep yet" in shown.text
        periods = {
            "conversation_retention_days": "365",
            "attachment_retention_days": "90",
            "visitor_retention_days": "30",
            "activity_retention_days": "",
        }
        r = await admin.post("/console/admin/privacy/retention", periods)
        assert r.status_code == 303
        assert "Older data is deleted within the hour" in flash(
            await admin.get(r.headers["location"])
        )
        bad = await admin.post(
            "/console/admin/privacy/retention", {**periods, "visitor_retention_days": "-1"}
        )
        assert bad.status_code == 422 and "A number of days, 0 to 3650." in bad.text
    async with store_of(server) as store:
        site = await store.get_site(shop.site.id)
    assert site is not None
    s = site.settings
    assert (s.conversation_retention_days, s.attachment_retention_days) == (365, 90)
    assert (s.visitor_retention_days, s.activity_retention_days) == (30, 0)
    async with console(server, agent_email) as agent:  # admins only
        refused = await agent.post("/console/admin/privacy/retention", periods)
        assert refused.status_code == 403
