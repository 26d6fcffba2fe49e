"""The REST API with PostgreSQL as the record, on an in-process node (a real
PostgreSQL server, the node's real parts): keys, reads, posts, revocation."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatserver.api.keys import parse
from chatserver.types import SiteSettings

from ..api_check import check
from ..node import Node

pytestmark = pytest.mark.anyio


async def test_read_post_and_revoke_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    node = await Node(tmp_path / "node", database_url=postgres_url).start()
    try:
        assert node.parts.config.backend == "postgres"
        shop = await node.seed(settings=SiteSettings(routing="manual"))
        (email,) = shop.agents
        agent_id = shop.agents[email]
        _, key = await node.parts.api_keys.create(shop.site.id, "helpdesk")
        await node.agent(email)
        visitor = await node.visitor(shop.key)
        conv = (await visitor.request({"t": "send", "cid": "m1", "body": "hello?"}))["conv"]
        headers = {"Authorization": f"Bearer {key}"}
        async with node.http() as http:

            async def call(method: str, path: str, **kw: object) -> dict[str, object]:
                r = await http.request(method, f"/api/v1{path}", headers=headers, **kw)  # type: ignore[arg-type]
                check(r)
                return {"status": r.status_code, **r.json()}

            r = await call("POST", f"/conversations/{conv}/assign", json={"agent_id": agent_id})
            assert r["status"] == 200, r
            message = {"agent_id": agent_id, "body": "Hi from the helpdesk", "cid": "h-1"}
            for status in (201, 200):  # the retry is a duplicate
                r = await call("POST", f"/conversations/{conv}/messages", json=message)
                assert r["status"] == status, r
            await visitor.expect("msg", lambda f: f.get("body") == "Hi from the helpdesk")
            entries = (await call("GET", f"/conversations/{conv}/entries"))["entries"]
            assert isinstance(entries, list)
            texts = [e["body"] for e in entries if e["kind"] == "text"]
            assert texts == ["hello?", "Hi from the helpdesk"]
            vid = visitor.welcome["visitor"]
            assert (await call("GET", f"/visitors/{vid}"))["status"] == 200
            assert (await call("GET", "/reports"))["status"] == 200
            parsed = parse(key)
            assert parsed is not None
            assert await node.parts.api_keys.revoke(shop.site.id, parsed[1])
            assert (await call("GET", f"/conversations/{conv}"))["status"] == 401
    finally:
        await node.close()
