"""Export one visitor (docs/privacy.md, "Answering an access request"), on an in-process node.

The visitor's data is written through the real paths (hello with a page,
identify with an e-mail, attributes, a custom event, a message, a file, an
agent's reply and note), then found by e-mail and exported; the archive holds
each of them, the file's bytes, and the note only when asked.
"""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from chatserver.privacy.export import Request, Sources, export, find

from ..node import Node

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)


async def test_everything_of_a_visitor_in_one_archive(node: Node) -> None:
    shop = await node.seed(agents=1)
    agent = await node.agent(next(iter(shop.agents)))
    page = {"url": "https://shop.example/linen-shirt", "title": "Linen shirt"}
    visitor = await node.visitor(shop.key, page=page)
    await visitor.send({"t": "identify", "name": "Ann Example", "email": "ann@example.com"})
    await visitor.send({"t": "attrs", "set": {"plan": "pro"}})
    await visitor.send({"t": "page", **page, "referrer": ""})
    await visitor.send({"t": "track", "name": "size_guide", "props": {"size": "M"}})
    ack = await visitor.request({"t": "send", "cid": "m1", "body": "Is the shirt in blue?"})
    conv = ack["conv"]
    async with node.http() as http:
        uploaded = await http.post(
            "/api/attachments",
            params={"name": "my photo.png"},
            content=PNG,
            headers={"Authorization": f"Bearer {visitor.welcome['token']}"},
        )
    assert uploaded.status_code == 200, uploaded.text
    attached = {"t": "attach", "cid": "f1", "attachment": uploaded.json()["id"]}
    assert (await visitor.request(attached))["t"] == "ack"
    await agent.expect("conv", lambda f: f["conv"]["id"] == conv and f["conv"]["state"] == "active")
    await agent.request({"t": "send", "conv": conv, "cid": "a1", "body": "Yes, in navy."})
    note = {"t": "send", "conv": conv, "cid": "n1", "body": "VIP customer", "note": True}
    assert (await agent.request(note))["t"] == "ack"

    site = shop.site.id
    src = Sources.of(node.parts)
    (found,) = await find(src, site, Request(email="ANN@example.com"))
    assert found.id == visitor.welcome["visitor"] and found.name == "Ann Example"
    archive = zipfile.ZipFile(io.BytesIO(await export(src, site, Request(email="ann@example.com"))))
    data = json.loads(archive.read("visitor.json"))
    assert data["visitor"]["name"] == "Ann Example"
    assert data["visitor"]["attributes"]["plan"] == "pro"
    assert page["url"] in [p["url"] for p in data["page_views"]]
    assert [e["name"] for e in data["events"]] == ["size_guide"]
    (c,) = data["conversations"]
    bodies = [e["body"] for e in c["entries"] if e["kind"] == "text"]
    assert bodies == ["Is the shirt in blue?", "my photo.png", "Yes, in navy."]
    assert "VIP customer" not in json.dumps(data) and data["internal_notes_included"] is False
    (att,) = data["attachments"]
    assert att["name"] == "my photo.png" and archive.read(att["file"]) == PNG
    transcript = archive.read("transcript.txt").decode()
    assert "Ann Example: Is the shirt in blue?" in transcript
    assert "[file: my photo.png]" in transcript
    with_notes = await export(src, site, Request(visitor_id=found.id), notes=True)
    assert b"VIP customer" in zipfile.ZipFile(io.BytesIO(with_notes)).read("visitor.json")
    with pytest.raises(LookupError):
        await export(src, site, Request(email="nobody@example.com"))
    other = await node.seed(agents=0)  # another site's admin finds nobody
    with pytest.raises(LookupError):
        await export(src, other.site.id, Request(visitor_id=found.id))
