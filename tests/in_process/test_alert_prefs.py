"""#21: agents' notification preferences (``agent_console/alert_prefs.py``), kept on
the server per agent: the workspace's Sound box and the profile page set them, the
workspace page carries them, a malformed change is refused and changes nothing."""

from __future__ import annotations

import html
import json
import re

import httpx
import pytest

from ..conftest import console_login, csrf_of
from ..node import Node

pytestmark = pytest.mark.anyio
ORIGIN = {"Origin": "http://127.0.0.1"}


async def sign_in(http: httpx.AsyncClient, email: str) -> str:
    assert (await console_login(http, email)).status_code == 303
    return csrf_of((await http.get("/console/profile")).text)


async def change(http: httpx.AsyncClient, csrf: str, body: object) -> httpx.Response:
    headers = {**ORIGIN, "X-CSRF-Token": csrf, "Content-Type": "application/json"}
    return await http.post("/console/api/alerts", content=json.dumps(body), headers=headers)


async def workspace(http: httpx.AsyncClient) -> tuple[str, str]:
    page = (await http.get("/console/")).text
    found = re.search(r'data-sound="(\w+)" data-desktop="(\w+)"', page)
    assert found, "the workspace carries the preferences"
    return found.group(1), found.group(2)


async def test_preferences_are_kept_per_agent_and_validated(node: Node) -> None:
    shop = await node.seed(agents=2)
    first, second = shop.agents
    async with node.http() as http, node.http() as other:
        csrf = await sign_in(http, first)
        await sign_in(other, second)
        assert await workspace(http) == ("on", "new")  # the defaults
        r = await change(http, csrf, {"sound": False})
        assert r.status_code == 200 and r.json() == {"sound": False, "desktop": "new"}
        assert await workspace(http) == ("off", "new")
        for bad in ({"sound": "no"}, {"desktop": "some"}, {"volume": 3}, [1], "x", None):
            refused = await change(http, csrf, bad)
            assert refused.status_code == 400, bad
            assert refused.json()["error"] == "bad_prefs"
        broken = await http.post(
            "/console/api/alerts",
            content=b"{not json",
            headers={**ORIGIN, "X-CSRF-Token": csrf, "Content-Type": "application/json"},
        )
        assert broken.status_code == 400
        no_csrf = await http.post("/console/api/alerts", json={"sound": True}, headers=ORIGIN)
        assert no_csrf.status_code == 403
        assert await workspace(http) == ("off", "new")  # none of those changed anything
        assert await workspace(other) == ("on", "new")  # a colleague's are their own

        # The profile page's form: every choice at once.
        form = {"csrf": csrf, "sound": "on", "desktop": "all"}
        saved = await http.post("/console/profile/alerts", data=form, headers=ORIGIN)
        assert saved.status_code == 303
        page = html.unescape((await http.get("/console/profile")).text)
        assert "Saved your notifications." in page
        assert re.search(r'value="all" checked', page) and 'name="sound" value="on" checked' in page
        assert await workspace(http) == ("on", "all")
        form = {"csrf": csrf, "desktop": "none"}  # the box unticked: no sound
        assert (await http.post("/console/profile/alerts", data=form, headers=ORIGIN)).is_redirect
        assert await workspace(http) == ("off", "none")
        forged = {"csrf": csrf, "desktop": "loud"}
        await http.post("/console/profile/alerts", data=forged, headers=ORIGIN)
        assert await workspace(http) == ("off", "none")
