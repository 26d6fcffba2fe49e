"""The hub end to end: a real uvicorn process, real sockets, real SQLite."""

from __future__ import annotations

import asyncio
from typing import Any

import msgpack
import pytest
from websockets.exceptions import ConnectionClosed

from chatserver.store_sqlite import SQLiteStore
from chatserver.types import AuthorKind, EntryKind, SiteSettings

from ..conftest import Client, Server, seed

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_clients")]


async def chat(server: Server, agents: int = 1, **kw: Any) -> tuple[Any, list[Client]]:
    shop = await seed(server.data, agents=agents, **kw)
    clients = [await Client.agent(server, email) for email in shop.agents]
    return shop, clients


async def first_message(visitor: Client, body: str = "hello", cid: str = "m1") -> dict[str, Any]:
    ack = await visitor.request({"t": "send", "cid": cid, "body": body})
    assert ack["t"] == "ack", ack
    return ack


async def history(client: Client, conv: str, **kw: Any) -> dict[str, Any]:
    reply = await client.request({"t": "history", "conv": conv, **kw})
    assert reply["t"] == "history", reply
    return reply


@pytest.mark.parametrize("codec", ["json", "msgpack"])
async def test_visitor_and_agent_chat(server: Server, codec: str) -> None:
    shop = await seed(server.data)
    (email,) = shop.agents
    agent = await Client.agent(server, email, codec=codec)
    visitor = await Client.visitor(server, shop.key, codec=codec)
    assert visitor.welcome["agents_online"] == 1
    assert visitor.welcome["token"]

    ack = await first_message(visitor, "hello, do you ship to Spain?")
    conv = ack["conv"]
    assert ack["offset"] == 1 and ack["duplicate"] is False

    # The agent is assigned, follows the conversation and reads what it missed.
    assigned = await agent.expect(
        "conv", lambda f: f["conv"]["id"] == conv and f["conv"]["state"] == "active"
    )
    assert [a["id"] for a in assigned["conv"]["agents"]] == [shop.agents[email]]
    reply = await history(agent, conv, since=0)
    assert reply["complete"] is True
    assert [m["body"] for m in reply["messages"] if m["kind"] == "text"] == [
        "hello, do you ship to Spain?"
    ]

    await agent.request({"t": "send", "conv": conv, "cid": "a1", "body": "Yes, in 2 days."})
    got = await visitor.expect("msg", lambda f: f["body"] == "Yes, in 2 days.")
    assert got["from"]["kind"] == "agent" and got["from"]["name"] == "Agent 0"
    joined = await visitor.expect("msg", lambda f: f["kind"] == "event")
    assert joined["data"]["event"] == "joined"

    await visitor.request({"t": "send", "cid": "m2", "body": "great"})
    await agent.expect("msg", lambda f: f["body"] == "great")

    # Read receipts both ways.
    await visitor.send({"t": "read", "conv": conv, "offset": got["offset"]})
    receipt = await agent.expect("read", lambda f: f["by"]["kind"] == "visitor")
    assert receipt["offset"] == got["offset"]


async def test_typing_preview_is_coalesced_and_capped(server: Server) -> None:
    shop, (agent,) = await chat(server)
    visitor = await Client.visitor(server, shop.key)
    conv = (await first_message(visitor))["conv"]
    await agent.expect("conv", lambda f: f["conv"]["state"] == "active")
    mark = len(agent.frames)
    text = ""
    for ch in "How much does the red jacket cost in size M?":  # 44 keystrokes at once
        text += ch
        await visitor.send({"t": "typing", "draft": text})
    await agent.expect("preview", lambda f: f["text"] == text, after=mark)
    await asyncio.sleep(0.3)
    previews = [f for f in agent.frames[mark:] if f["t"] == "preview"]
    # ~10 updates/s at most: a burst of 44 collapses to the first and the last.
    assert 1 <= len(previews) <= 3, [p["text"] for p in previews]
    assert previews[-1]["text"] == text and previews[-1]["conv"] == conv
    assert not visitor.of("preview"), "a visitor never receives previews"

    long = "x" * 5000
    await asyncio.sleep(0.15)
    await visitor.send({"t": "typing", "draft": long})
    capped = await agent.expect("preview", lambda f: f["text"].startswith("xxx"))
    assert len(capped["text"]) == 2000

    # Sending clears a pending draft: no stale preview arrives after the message.
    mark = len(agent.frames)
    await visitor.send({"t": "typing", "draft": "typo"})
    await visitor.send({"t": "typing", "draft": "typo fixed"})
    await visitor.request({"t": "send", "cid": "m9", "body": "final text"})
    await agent.expect("msg", lambda f: f["body"] == "final text", after=mark)
    await asyncio.sleep(0.25)
    after_msg = agent.frames[agent.frames.index(agent.of("msg")[-1]) :]
    assert not [f for f in after_msg if f["t"] == "preview"]
    # Never stored: the history has no trace of any draft.
    stored = await history(agent, conv, since=0)
    assert all("typo" not in m["body"] for m in stored["messages"])


async def test_typing_preview_off_for_the_site(server: Server) -> None:
    shop, (agent,) = await chat(server, settings=SiteSettings(typing_preview=False))
    visitor = await Client.visitor(server, shop.key)
    assert visitor.welcome["site"]["settings"]["typing_preview"] is False
    await first_message(visitor)
    await agent.expect("conv", lambda f: f["conv"]["state"] == "active")
    await visitor.send({"t": "typing", "draft": "my card number is 4242"})
    typing = await agent.expect("typing", lambda f: f["from"]["kind"] == "visitor")
    assert typing["on"] is True
    await asyncio.sleep(0.2)
    assert not agent.of("preview")
    assert "4242" not in str(agent.frames)


async def test_agent_typing_reaches_visitor(server: Server) -> None:
    shop, (agent,) = await chat(server)
    visitor = await Client.visitor(server, shop.key)
    conv = (await first_message(visitor))["conv"]
    await agent.expect("conv", lambda f: f["conv"]["state"] == "active")
    await agent.send({"t": "typing", "conv": conv, "on": True})
    typing = await visitor.expect("typing")
    assert typing["from"] == {
        "kind": "agent",
        "id": agent.welcome["agent"]["id"],
        "name": "Agent 0",
    }
    assert "text" not in typing


async def test_queue_positions_and_drain(server: Server) -> None:
    shop, (agent,) = await chat(server, capacity=1)
    visitors = [await Client.visitor(server, shop.key) for _ in range(3)]
    convs = []
    for i, v in enumerate(visitors):
        convs.append((await first_message(v, f"hi {i}"))["conv"])
    await agent.expect(
        "conv", lambda f: f["conv"]["id"] == convs[0] and f["conv"]["state"] == "active"
    )
    q1 = await visitors[1].expect("queue", lambda f: f["position"] == 1)
    q2 = await visitors[2].expect("queue", lambda f: f["position"] == 2)
    assert q1["agents_online"] == q2["agents_online"] == 1

    # Closing the first chat frees capacity: the queue drains in FIFO order.
    await agent.request({"t": "close", "conv": convs[0]})
    await agent.expect(
        "conv", lambda f: f["conv"]["id"] == convs[1] and f["conv"]["state"] == "active"
    )
    await visitors[2].expect("queue", lambda f: f["position"] == 1)
    active = await visitors[1].expect("conv", lambda f: f["conv"]["state"] == "active")
    assert active["conv"]["agents"][0]["name"] == "Agent 0"
    closed = await visitors[0].expect("conv", lambda f: f["conv"]["state"] == "closed")
    assert closed["conv"]["id"] == convs[0]


async def test_capacity_is_respected_and_load_is_balanced(server: Server) -> None:
    shop, agents = await chat(server, agents=2, capacity=2)
    visitors = [await Client.visitor(server, shop.key) for _ in range(6)]
    for i, v in enumerate(visitors):
        await first_message(v, f"hi {i}")
    for v in visitors[4:]:
        await v.expect("queue")
    await asyncio.sleep(0.3)
    held: dict[str, set[str]] = {}
    for a in agents:
        for f in a.of("conv"):
            if f["conv"]["state"] == "active":
                for who in f["conv"]["agents"]:
                    held.setdefault(who["id"], set()).add(f["conv"]["id"])
    assert sorted(len(c) for c in held.values()) == [2, 2], held
    queued = [v for v in visitors if v.of("queue") and not v.of("msg")[1:]]
    assert len(queued) >= 2


async def test_no_agent_online_keeps_offline_message(server: Server) -> None:
    shop = await seed(server.data, agents=1)
    visitor = await Client.visitor(server, shop.key)
    assert visitor.welcome["agents_online"] == 0
    conv = (await first_message(visitor, "Are you open on Sunday?"))["conv"]
    queue = await visitor.expect("queue")
    assert queue["agents_online"] == 0
    state = await visitor.expect("conv", lambda f: f["conv"]["id"] == conv)
    assert state["conv"]["offline"] is True
    # An agent coming online picks it up with the message intact.
    (email,) = shop.agents
    agent = await Client.agent(server, email)
    await agent.expect("conv", lambda f: f["conv"]["id"] == conv and f["conv"]["state"] == "active")
    reply = await history(agent, conv, since=0)
    assert "Are you open on Sunday?" in [m["body"] for m in reply["messages"]]


async def test_transfer_to_agent_and_department(server: Server) -> None:
    shop = await seed(
        server.data,
        agents=3,
        departments=("sales", "support"),
        agent_departments={0: ("sales",), 1: ("sales",), 2: ("support",)},
    )
    emails = list(shop.agents)
    a0 = await Client.agent(server, emails[0])
    visitor = await Client.visitor(server, shop.key)
    conv = (await first_message(visitor))["conv"]
    await a0.expect("conv", lambda f: f["conv"]["state"] == "active")
    a1 = await Client.agent(server, emails[1])
    a2 = await Client.agent(server, emails[2])

    ok = await a0.request({"t": "transfer", "conv": conv, "agent": shop.agents[emails[1]]})
    assert ok["t"] == "ok", ok
    await a1.expect(
        "conv",
        lambda f: (
            f["conv"]["id"] == conv
            and [a["id"] for a in f["conv"]["agents"]] == [shop.agents[emails[1]]]
        ),
    )
    refused = await a0.request({"t": "send", "conv": conv, "cid": "x", "body": "still here?"})
    assert refused["t"] == "error" and refused["code"] == 206

    ok = await a1.request({"t": "transfer", "conv": conv, "dept": "support"})
    assert ok["t"] == "ok", ok
    final = await a2.expect(
        "conv",
        lambda f: (
            f["conv"]["id"] == conv
            and f["conv"]["state"] == "active"
            and [a["id"] for a in f["conv"]["agents"]] == [shop.agents[emails[2]]]
        ),
    )
    assert final["conv"]["department"] == "support"
    events = [m["data"]["event"] for m in visitor.of("msg") if m["kind"] == "event"]
    assert events.count("transferred") == 2

    bad = await a2.request({"t": "transfer", "conv": conv, "dept": "nope"})
    assert bad["t"] == "error" and bad["code"] == 205


async def test_join_several_agents_and_notes(server: Server) -> None:
    shop, (a0, a1) = await chat(server, agents=2)
    visitor = await Client.visitor(server, shop.key)
    conv = (await first_message(visitor))["conv"]
    holder, other = (a0, a1) if await _holds(a0, conv) else (a1, a0)
    assert (await other.request({"t": "join", "conv": conv}))["t"] == "ok"
    both = await visitor.expect("conv", lambda f: len(f["conv"]["agents"]) == 2)
    assert {a["name"] for a in both["conv"]["agents"]} == {"Agent 0", "Agent 1"}
    await holder.request(
        {"t": "send", "conv": conv, "cid": "n1", "body": "VIP customer", "note": True}
    )
    await other.expect("msg", lambda f: f["body"] == "VIP customer" and f["kind"] == "note")
    await other.request({"t": "send", "conv": conv, "cid": "t1", "body": "Hello from both of us"})
    await visitor.expect("msg", lambda f: f["body"] == "Hello from both of us")
    assert "VIP customer" not in str(visitor.frames)
    hist = await history(visitor, conv, since=0)
    assert "VIP customer" not in str(hist)
    assert "VIP customer" in str(await history(holder, conv, since=0))


async def _holds(agent: Client, conv: str) -> bool:
    frame = await agent.expect(
        "conv", lambda f: f["conv"]["id"] == conv and f["conv"]["state"] == "active"
    )
    return any(a["id"] == agent.welcome["agent"]["id"] for a in frame["conv"]["agents"])


async def test_tabs_share_one_conversation(server: Server) -> None:
    shop, (agent,) = await chat(server)
    tab1 = await Client.visitor(server, shop.key)
    tab2 = await Client.visitor(server, shop.key, token=tab1.welcome["token"])
    assert tab2.welcome["visitor"] == tab1.welcome["visitor"]
    conv = (await first_message(tab1, "from tab one"))["conv"]
    await tab2.expect("conv", lambda f: f["conv"]["id"] == conv)
    ack2 = await tab2.request({"t": "send", "cid": "t2", "body": "from tab two"})
    assert ack2["conv"] == conv
    await tab1.expect("msg", lambda f: f["body"] == "from tab two")
    await agent.expect("conv", lambda f: f["conv"]["id"] == conv and f["conv"]["state"] == "active")
    await agent.request({"t": "send", "conv": conv, "cid": "r", "body": "reply to all tabs"})
    for tab in (tab1, tab2):
        await tab.expect("msg", lambda f: f["body"] == "reply to all tabs")
    tab3 = await Client.visitor(server, shop.key, token=tab1.welcome["token"])
    assert tab3.welcome["conv"] == conv


async def test_reconnect_recovers_exactly_the_missed_messages(server: Server) -> None:
    shop, (agent,) = await chat(server)
    visitor = await Client.visitor(server, shop.key, codec="msgpack")
    conv = (await first_message(visitor))["conv"]
    await agent.expect("conv", lambda f: f["conv"]["state"] == "active")
    await agent.request({"t": "send", "conv": conv, "cid": "a0", "body": "before drop"})
    seen = await visitor.expect("msg", lambda f: f["body"] == "before drop")
    epoch = (await visitor.expect("conv"))["conv"]["epoch"]
    token = visitor.welcome["token"]
    await visitor.close()

    for i in range(1, 21):
        await agent.request({"t": "send", "conv": conv, "cid": f"a{i}", "body": f"missed {i}"})
    back = await Client.visitor(server, shop.key, token=token, codec="msgpack")
    assert back.welcome["conv"] == conv
    reply = await history(back, conv, since=seen["offset"], epoch=epoch)
    assert reply["complete"] is True
    got = [m["body"] for m in reply["messages"]]
    assert got == [f"missed {i}" for i in range(1, 21)]
    offsets = [m["offset"] for m in reply["messages"]]
    assert offsets == list(range(seen["offset"] + 1, seen["offset"] + 21))
    # Live delivery continues after the recovered ones, without duplicates.
    await agent.request({"t": "send", "conv": conv, "cid": "a99", "body": "live again"})
    await back.expect("msg", lambda f: f["body"] == "live again")
    live = [f["offset"] for f in back.of("msg")]
    assert len(live) == len(set(live)) and all(o > offsets[-1] for o in live)

    stale = await history(back, conv, since=1, epoch="not-the-epoch")
    assert stale["complete"] is False and stale["messages"]


async def test_recovery_beyond_window_is_incomplete(server: Server) -> None:
    shop, (agent,) = await chat(server)
    visitor = await Client.visitor(server, shop.key)
    conv = (await first_message(visitor))["conv"]
    await agent.expect("conv", lambda f: f["conv"]["state"] == "active")
    epoch = (await visitor.expect("conv"))["conv"]["epoch"]
    token = visitor.welcome["token"]
    await visitor.close()
    # 520 entries while the visitor is away (written straight to the store:
    # the rate limit would make a client take half a minute).
    store = SQLiteStore(server.data / "chatserver.db")
    await store.start()
    for i in range(520):
        await store.append(conv, EntryKind.TEXT, AuthorKind.AGENT, "a", "A", f"n{i}", cid=f"b{i}")
    await store.close()
    back = await Client.visitor(server, shop.key, token=token)
    reply = await history(back, conv, since=1, epoch=epoch)
    assert reply["complete"] is False
    assert reply["more"] is True and len(reply["messages"]) == 50
    assert reply["messages"][-1]["body"] == "n519"
    page = await history(back, conv, before=reply["messages"][0]["offset"], limit=200)
    assert page["complete"] is True and len(page["messages"]) == 200
    assert page["messages"][-1]["offset"] == reply["messages"][0]["offset"] - 1


async def test_resend_with_same_cid_is_idempotent(server: Server) -> None:
    shop, (agent,) = await chat(server)
    visitor = await Client.visitor(server, shop.key)
    first = await first_message(visitor, "pay by invoice?", cid="same")
    await agent.expect("conv", lambda f: f["conv"]["state"] == "active")
    token = visitor.welcome["token"]
    await visitor.close()
    again = await Client.visitor(server, shop.key, token=token)
    dup = await again.request({"t": "send", "cid": "same", "body": "pay by invoice?"})
    assert dup["duplicate"] is True and dup["offset"] == first["offset"]
    hist = await history(agent, first["conv"], since=0)
    assert [m["body"] for m in hist["messages"] if m["kind"] == "text"] == ["pay by invoice?"]


async def test_bad_frames_get_errors_and_hub_keeps_serving(server: Server) -> None:
    shop, (agent,) = await chat(server)
    bad = await Client.visitor(server, shop.key)
    good = await Client.visitor(server, shop.key)
    await bad.send_raw(b"\xc1\xff not msgpack")
    await bad.send_raw("{not json")
    await bad.send_raw("[1, 2, 3]")
    await bad.send({"t": "no-such-type"})
    await bad.send({"t": "send", "cid": "x"})
    await bad.send({"t": "send", "cid": "x", "body": "y" * 4001})
    await bad.send({"t": "join", "conv": "c_x"})  # an agent frame
    await bad.send_raw("x" * 70_000)
    await bad.send({"t": "hello", "v": 1, "kind": "visitor", "site": shop.key})
    await asyncio.sleep(0.3)
    codes = [f["code"] for f in bad.of("error")]
    assert codes == [200, 200, 200, 202, 203, 208, 202, 201, 204], codes
    assert not bad.closed.done()
    ack = await first_message(good, "still serving?")
    await agent.expect("conv", lambda f: f["conv"]["id"] == ack["conv"])
    assert (await bad.request({"t": "ping"}))["t"] == "pong"


async def test_non_finite_numbers_are_bad_frames_in_both_codecs(server: Server) -> None:
    """JSON's NaN/Infinity (not JSON), 1e400 and msgpack's NaN/inf floats: ``200 bad_frame``."""
    shop = await seed(server.data)
    nan, inf = float("nan"), float("inf")
    sent: dict[str, list[bytes | str]] = {
        "json": [
            '{"t": "ping", "id": 1, "x": NaN}',
            '{"t": "attrs", "id": 2, "set": {"total": Infinity}}',
            '{"t": "history", "id": 3, "conv": "c_x", "limit": -Infinity}',
            '{"t": "ping", "id": 4, "x": -1e400}',
        ],
        "msgpack": [
            msgpack.packb({"t": "ping", "id": 1, "x": nan}),
            msgpack.packb({"t": "attrs", "id": 2, "set": {"total": inf}}),
            msgpack.packb({"t": "history", "id": 3, "conv": "c_x", "limit": -inf}),
            msgpack.packb({"t": "ping", "id": 4, "x": [-inf]}, use_single_float=True),
        ],
    }
    for codec, frames in sent.items():
        client = await Client.visitor(server, shop.key, codec=codec)
        for data in frames:
            await client.send_raw(data)
        assert (await client.request({"t": "ping"}))["t"] == "pong"  # answered in order
        errors = client.of("error")
        assert [(e["code"], "re" in e) for e in errors] == [(200, False)] * 4, errors
        assert len(client.of("pong")) == 1
        assert not client.closed.done()
    # In a hello: the connection closes with 4100 protocol_violation.
    for data in (
        f'{{"t": "hello", "v": 1, "kind": "visitor", "site": "{shop.key}", "x": NaN}}',
        msgpack.packb({"t": "hello", "v": 1, "kind": "visitor", "site": shop.key, "x": inf}),
    ):
        client = await Client.connect(server)
        await client.send_raw(data)
        code, _ = await asyncio.wait_for(client.closed, 5)
        assert code == 4100


async def test_protocol_violations_close_with_documented_codes(server: Server) -> None:
    shop = await seed(server.data)
    cases = [
        ({"t": "send", "cid": "1", "body": "no hello"}, 4100),
        ({"t": "hello", "v": 99, "kind": "visitor", "site": shop.key}, 4101),
        ({"t": "hello", "v": 1, "kind": "agent", "token": "forged.a_x.9999999999.sig"}, 4102),
        ({"t": "hello", "v": 1, "kind": "visitor", "site": "pk-unknown"}, 4103),
    ]
    for frame, code in cases:
        client = await Client.connect(server)
        await client.send(frame)
        got, _ = await asyncio.wait_for(client.closed, 5)
        assert got == code, (frame, got)


async def test_origin_is_checked(server: Server) -> None:
    shop = await seed(server.data, origins=("https://shop.example",))
    ok = await Client.connect(server, origin="https://shop.example")
    await ok.send({"t": "hello", "v": 1, "kind": "visitor", "site": shop.key})
    await ok.expect("welcome")
    evil = await Client.connect(server, origin="https://evil.example")
    await evil.send({"t": "hello", "v": 1, "kind": "visitor", "site": shop.key})
    assert (await asyncio.wait_for(evil.closed, 5))[0] == 4104


async def test_too_many_frames_are_rate_limited(server: Server) -> None:
    shop = await seed(server.data)
    visitor = await Client.visitor(server, shop.key)
    for _ in range(90):
        await visitor.send({"t": "ping"})
    await asyncio.sleep(0.3)
    assert visitor.of("error") and all(e["code"] == 102 for e in visitor.of("error"))
    assert 55 <= len(visitor.of("pong")) <= 75


async def test_visitor_cannot_touch_another_conversation(server: Server) -> None:
    shop, (agent,) = await chat(server)
    alice = await Client.visitor(server, shop.key)
    conv = (await first_message(alice, "my address is 1 Secret Lane"))["conv"]
    mallory = await Client.visitor(server, shop.key)
    for frame in (
        {"t": "history", "conv": conv, "since": 0},
        {"t": "send", "conv": conv, "cid": "m", "body": "hijack"},
        {"t": "read", "conv": conv, "offset": 1},
        {"t": "close", "conv": conv},
    ):
        reply = await mallory.request(frame)
        assert reply["t"] == "error" and reply["code"] == 205, (frame, reply)
    assert "Secret Lane" not in str(mallory.frames)
    assert "hijack" not in str(await history(agent, conv, since=0))


async def test_agent_cannot_open_another_sites_conversation(server: Server) -> None:
    shop_a, (agent_a,) = await chat(server)
    _, (agent_b,) = await chat(server)
    visitor = await Client.visitor(server, shop_a.key)
    conv = (await first_message(visitor, "site A secret"))["conv"]
    await agent_a.expect("conv", lambda f: f["conv"]["id"] == conv)
    for frame in (
        {"t": "history", "conv": conv, "since": 0},
        {"t": "join", "conv": conv},
        {"t": "watch", "conv": conv},
        {"t": "send", "conv": conv, "cid": "z", "body": "x"},
    ):
        reply = await agent_b.request(frame)
        assert reply["t"] == "error" and reply["code"] == 205, (frame, reply)
    assert "site A secret" not in str(agent_b.frames)
    assert not [f for f in agent_b.of("conv") if f["conv"]["id"] == conv]


async def test_returning_visitor_goes_back_to_previous_agent(server: Server) -> None:
    shop, agents = await chat(server, agents=3)
    visitor = await Client.visitor(server, shop.key)
    conv = (await first_message(visitor))["conv"]
    first = await visitor.expect("conv", lambda f: f["conv"]["state"] == "active")
    previous = first["conv"]["agents"][0]["id"]
    holder = next(a for a in agents if a.welcome["agent"]["id"] == previous)
    await holder.request({"t": "close", "conv": conv})
    # Other visitors arrive meanwhile, so least-loaded would pick someone else.
    others = [await Client.visitor(server, shop.key) for _ in range(2)]
    for o in others:
        await first_message(o)
    await asyncio.sleep(0.2)
    conv2 = (await first_message(visitor, "me again"))["conv"]
    assert conv2 != conv
    again = await visitor.expect(
        "conv", lambda f: f["conv"]["id"] == conv2 and f["conv"]["state"] == "active"
    )
    assert again["conv"]["agents"][0]["id"] == previous


async def test_agent_drop_keeps_chats_within_grace_then_requeues(own_server: Server) -> None:
    server = own_server
    shop = await seed(server.data, agents=2)
    server.grace = 1.5
    server.start()
    e0, e1 = list(shop.agents)
    a0 = await Client.agent(server, e0)
    visitor = await Client.visitor(server, shop.key)
    conv = (await first_message(visitor))["conv"]
    await a0.expect("conv", lambda f: f["conv"]["state"] == "active")

    # Dropping and coming back within the grace period changes nothing.
    await a0.close()
    await asyncio.sleep(0.3)
    a0 = await Client.agent(server, e0)
    assert any(c["id"] == conv and c["state"] == "active" for c in a0.welcome["conversations"])
    await asyncio.sleep(1.8)
    events = [m["data"]["event"] for m in visitor.of("msg") if m["kind"] == "event"]
    assert "left" not in events

    # Dropping for longer than the grace period requeues to a colleague.
    a1 = await Client.agent(server, e1)
    await a0.close()
    moved = await a1.expect(
        "conv",
        lambda f: (
            f["conv"]["id"] == conv
            and f["conv"]["state"] == "active"
            and f["conv"]["agents"][0]["id"] == shop.agents[e1]
        ),
        timeout=6,
    )
    assert moved
    left = await visitor.expect(
        "msg", lambda f: f["kind"] == "event" and f["data"]["event"] == "left"
    )
    assert left["data"]["agent"]["id"] == shop.agents[e0]


async def test_kill_9_and_restart_lose_no_acknowledged_message(own_server: Server) -> None:
    server = own_server
    shop = await seed(server.data)
    server.start()
    (email,) = shop.agents
    agent = await Client.agent(server, email)
    visitor = await Client.visitor(server, shop.key)
    conv = (await first_message(visitor, "m0", cid="c0"))["conv"]
    await agent.expect("conv", lambda f: f["conv"]["state"] == "active")
    acked: list[str] = ["m0"]

    async def writer(client: Client, prefix: str, conv_field: dict[str, str]) -> None:
        for i in range(10_000):
            try:
                reply = await client.request(
                    {"t": "send", "cid": f"{prefix}{i}", "body": f"{prefix}{i}", **conv_field},
                    timeout=2,
                )
            except (AssertionError, ConnectionClosed):  # no reply, or the socket is gone
                return
            if reply.get("t") == "ack":
                acked.append(f"{prefix}{i}")

    tasks = [
        asyncio.ensure_future(writer(visitor, "v", {})),
        asyncio.ensure_future(writer(agent, "a", {"conv": conv})),
    ]
    await asyncio.sleep(1.0)
    server.kill()
    await asyncio.gather(*tasks)
    assert len(acked) > 20
    server.start()
    agent2 = await Client.agent(server, email)
    stored: list[str] = []
    after = 0
    while True:
        page = await history(agent2, conv, since=after)
        if not page["messages"]:
            break
        stored += [m["body"] for m in page["messages"] if m["kind"] == "text"]
        after = page["messages"][-1]["offset"]
    missing = set(acked) - set(stored)
    assert not missing, sorted(missing)[:10]
    # The restarted server still routes: the chat is the agent's again.
    assert any(c["id"] == conv for c in agent2.welcome["conversations"])


async def test_visitors_learn_when_agents_come_and_go(server: Server) -> None:
    shop = await seed(server.data)
    visitor = await Client.visitor(server, shop.key)
    assert visitor.welcome["agents_online"] == 0
    (email,) = shop.agents
    agent = await Client.agent(server, email)
    assert (await visitor.expect("agents"))["online"] == 1
    await agent.request({"t": "status", "status": "away"})
    await visitor.expect("agents", lambda f: f["online"] == 0)
    mark = len(visitor.frames)
    await agent.request({"t": "status", "status": "online"})
    await visitor.expect("agents", lambda f: f["online"] == 1, after=mark)


async def test_leaving_agent_does_not_get_the_chat_back(server: Server) -> None:
    shop, (a0, a1) = await chat(server, agents=2)
    visitor = await Client.visitor(server, shop.key)
    conv = (await first_message(visitor))["conv"]
    holder, other = (a0, a1) if await _holds(a0, conv) else (a1, a0)
    await other.request({"t": "status", "status": "away"})
    mark = len(visitor.frames)
    assert (await holder.request({"t": "leave", "conv": conv}))["t"] == "ok"
    await visitor.expect("conv", lambda f: f["conv"]["state"] == "queued", after=mark)
    await asyncio.sleep(0.3)
    assert not [
        f for f in visitor.frames[mark:] if f["t"] == "conv" and f["conv"]["state"] == "active"
    ], "the agent who left got the chat straight back"
    await other.request({"t": "status", "status": "online"})
    taken = await visitor.expect(
        "conv",
        lambda f: (
            f["conv"]["state"] == "active"
            and f["conv"]["agents"][0]["id"] == other.welcome["agent"]["id"]
        ),
        after=mark,
    )
    assert taken


async def test_departments_are_checked(server: Server) -> None:
    shop, (agent,) = await chat(server, departments=("sales",))
    visitor = await Client.visitor(server, shop.key)
    bad = await visitor.request({"t": "send", "cid": "d", "body": "hi", "dept": "nope"})
    assert bad["t"] == "error" and bad["code"] == 205
    via_hello = await Client.visitor(server, shop.key, dept="sales")
    conv = (await first_message(via_hello))["conv"]
    state = await agent.expect("conv", lambda f: f["conv"]["id"] == conv)
    assert state["conv"]["department"] == "sales"


async def test_only_members_act_on_a_conversation(server: Server) -> None:
    shop, (a0, a1) = await chat(server, agents=2)
    visitor = await Client.visitor(server, shop.key)
    conv = (await first_message(visitor))["conv"]
    _, outsider = (a0, a1) if await _holds(a0, conv) else (a1, a0)
    for frame in (
        {"t": "close", "conv": conv},
        {"t": "transfer", "conv": conv, "agent": outsider.welcome["agent"]["id"]},
        {"t": "typing", "conv": conv, "on": True},
    ):
        reply = await outsider.request(frame)
        assert reply["t"] == "error" and reply["code"] == 206, (frame, reply)
    # Watching is allowed and shows the conversation live without joining it.
    assert (await outsider.request({"t": "watch", "conv": conv}))["t"] == "ok"
    await visitor.request({"t": "send", "cid": "w", "body": "seen by the watcher"})
    await outsider.expect("msg", lambda f: f["body"] == "seen by the watcher")


async def test_agent_typing_is_not_echoed_to_its_sender(server: Server) -> None:
    shop, (agent,) = await chat(server)
    visitor = await Client.visitor(server, shop.key)
    conv = (await first_message(visitor))["conv"]
    await agent.expect("conv", lambda f: f["conv"]["state"] == "active")
    await agent.send({"t": "typing", "conv": conv, "on": True})
    await visitor.expect("typing")
    await agent.quiet(0.2)
    assert not agent.of("typing")


async def test_permessage_deflate_is_not_negotiated(server: Server) -> None:
    import websockets

    # A client that asks for compression (the websockets default) gets none.
    async with websockets.connect(server.ws_url, subprotocols=["chatserver.json"]) as ws:
        assert ws.protocol.extensions == []
        assert "permessage-deflate" not in str(ws.response.headers.get("Sec-WebSocket-Extensions"))


async def test_lost_live_entries_are_filled_from_the_store(server: Server) -> None:
    shop, (agent,) = await chat(server)
    visitor = await Client.visitor(server, shop.key)
    conv = (await first_message(visitor))["conv"]
    await agent.expect("conv", lambda f: f["conv"]["state"] == "active")
    await visitor.expect("msg", lambda f: f["kind"] == "event")
    # Entries that were stored but whose live events never arrived (what a
    # pub/sub outage between processes does): written to the store directly.
    store = SQLiteStore(server.data / "chatserver.db")
    await store.start()
    for i in range(3):
        await store.append(
            conv, EntryKind.TEXT, AuthorKind.AGENT, "a", "A", f"lost {i}", cid=f"l{i}"
        )
    await store.append(conv, EntryKind.NOTE, AuthorKind.AGENT, "a", "A", "secret note", cid="n")
    await store.close()
    await agent.request({"t": "send", "conv": conv, "cid": "live", "body": "live one"})
    await visitor.expect("msg", lambda f: f["body"] == "live one")
    texts = visitor.texts(conv)
    assert texts[-4:] == ["lost 0", "lost 1", "lost 2", "live one"], texts
    offsets = [f["offset"] for f in visitor.of("msg", conv)]
    assert offsets == sorted(set(offsets))
    assert "secret note" not in str(visitor.frames)
    await agent.expect("msg", lambda f: f["body"] == "secret note")


async def test_follow_start_is_marked(server: Server) -> None:
    shop, (agent,) = await chat(server)
    visitor = await Client.visitor(server, shop.key)
    conv = (await first_message(visitor))["conv"]
    started = await agent.expect("conv", lambda f: f.get("follow") is True)
    assert started["conv"]["id"] == conv
    feed = [f for f in agent.of("conv") if not f.get("follow")]
    assert feed, "the site feed's snapshots carry no follow mark"
    assert (await visitor.expect("conv", lambda f: f.get("follow") is True))["conv"]["id"] == conv


async def test_agents_list_the_visitors_online(server: Server) -> None:
    shop, (agent,) = await chat(server)
    v1 = await Client.visitor(
        server, shop.key, page={"url": "https://shop/checkout", "title": "Pay"}
    )
    v2 = await Client.visitor(server, shop.key)
    reply = await agent.request({"t": "visitors"})
    assert reply["count"] == 2
    pages = {v["id"]: v.get("url") for v in reply["visitors"]}
    assert pages[v1.welcome["visitor"]] == "https://shop/checkout"
    # The newest tab's page is the visitor's current page.
    tab = await Client.visitor(
        server, shop.key, token=v1.welcome["token"], page={"url": "https://shop/p/1"}
    )
    reply = await agent.request({"t": "visitors"})
    assert {v["id"]: v.get("url") for v in reply["visitors"]}[v1.welcome["visitor"]] == (
        "https://shop/p/1"
    )
    await tab.close()
    assert (await agent.request({"t": "visitors"}))["count"] == 2  # v1 still has a tab
    await v1.close()
    await v2.close()
    await asyncio.sleep(0.2)
    assert (await agent.request({"t": "visitors"}))["count"] == 0
    not_for_visitors = await (await Client.visitor(server, shop.key)).request({"t": "visitors"})
    assert not_for_visitors["code"] == 202
