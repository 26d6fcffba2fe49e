"""The ``rec`` frame through a real server: replies, limits, ownership, resends.

Visitors are real WebSocket clients (JSON and msgpack) of a server process;
what was stored is checked through the replay API as an analyst.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from chatserver.types import Role, SiteSettings

from ..conftest import Client, Server, Shop, agent_token, seed

pytestmark = pytest.mark.anyio

T0 = 1_700_000_000_000.0


def events(n: int, t0: float = T0, snapshot: bool = True) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if snapshot:
        out += [
            {
                "type": 4,
                "data": {"href": "https://shop/", "width": 800, "height": 600},
                "timestamp": t0,
            },
            {"type": 2, "data": {"node": {"type": 0, "childNodes": [], "id": 1}}, "timestamp": t0},
            {
                "type": 5,
                "data": {"tag": "page", "payload": {"url": "https://shop/", "title": "S"}},
                "timestamp": t0,
            },
        ]
    while len(out) < n:
        i = len(out)
        out.append(
            {
                "type": 3,
                "data": {"source": 1, "positions": [{"x": i, "y": i, "id": 1, "timeOffset": 0}]},
                "timestamp": t0 + i,
            }
        )
    return out


@pytest.fixture
async def shop(server: Server) -> Shop:
    return await seed(
        server.data, agents=2, settings=SiteSettings(recording=True), roles={1: Role.ANALYST}
    )


@pytest.fixture
async def api(server: Server, shop: Shop) -> AsyncIterator[httpx.AsyncClient]:
    analyst = next(e for e in shop.agents if e.startswith("agent1-"))
    token = await agent_token(server, analyst)
    async with httpx.AsyncClient(
        base_url=f"{server.url}/console/api/recordings",
        headers={"Authorization": f"Bearer {token}"},
    ) as http:
        yield http


async def test_a_batch_is_stored_once_and_acknowledged(
    server: Server, shop: Shop, api: httpx.AsyncClient, close_clients: None
) -> None:
    v = await Client.visitor(server, shop.key)
    batch = events(20)
    reply = await v.request(
        {"t": "rec", "session": "rec_proto_once", "seq": 0, "events": batch, "now": T0}
    )
    assert reply == {
        "t": "recorded",
        "re": reply["re"],
        "session": "rec_proto_once",
        "seq": 0,
        "duplicate": False,
    }
    again = await v.request({"t": "rec", "session": "rec_proto_once", "seq": 0, "events": batch})
    assert again["t"] == "recorded" and again["duplicate"] is True
    # after a reconnect, with the token: the same visitor, still a duplicate
    await v.close()
    back = await Client.visitor(server, shop.key, token=v.welcome["token"], codec="msgpack")
    third = await back.request({"t": "rec", "session": "rec_proto_once", "seq": 0, "events": batch})
    assert third["duplicate"] is True
    more = await back.request(
        {
            "t": "rec",
            "session": "rec_proto_once",
            "seq": 1,
            "events": events(5, T0 + 100, snapshot=False),
        }
    )
    assert more["duplicate"] is False
    listed = (await api.get("/")).json()["recordings"]
    mine = [r for r in listed if r["id"] == "rec_proto_once"]
    assert mine and mine[0]["events"] == 25 and mine[0]["pages"] == 1
    got = (await api.get("/rec_proto_once/events")).json()
    assert got["events"] == batch + events(5, T0 + 100, snapshot=False)
    assert got["last_seq"] == 1 and got["more"] is False


async def test_another_visitors_session_is_refused(
    server: Server, shop: Shop, close_clients: None
) -> None:
    owner = await Client.visitor(server, shop.key)
    thief = await Client.visitor(server, shop.key)
    ok = await owner.request(
        {"t": "rec", "session": "rec_proto_owned", "seq": 0, "events": events(5)}
    )
    assert ok["t"] == "recorded"
    refused = await thief.request(
        {"t": "rec", "session": "rec_proto_owned", "seq": 1, "events": events(5)}
    )
    assert refused["t"] == "error" and refused["code"] == 206
    # a session id nobody has, without a full snapshot, cannot start a recording
    unknown = await thief.request(
        {"t": "rec", "session": "rec_proto_none", "seq": 3, "events": events(5, snapshot=False)}
    )
    assert unknown["t"] == "error" and unknown["code"] == 205


async def test_malformed_batches_are_refused_and_counted(
    server: Server, shop: Shop, close_clients: None
) -> None:
    v = await Client.visitor(server, shop.key)
    before = httpx.get(f"{server.url}/healthz").json()["recordings"].get("refused_malformed", 0)
    cases = [
        ({"session": "short", "seq": 0, "events": events(3)}, 203),
        ({"session": "rec_proto_bad", "seq": -1, "events": events(3)}, 203),
        ({"session": "rec_proto_bad", "seq": 0}, 203),
        ({"session": "rec_proto_bad", "seq": 0, "events": []}, 203),
        ({"session": "rec_proto_bad", "seq": 0, "events": "[]"}, 203),
        ({"session": "rec_proto_bad", "seq": 0, "events": [{"type": 3}]}, 203),
        ({"session": "rec_proto_bad", "seq": 0, "events": [1, 2, 3]}, 203),
        (
            {
                "session": "rec_proto_bad",
                "seq": 0,
                "events": [{"type": 3, "timestamp": T0}] * 1001,
            },
            203,
        ),
        ({"session": "rec_proto_bad", "seq": 0, "part": 1, "parts": 2, "data": "[]"}, 203),
        ({"session": "rec_proto_bad", "seq": 0, "part": 0, "parts": 1, "data": "{not json"}, 203),
    ]
    for fields, code in cases:
        reply = await v.request({"t": "rec", **fields})
        assert reply["t"] == "error" and reply["code"] == code, (fields, reply)
    too_big = json.dumps(
        {"t": "rec", "session": "rec_proto_bad", "seq": 0, "events": events(900) * 2}
    )
    await v.send_raw(too_big)
    assert (await v.expect("error", lambda f: f["code"] == 201))["code"] == 201
    after = httpx.get(f"{server.url}/healthz").json()["recordings"]["refused_malformed"]
    assert after - before == 7  # the others fail frame validation, before the handler
    # still connected and useful
    ok = await v.request({"t": "rec", "session": "rec_proto_fine", "seq": 0, "events": events(3)})
    assert ok["t"] == "recorded"


async def test_a_big_batch_comes_in_parts(
    server: Server, shop: Shop, api: httpx.AsyncClient, close_clients: None
) -> None:
    v = await Client.visitor(server, shop.key)
    big = events(3)
    big[1]["data"]["node"]["childNodes"] = [
        {"type": 3, "textContent": f"line {i} " + "x" * 100, "id": i + 2} for i in range(1500)
    ]
    text = json.dumps(big)
    assert len(text) > 150_000
    size = 60_000
    chunks = [text[i : i + size] for i in range(0, len(text), size)]
    for i, chunk in enumerate(chunks):
        reply = await v.request(
            {
                "t": "rec",
                "session": "rec_proto_parts",
                "seq": 0,
                "part": i,
                "parts": len(chunks),
                "data": chunk,
            }
        )
        assert reply["t"] == ("recorded" if i == len(chunks) - 1 else "ok"), reply
    got = (await api.get("/rec_proto_parts/events")).json()
    assert got["events"] == big
    # a part out of order drops what was held
    r = await v.request(
        {"t": "rec", "session": "rec_proto_parts", "seq": 1, "part": 0, "parts": 3, "data": "[{"}
    )
    assert r["t"] == "ok"
    r = await v.request(
        {"t": "rec", "session": "rec_proto_parts", "seq": 1, "part": 2, "parts": 3, "data": "}]"}
    )
    assert r["t"] == "error" and r["code"] == 203


async def test_session_length_cap(server: Server, shop: Shop, close_clients: None) -> None:
    v = await Client.visitor(server, shop.key)
    ok = await v.request({"t": "rec", "session": "rec_proto_long", "seq": 0, "events": events(3)})
    assert ok["t"] == "recorded"
    later = events(2, T0 + 4 * 3600 * 1000 + 1, snapshot=False)
    full = await v.request({"t": "rec", "session": "rec_proto_long", "seq": 1, "events": later})
    assert full["t"] == "error" and full["code"] == 207


async def test_recording_off_and_agents(server: Server, close_clients: None) -> None:
    off = await seed(server.data)
    v = await Client.visitor(server, off.key)
    reply = await v.request({"t": "rec", "session": "rec_proto_off", "seq": 0, "events": events(3)})
    assert reply["t"] == "error" and reply["code"] == 204
    agent = await Client.agent(server, next(iter(off.agents)))
    reply = await agent.request(
        {"t": "rec", "session": "rec_proto_off", "seq": 0, "events": events(3)}
    )
    assert reply["t"] == "error" and reply["code"] == 202


async def test_the_api_needs_an_analyst_of_the_site(
    server: Server, shop: Shop, api: httpx.AsyncClient, close_clients: None
) -> None:
    v = await Client.visitor(server, shop.key)
    await v.request({"t": "rec", "session": "rec_proto_api", "seq": 0, "events": events(3)})
    assert (await api.get("/rec_proto_api")).status_code == 200
    agent_token_ = await agent_token(
        server, next(e for e in shop.agents if e.startswith("agent0-"))
    )
    async with httpx.AsyncClient(base_url=f"{server.url}/console/api/recordings") as http:
        assert (await http.get("/")).status_code == 401
        assert (await http.get("/", headers={"Authorization": "Bearer forged"})).status_code == 401
        as_agent = {"Authorization": f"Bearer {agent_token_}"}
        assert (await http.get("/", headers=as_agent)).status_code == 403
    other = await seed(
        server.data, agents=1, settings=SiteSettings(recording=True), roles={0: Role.ANALYST}
    )
    stranger = await agent_token(server, next(iter(other.agents)))
    async with httpx.AsyncClient(base_url=f"{server.url}/console/api/recordings") as http:
        headers = {"Authorization": f"Bearer {stranger}"}
        assert (await http.get("/rec_proto_api", headers=headers)).status_code == 404
        assert (await http.get("/rec_proto_api/events", headers=headers)).status_code == 404
        assert (await http.get("/", headers=headers)).json()["recordings"] == []
    assert (await api.get("/", params={"since": "yesterday"})).status_code == 400
    assert (await api.get("/", params={"cursor": "nope"})).status_code == 400


async def test_a_batch_sent_as_text_is_stored_as_sent(
    server: Server, shop: Shop, api: httpx.AsyncClient, close_clients: None
) -> None:
    """The widget's way: the batch's JSON in ``data`` (one part); the server checks
    it and keeps that very text, without encoding the events again."""
    from recordings import format as fmt

    v = await Client.visitor(server, shop.key)
    batch = events(6)
    text = json.dumps(batch, indent=1, ensure_ascii=False)  # not how the server would write it
    reply = await v.request(
        {"t": "rec", "session": "rec_proto_text", "seq": 0, "part": 0, "parts": 1, "data": text}
    )
    assert reply["t"] == "recorded" and reply["duplicate"] is False
    got = (await api.get("/rec_proto_text/events")).json()
    assert got["events"] == batch
    segment = next((server.data / "blobs").rglob("rec_proto_text.seg")).read_bytes()
    frames = list(fmt.scan(segment))
    assert len(frames) == 1 and fmt.payload(segment, frames[0]) == text.encode()
    bad = await v.request(
        {"t": "rec", "session": "rec_proto_text", "seq": 1, "part": 0, "parts": 1, "data": "{}"}
    )
    assert bad["t"] == "error" and bad["code"] == 203
