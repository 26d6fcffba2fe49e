"""The widget's features on the wire: offline form, ratings, attachments, tracked
events and verified identities, against a real server process (SQLite)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatserver.features.attachments import MAX_ATTACHMENT_BYTES, URL_TTL, signed_url
from chatserver.features.identity import identity_hash
from chatserver.features.tracking import TRACK_BURST
from chatserver.security import Signer, load_secret
from chatserver.store_sqlite import SQLiteStore
from chatserver.types import SiteSettings

from ..conftest import Client, Server, agent_token, seed

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_clients")]

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
HTML = b"<!doctype html><script>alert(document.domain)</script>"


async def error(client: Client, frame: dict[str, Any]) -> int:
    reply = await client.request(frame)
    assert reply["t"] == "error", (frame, reply)
    return int(reply["code"])


async def ok(client: Client, frame: dict[str, Any]) -> dict[str, Any]:
    reply = await client.request(frame)
    assert reply["t"] == "ok", (frame, reply)
    return reply


async def stored_site_secret(server: Server, site_id: str) -> str:
    store = SQLiteStore(server.data / "chatserver.db")
    await store.start()
    try:
        return await store.identity_secret(site_id)
    finally:
        await store.close()


# ---------------------------------------------------------------------------
# offline form
# ---------------------------------------------------------------------------


async def test_offline_frame_validation(server: Server) -> None:
    shop = await seed(server.data, agents=0)
    visitor = await Client.visitor(server, shop.key)
    good = {"t": "offline", "cid": "o1", "name": "Ann", "email": "ann@example.com", "body": "Hi"}
    for bad, code in [
        ({"email": "not-an-address"}, 203),
        ({"email": "ann@localhost"}, 203),
        ({"email": "a b@example.com"}, 203),
        ({"email": None}, 203),
        ({"body": "   "}, 203),
        ({"body": "x" * 4001}, 208),
        ({"name": "n" * 201}, 203),
        ({"cid": None}, 203),
        ({"email": "a@" + "e" * 320 + ".com"}, 203),
    ]:
        assert await error(visitor, {**good, **bad}) == code, bad
    assert not visitor.of("conv")  # nothing was stored


async def test_offline_message_reaches_an_agent_who_comes_online_later(server: Server) -> None:
    shop = await seed(server.data, agents=1)
    (email,) = shop.agents
    visitor = await Client.visitor(server, shop.key)
    assert visitor.welcome["agents_online"] == 0
    frame = {
        "t": "offline",
        "cid": "o1",
        "name": "Ann Example",
        "email": " ann@example.com ",
        "body": "Do you ship to Andorra? Mail me.",
    }
    ack = await visitor.request(frame)
    assert ack["t"] == "ack" and ack["offset"] == 1 and ack["duplicate"] is False
    conv = ack["conv"]
    follow = await visitor.expect("conv", lambda f: f.get("follow") is True)
    assert follow["conv"]["offline"] is True and follow["conv"]["state"] == "queued"
    # a resend (same cid) is stored once
    again = await visitor.request(frame)
    assert again["duplicate"] is True and again["offset"] == 1

    agent = await Client.agent(server, email)
    (listed,) = [c for c in agent.welcome["conversations"] if c["id"] == conv]
    assert listed["offline"] is True
    history = await agent.request({"t": "history", "conv": conv, "since": 0})
    (msg,) = [m for m in history["messages"] if m["kind"] == "text"]
    assert msg["body"] == "Do you ship to Andorra? Mail me."
    assert msg["data"] == {"offline": {"name": "Ann Example", "email": "ann@example.com"}}
    record = await agent.request({"t": "visitor", "visitor": visitor.welcome["visitor"]})
    assert (record["visitor"]["name"], record["visitor"]["email"]) == (
        "Ann Example",
        "ann@example.com",
    )


# ---------------------------------------------------------------------------
# ratings
# ---------------------------------------------------------------------------


async def test_rating_rules_and_live_delivery(server: Server) -> None:
    shop = await seed(server.data, agents=1)
    (email,) = shop.agents
    agent = await Client.agent(server, email)
    visitor = await Client.visitor(server, shop.key)
    other = await Client.visitor(server, shop.key)
    conv = (await visitor.request({"t": "send", "cid": "m1", "body": "hello"}))["conv"]
    await agent.expect("conv", lambda f: f["conv"]["id"] == conv and f.get("follow") is True)

    rate = {"t": "rate", "conv": conv, "rating": "great"}
    assert await error(visitor, rate) == 207  # still open
    assert await error(visitor, {**rate, "rating": "meh"}) == 203
    assert await error(visitor, {**rate, "comment": "c" * 1001}) == 203
    assert await error(agent, rate) == 202  # agents do not rate

    await ok(agent, {"t": "close", "conv": conv})
    assert await error(other, rate) == 205  # not theirs
    mark = len(agent.frames)
    await ok(visitor, {**rate, "rating": "okay", "comment": " quick, thanks "})
    event = await agent.expect(
        "msg", lambda f: f["conv"] == conv and f["kind"] == "event", after=mark
    )
    assert event["data"] == {"event": "rated", "rating": "okay", "comment": "quick, thanks"}
    snapshot = await agent.expect(
        "conv", lambda f: f["conv"]["id"] == conv and f["conv"]["rating"], after=mark
    )
    assert snapshot["conv"]["rating"]["value"] == "okay"
    assert snapshot["conv"]["rating"]["comment"] == "quick, thanks"
    await visitor.expect("conv", lambda f: (f["conv"].get("rating") or {}).get("value") == "okay")

    # the same again changes nothing; another rating replaces it
    offset = event["offset"]
    await ok(visitor, {**rate, "rating": "okay", "comment": "quick, thanks"})
    await ok(visitor, {**rate, "rating": "great"})
    replaced = await agent.expect(
        "msg", lambda f: f["conv"] == conv and f["kind"] == "event" and f["offset"] > offset
    )
    assert replaced["offset"] == offset + 1
    assert replaced["data"]["rating"] == "great"
    store = SQLiteStore(server.data / "chatserver.db")
    await store.start()
    try:
        stored = await store.get_conversation(conv)
        assert stored is not None and (stored.rating, stored.rating_comment) == ("great", "")
    finally:
        await store.close()


# ---------------------------------------------------------------------------
# attachments
# ---------------------------------------------------------------------------


async def upload(
    server: Server, token: str, data: bytes, name: str = "file", **headers: str
) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(
            f"{server.url}/api/attachments",
            params={"name": name},
            content=data,
            headers={"Authorization": f"Bearer {token}", **headers},
        )


async def fetch(server: Server, url: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.get(f"{server.url}/{url}")


async def test_upload_checks_the_bytes_not_the_declared_type(server: Server) -> None:
    shop = await seed(server.data, agents=0)
    visitor = await Client.visitor(server, shop.key)
    token = visitor.welcome["token"]
    for data, name in [(SVG, "logo.svg"), (HTML, "page.html"), (b"GIF8", "short.gif")]:
        r = await upload(server, token, data, name, **{"Content-Type": "image/png"})
        assert r.status_code == 415, (name, r.text)
    r = await upload(server, token, b"")
    assert r.status_code == 400
    r = await upload(server, token, b"\x89PNG\r\n\x1a\n" + bytes(MAX_ATTACHMENT_BYTES))
    assert r.status_code == 413
    r = await upload(server, "visitor.s_x.v_y.forged", PNG)
    assert r.status_code == 401
    async with httpx.AsyncClient() as http:
        assert (await http.post(f"{server.url}/api/attachments", content=PNG)).status_code == 401
        pre = await http.options(
            f"{server.url}/api/attachments",
            headers={
                "Origin": "https://shop.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization",
            },
        )
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == "https://shop.example"
    assert "authorization" in pre.headers["access-control-allow-headers"]

    # a PNG named .html keeps its type and gets the right extension
    r = await upload(server, token, PNG, "../../evil.html", Origin="https://shop.example")
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == "https://shop.example"
    body = r.json()
    assert (body["name"], body["type"], body["size"]) == ("evil.html.png", "image/png", len(PNG))
    got = await fetch(server, body["url"])
    assert got.status_code == 200 and got.content == PNG


async def test_upload_from_a_refused_origin(server: Server) -> None:
    shop = await seed(server.data, agents=0, origins=("https://shop.example",))
    visitor = await Client.visitor(server, shop.key)
    token = visitor.welcome["token"]
    r = await upload(server, token, PNG, Origin="https://evil.example")
    assert r.status_code == 403
    r = await upload(server, token, PNG, Origin="https://shop.example")
    assert r.status_code == 200


async def test_attachments_round_trip_to_participants_only(server: Server) -> None:
    shop = await seed(server.data, agents=1)
    (email,) = shop.agents
    agent = await Client.agent(server, email)
    visitor = await Client.visitor(server, shop.key)
    stranger = await Client.visitor(server, shop.key)
    png = (await upload(server, visitor.welcome["token"], PNG, "cat.png")).json()
    pdf = (await upload(server, visitor.welcome["token"], PDF, "Factura març.pdf")).json()
    theirs = (await upload(server, stranger.welcome["token"], PNG, "x.png")).json()

    # The first attach opens the conversation, like a first send.
    ack = await visitor.request({"t": "attach", "cid": "f1", "attachment": png["id"]})
    assert ack["t"] == "ack", ack
    conv = ack["conv"]
    live = await visitor.expect("msg", lambda f: f.get("cid") == "f1")
    assert live["body"] == "cat.png"
    att = live["data"]["attachment"]
    assert {k: att[k] for k in ("id", "name", "type", "size")} == {
        "id": png["id"],
        "name": "cat.png",
        "type": "image/png",
        "size": len(PNG),
    }
    assert att["url"].startswith(f"attachments/{png['id']}?exp=")
    got = await fetch(server, att["url"])
    assert got.status_code == 200 and got.content == PNG
    assert got.headers["content-type"] == "image/png"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert got.headers["content-disposition"].startswith("inline")

    await agent.expect("conv", lambda f: f["conv"]["id"] == conv and f.get("follow") is True)
    mark = len(agent.frames)
    await visitor.request({"t": "attach", "cid": "f2", "attachment": pdf["id"]})
    seen = await agent.expect("msg", lambda f: f.get("cid") == "f2", after=mark)
    doc = await fetch(server, seen["data"]["attachment"]["url"])
    assert doc.status_code == 200 and doc.content == PDF
    assert doc.headers["content-type"] == "application/pdf"
    assert doc.headers["content-disposition"].startswith("attachment;")
    assert "filename*=UTF-8''Factura%20mar%C3%A7.pdf" in doc.headers["content-disposition"]

    # History issues the URLs again.
    history = await agent.request({"t": "history", "conv": conv, "since": 0})
    urls = [m["data"]["attachment"]["url"] for m in history["messages"] if m.get("cid")]
    assert len(urls) == 2 and all(u.startswith("attachments/f_") for u in urls)

    # A resend is a duplicate; posting it elsewhere or someone else's is refused.
    again = await visitor.request({"t": "attach", "cid": "f1", "attachment": png["id"]})
    assert again["duplicate"] is True and again["offset"] == ack["offset"]
    assert await error(visitor, {"t": "attach", "cid": "f3", "attachment": theirs["id"]}) == 205
    assert await error(stranger, {"t": "attach", "cid": "s1", "attachment": png["id"]}) == 205
    assert await error(stranger, {"t": "history", "conv": conv, "since": 0}) == 205
    assert await error(visitor, {"t": "attach", "cid": "f4", "attachment": "f_nope"}) == 205

    # Bad, forged or expired URLs are refused; so is another file's signature.
    path, _, query = att["url"].partition("?")
    other_id = theirs["id"]
    for bad in [
        path,
        f"{path}?exp=9999999999&sig=AAAA",
        f"attachments/{other_id}?{query}",
        f"{path}?{query.replace('exp=', 'exp=1')}",
    ]:
        assert (await fetch(server, bad)).status_code == 403, bad
    signer = Signer(load_secret(server.data))
    expired = signed_url(signer, png["id"], now=time.time() - 2 * URL_TTL)
    assert (await fetch(server, expired)).status_code == 403
    assert (await fetch(server, signed_url(signer, png["id"]))).status_code == 200


async def test_agent_attachments(server: Server) -> None:
    shop = await seed(server.data, agents=2, settings=SiteSettings(routing="manual"))
    (email1, email2) = shop.agents
    holder = await Client.agent(server, email1)
    bystander = await Client.agent(server, email2)
    visitor = await Client.visitor(server, shop.key)
    conv = (await visitor.request({"t": "send", "cid": "m1", "body": "hi"}))["conv"]
    await ok(holder, {"t": "join", "conv": conv})
    pdf = (await upload(server, await agent_token(server, email1), PDF, "quote.pdf")).json()
    own = (await upload(server, await agent_token(server, email2), PNG, "b.png")).json()
    frame = {"t": "attach", "conv": conv, "cid": "a1", "attachment": pdf["id"]}
    assert await error(bystander, frame) == 206  # not a member
    await ok(bystander, {"t": "join", "conv": conv})
    assert await error(bystander, frame) == 205  # not its upload
    ack = await holder.request(frame)
    assert ack["t"] == "ack", ack
    msg = await visitor.expect("msg", lambda f: f.get("cid") == "a1")
    assert msg["from"]["kind"] == "agent" and msg["data"]["attachment"]["name"] == "quote.pdf"
    assert (await fetch(server, msg["data"]["attachment"]["url"])).content == PDF
    await ok(holder, {"t": "close", "conv": conv})
    late = {"t": "attach", "conv": conv, "cid": "b1", "attachment": own["id"]}
    assert await error(bystander, late) == 207


# ---------------------------------------------------------------------------
# tracked events
# ---------------------------------------------------------------------------


async def test_track_validation_storage_and_rate_limit(server: Server) -> None:
    shop = await seed(server.data, agents=1)
    (email,) = shop.agents
    agent = await Client.agent(server, email)
    visitor = await Client.visitor(server, shop.key)
    vid = visitor.welcome["visitor"]
    for bad in [
        {"name": ""},
        {"name": "  "},
        {"name": "n" * 65},
        {"name": "x", "props": {"list": [1, 2]}},
        {"name": "x", "props": {"deep": {"er": {"no": 1}}}},
        {"name": "x", "props": {"s": "v" * 501}},
        {"name": 5},
    ]:
        assert await error(visitor, {"t": "track", **bad}) == 203, bad

    mark = len(agent.frames)
    await ok(visitor, {"t": "track", "name": "added_to_cart", "props": {"sku": "B1", "qty": 2}})
    live = await agent.expect("visitor", lambda f: f["visitor"]["id"] == vid, after=mark)
    assert live["event"]["name"] == "added_to_cart"
    assert live["event"]["props"] == {"sku": "B1", "qty": 2}
    await ok(visitor, {"t": "track", "name": "checkout"})
    record = await agent.request({"t": "visitor", "visitor": vid})
    assert [e["name"] for e in record["events"]] == ["checkout", "added_to_cart"]
    assert record["events"][0]["props"] == {}

    codes = []
    for i in range(int(TRACK_BURST) + 5):
        reply = await visitor.request({"t": "track", "name": f"e{i}"})
        codes.append(reply.get("code", 0))
    assert 102 in codes and codes[0] == 0
    record = await agent.request({"t": "visitor", "visitor": vid})
    assert len(record["events"]) < int(TRACK_BURST) + 5 + 2


# ---------------------------------------------------------------------------
# identity
# ---------------------------------------------------------------------------


async def test_forged_identity_is_refused_when_required(server: Server) -> None:
    shop = await seed(server.data, agents=1, settings=SiteSettings(require_identity=True))
    (email,) = shop.agents
    agent = await Client.agent(server, email)
    visitor = await Client.visitor(server, shop.key)
    vid = visitor.welcome["visitor"]
    assert visitor.welcome["site"]["settings"]["require_identity"] is True
    forged = identity_hash("not the secret", "cust-7")
    for frame in [
        {"user_id": "cust-7", "hash": forged, "email": "eve@example.com"},
        {"user_id": "cust-7"},
    ]:
        assert await error(visitor, {"t": "identify", **frame}) == 206
    record = await agent.request({"t": "visitor", "visitor": vid})
    assert record["visitor"]["user_id"] == "" and record["visitor"]["email"] == ""
    # name and e-mail alone are still taken (never verified)
    await ok(visitor, {"t": "identify", "name": "Eve"})

    secret = await stored_site_secret(server, shop.site.id)
    mark = len(agent.frames)
    await ok(
        visitor, {"t": "identify", "user_id": "cust-7", "hash": identity_hash(secret, "cust-7")}
    )
    live = await agent.expect("visitor", lambda f: f["visitor"]["id"] == vid, after=mark)
    assert (live["visitor"]["user_id"], live["visitor"]["verified"]) == ("cust-7", True)
    assert await error(visitor, {"t": "identify", "user_id": ""}) == 203


async def test_identity_unverified_when_optional_and_the_record_follows(server: Server) -> None:
    shop = await seed(server.data, agents=1)
    (email,) = shop.agents
    agent = await Client.agent(server, email)
    secret = await stored_site_secret(server, shop.site.id)
    good = identity_hash(secret, "cust-1")

    phone = await Client.visitor(server, shop.key)
    mark = len(agent.frames)
    await ok(phone, {"t": "identify", "user_id": "cust-1", "hash": "00" * 32, "name": "Ann"})
    live = await agent.expect(
        "visitor", lambda f: f["visitor"]["id"] == phone.welcome["visitor"], after=mark
    )
    assert (live["visitor"]["user_id"], live["visitor"]["verified"]) == ("cust-1", False)
    # verified now: this record holds the identity; no switch
    reply = await ok(phone, {"t": "identify", "user_id": "cust-1", "hash": good.upper()})
    assert "token" not in reply
    conv = (await phone.request({"t": "send", "cid": "p1", "body": "from my phone"}))["conv"]

    # Another device: verified as the same customer, no open chat: moves onto the record.
    laptop = await Client.visitor(server, shop.key)
    reply = await ok(laptop, {"t": "identify", "user_id": "cust-1", "hash": good})
    assert reply["visitor"] == phone.welcome["visitor"]
    moved = await Client.visitor(server, shop.key, token=reply["token"])
    assert moved.welcome["visitor"] == phone.welcome["visitor"]
    assert moved.welcome["conv"] == conv

    # A device with its own open chat stays on its record (verified).
    tablet = await Client.visitor(server, shop.key)
    await tablet.request({"t": "send", "cid": "t1", "body": "from my tablet"})
    reply = await ok(tablet, {"t": "identify", "user_id": "cust-1", "hash": good})
    assert "token" not in reply
    record = await agent.request({"t": "visitor", "visitor": tablet.welcome["visitor"]})
    assert (record["visitor"]["user_id"], record["visitor"]["verified"]) == ("cust-1", True)


async def test_site_secret_command(tmp_path: Path) -> None:
    data = tmp_path / "data"

    def run(*args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "chatserver.cli", "site", *args, "--data", str(data)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    key = run("add", "Shop").split("site key: ")[1].strip()
    first = run("secret", key)
    secret = first.split(": ")[1].split()[0]
    assert len(secret) == 64 and "optional" in first
    assert secret not in run("list")
    required = run("secret", key, "--require")
    assert secret in required and "required" in required
    rotated = run("secret", key, "--rotate", "--optional")
    assert secret not in rotated and "optional" in rotated
