"""API keys end to end: made on the admin page and shown once, used, listed, revoked,
rate limited; a real server, a real browser-like console session, real SQLite."""

from __future__ import annotations

import html
import re
import time

import httpx
import pytest

from chatserver.api.keys import KIND, USED_KIND, parse
from chatserver.audit import AuditQuery, open_audit
from chatserver.store_sqlite import SQLiteStore
from chatserver.types import Role

from ..api_check import Api, error_of
from ..conftest import Server, seed
from .test_console_admin import console, errors

pytestmark = pytest.mark.anyio

_NEW_KEY = re.compile(r'name="new_key" value="([^"]+)"')


async def docs_of(server: Server, site_id: str, kind: str) -> list[dict[str, object]]:
    store = SQLiteStore(server.data / "chatserver.db")
    await store.start()
    try:
        return [{"id": d.id, **d.data} for d in await store.list_docs(site_id, kind)]
    finally:
        await store.close()


async def test_an_admin_makes_a_key_sees_it_once_and_revokes_it(server: Server) -> None:
    shop = await seed(server.data, agents=2, roles={0: Role.ADMIN})
    admin_email, agent_email = list(shop.agents)
    async with console(server, admin_email) as admin:
        # A name is needed; a name with markup is shown as text.
        r = await admin.post("/console/admin/api-keys", {"name": "  "})
        assert r.status_code == 422 and "name" in errors(r)
        r = await admin.post("/console/admin/api-keys", {"name": "<b>CRM</b> & co"})
        assert r.status_code == 201, errors(r)
        assert r.headers["cache-control"] == "no-store"
        found = _NEW_KEY.search(r.text)
        assert found
        key = html.unescape(found.group(1))
        assert parse(key) is not None and key.startswith(f"csk_{shop.site.id}.")
        assert "<b>CRM</b>" not in r.text and "&lt;b&gt;CRM&lt;/b&gt; &amp; co" in r.text
        # The store keeps its digest, never the secret; the list shows the prefix only.
        (doc,) = await docs_of(server, shop.site.id, KIND)
        secret = key.rpartition("_")[2]
        assert secret not in str(doc) and doc["name"] == "<b>CRM</b> & co"
        listed = await admin.get("/console/admin/api-keys")
        assert secret not in listed.text and key.rpartition("_")[0] in listed.text
        assert "never" in listed.text  # not used yet
        home = await admin.get("/console/admin")
        assert re.search(r"<strong>API keys</strong>\s*<span>1</span>", home.text), home.text

        async with Api(server.url, key).http as client:
            r = await client.get("/conversations")
            assert r.status_code == 200, r.text
        listed = await admin.get("/console/admin/api-keys")
        assert "never" not in listed.text  # last used: now
        assert len(await docs_of(server, shop.site.id, USED_KIND)) == 1

        # Agents and analysts do not reach the page.
        async with console(server, agent_email) as agent:
            assert (await agent.get("/console/admin/api-keys")).status_code == 403
            r = await agent.post("/console/admin/api-keys", {"name": "sneaky"})
            assert r.status_code == 403

        # Revoked: refused at the next request, and gone from the store.
        r = await admin.post(f"/console/admin/api-keys/{doc['id']}/revoke")
        assert r.status_code == 303
        assert "Revoked the API key" in html.unescape((await admin.get(r.headers["location"])).text)
        async with Api(server.url, key).http as client:
            r = await client.get("/conversations")
            assert error_of(r) == (401, 4102, "unauthorized")
        assert await docs_of(server, shop.site.id, KIND) == []
        assert await docs_of(server, shop.site.id, USED_KIND) == []
        r = await admin.post(f"/console/admin/api-keys/{doc['id']}/revoke")
        assert r.status_code == 404

    # The audit trail has who made and who revoked the key (field names, no values).
    store = SQLiteStore(server.data / "chatserver.db")
    await store.start()
    try:
        trail = await open_audit(store).entries(AuditQuery(shop.site.id, action="console."))
    finally:
        await store.close()
    made = [e for e in trail if e.action == "console.api_keys"]
    revoked = [e for e in trail if e.action == "console.api_key_revoke"]
    assert len(made) == 1 and made[0].detail == {"fields": ["name"]}
    assert [e.target for e in revoked] == [f"/console/admin/api-keys/{doc['id']}/revoke"]
    assert all(secret not in str(e) for e in trail)


async def test_a_key_over_its_rate_gets_429_with_retry_after(own_server: Server) -> None:
    server = own_server
    server.extra = ("--api-rate", "3")
    server.start()
    shop = await seed(server.data, roles={0: Role.ADMIN})
    (admin_email,) = shop.agents
    keys = []
    async with console(server, admin_email) as admin:
        for name in ("busy", "quiet"):
            r = await admin.post("/console/admin/api-keys", {"name": name})
            found = _NEW_KEY.search(r.text)
            assert found
            keys.append(html.unescape(found.group(1)))
    busy, quiet = (Api(server.url, k) for k in keys)
    try:
        started = time.monotonic()
        for _ in range(3):
            assert (await busy.get("/conversations")).status_code == 200
        r = await busy.get("/conversations")
        assert error_of(r) == (429, 102, "rate_limited")
        assert 1 <= int(r.headers["retry-after"]) <= 21  # 3 a minute: one each 20 s
        # Another key has its own bucket.
        assert (await quiet.get("/conversations")).status_code == 200
        # A bad key is refused before it is counted (no bucket to exhaust).
        async with httpx.AsyncClient(base_url=server.url) as anonymous:
            for _ in range(5):
                r = await anonymous.get("/api/v1/conversations")
                assert r.status_code == 401
        assert time.monotonic() - started < 10
    finally:
        await busy.close()
        await quiet.close()


def test_keys_parse_only_in_their_one_shape() -> None:
    good = f"csk_s_AbC-d_9.{'a' * 12}_{'0f' * 32}"
    assert parse(good) == ("s_AbC-d_9", "a" * 12, "0f" * 32)
    for bad in (
        "",
        "csk",
        good.replace("csk_", "sk_"),
        good[:-1],
        good + "0",
        good.upper(),
        f"csk_{'s' * 65}.{'a' * 12}_{'0f' * 32}",
        f"csk_.{'a' * 12}_{'0f' * 32}",
        f"csk_s_1.{'a' * 11}_{'0f' * 32}",
        f"csk_s 1.{'a' * 12}_{'0f' * 32}",
    ):
        assert parse(bad) is None, bad
