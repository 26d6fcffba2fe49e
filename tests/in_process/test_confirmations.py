"""#21: destructive admin actions ask first (``agent_console/confirm.py``). A form
sent with ``confirm=ask`` (a browser without JavaScript) gets a confirmation page
and changes nothing, not even the audit trail; confirmed, the action happens; a
request without the field (scripts) acts at once, as before."""

from __future__ import annotations

import html
from typing import Any

import httpx
import pytest

from chatserver.audit import AuditQuery, open_audit
from chatserver.types import Role

from ..conftest import console_login, csrf_of
from ..node import Node

pytestmark = pytest.mark.anyio
ORIGIN = {"Origin": "http://127.0.0.1"}


async def post(http: httpx.AsyncClient, path: str, csrf: str, **fields: str) -> httpx.Response:
    return await http.post(path, data={"csrf": csrf, **fields}, headers=ORIGIN)


async def trail(node: Node, site_id: str) -> list[Any]:
    return await open_audit(node.store).entries(AuditQuery(site_id, action="console."))


async def test_each_destructive_action_asks_then_acts(node: Node) -> None:
    shop = await node.seed(agents=2, roles={0: Role.ADMIN}, departments=("support",))
    (admin, _), (_, agent_id) = shop.agents.items()
    async with node.http() as http:
        assert (await console_login(http, admin)).status_code == 303
        csrf = csrf_of((await http.get("/console/admin/api-keys")).text)
        assert (await post(http, "/console/admin/api-keys", csrf, name="CRM")).status_code == 201
        keys = await node.app.state.node.api_keys.of_site(shop.site.id)
        actions = {
            # path, fields, the question, what is still there until confirmed
            "department": (
                "/console/admin/departments/remove",
                {"department": "support"},
                "Remove the department support?",
                ("/console/admin/departments", 'name="department" value="support"'),
            ),
            "agent": (
                f"/console/admin/agents/{agent_id}/disable",
                {},
                "Disable Agent 1? They are signed out everywhere at once.",
                (f"/console/admin/agents/{agent_id}", "· active"),
            ),
            "api key": (
                f"/console/admin/api-keys/{keys[0].id}/revoke",
                {},
                "Revoke this API key?",
                ("/console/admin/api-keys", '<td class="name">CRM</td>'),
            ),
        }
        before = len(await trail(node, shop.site.id))
        for name, (path, fields, question, (page, there)) in actions.items():
            asked = await post(http, path, csrf, confirm="ask", **fields)
            assert asked.status_code == 200, name
            text = html.unescape(asked.text)
            assert question in text and 'name="confirm" value="yes"' in text, name
            for key, value in fields.items():  # the page posts the same fields again
                assert f'name="{key}" value="{value}"' in text, name
            assert there in html.unescape((await http.get(page)).text), name  # unchanged
        assert len(await trail(node, shop.site.id)) == before  # asking changed nothing
        for name, (path, fields, _question, (page, there)) in actions.items():
            done = await post(http, path, csrf, confirm="yes", **fields)
            assert done.status_code == 303, name
            assert there not in html.unescape((await http.get(page)).text), name
        assert len(await trail(node, shop.site.id)) == before + len(actions)
