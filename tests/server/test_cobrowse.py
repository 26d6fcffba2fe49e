"""Co-browsing on the wire: real server processes, real WebSocket clients (docs/cobrowse.md).

Consent first (nothing streams before the visitor accepts, a decline streams
nothing), the stream reaching viewing member agents only, pointing, stop
from either side, resuming after a page load, checks on every frame, the
stream's own rate bucket, and a visitor and an agent on two processes
sharing one redis-server.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent_console.cobrowse import replay_csp
from chatserver.errors import ErrorCode
from chatserver.protocol.codec import Codec, Connection
from chatserver.protocol.frames import Limits
from chatserver.types import ClientKind, Role, Site

from ..conftest import Client, Server, console_login, seed
from ..redis_server import RedisServer

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_clients")]

SNAPSHOT = [
    {
        "type": 4,
        "timestamp": 1000,
        "data": {"href": "https://shop.example/", "width": 800, "height": 600},
    },
    {"type": 2, "timestamp": 1001, "data": {"node": {"type": 0, "id": 1, "childNodes": []}}},
]
CLICKED = [
    {"type": 3, "timestamp": 1500, "data": {"source": 2, "type": 2, "id": 5, "x": 1, "y": 2}}
]


async def chatting(server: Server, agents: int = 1, **kw: Any) -> tuple[Client, list[Client], str]:
    """A visitor in an active conversation with agent 0 (of ``agents``)."""
    shop = await seed(server.data, agents=agents, **kw)
    _KEYS[id(server), "key"] = shop.key
    clients = [await Client.agent(server, email) for email in shop.agents]
    visitor = await Client.visitor(server, shop.key)
    ack = await visitor.request({"t": "send", "cid": "m1", "body": "can you help me?"})
    conv = ack["conv"]
    await clients[0].expect(
        "conv", lambda f: f["conv"]["id"] == conv and f["conv"]["state"] == "active"
    )
    return visitor, clients, conv


def cobrowse_entry(client: Client, state: str, after: int = 0) -> Any:
    """Wait for the conversation's ``cobrowse`` event entry of ``state``."""
    return client.expect(
        "msg",
        lambda f: (
            f["kind"] == "event"
            and f.get("data", {}).get("event") == "cobrowse"
            and f["data"]["state"] == state
        ),
        after=after,
    )


async def start(visitor: Client, agent: Client, conv: str) -> dict[str, Any]:
    """Request, accept and view: a running co-browse; the visitor's accept reply."""
    asked = await agent.request({"t": "cobrowse", "conv": conv, "action": "request"})
    assert asked["t"] == "cobrowse" and asked["state"] == "requested", asked
    await cobrowse_entry(visitor, "requested")
    accepted = await visitor.request(
        {"t": "cobrowse", "conv": conv, "action": "accept", "offset": asked["offset"]}
    )
    assert accepted["t"] == "cobrowse" and accepted["state"] == "active", accepted
    viewing = await agent.request({"t": "cobrowse", "conv": conv, "action": "view"})
    assert viewing["state"] == "active" and viewing["viewing"] is True
    return accepted


async def test_consent_stream_point_and_stop(server: Server) -> None:
    visitor, (agent,), conv = await chatting(server)
    # Nothing may stream before the visitor accepts.
    early = await visitor.request(
        {"t": "cobrowse_events", "conv": conv, "seq": 0, "events": SNAPSHOT}
    )
    assert early["t"] == "error" and early["code"] == ErrorCode.NOT_ALLOWED
    view = await agent.request({"t": "cobrowse", "conv": conv, "action": "view"})
    assert view["state"] == "none" and view["agent"] is None

    # The request reaches the visitor as an entry naming the agent; a decline ends it.
    asked = await agent.request({"t": "cobrowse", "conv": conv, "action": "request"})
    entry = await cobrowse_entry(visitor, "requested")
    assert entry["data"]["agent"]["name"] == "Agent 0" and entry["offset"] == asked["offset"]
    declined = await visitor.request({"t": "cobrowse", "conv": conv, "action": "decline"})
    assert declined["state"] == "declined"
    await cobrowse_entry(agent, "declined")
    refused = await visitor.request(
        {"t": "cobrowse_events", "conv": conv, "seq": 0, "events": SNAPSHOT}
    )
    assert refused["code"] == ErrorCode.NOT_ALLOWED
    # an answer to a request that is no longer open is a conflict
    late = await visitor.request({"t": "cobrowse", "conv": conv, "action": "accept"})
    assert late["code"] == ErrorCode.CONFLICT

    await start(visitor, agent, conv)
    # the viewer's view asked the visitor's tab for a fresh snapshot
    await visitor.expect("cobrowse_snapshot", lambda f: f["conv"] == conv)
    await visitor.send({"t": "cobrowse_events", "conv": conv, "seq": 0, "events": SNAPSHOT})
    got = await agent.expect("cobrowse_events", lambda f: f["seq"] == 0)
    assert got["conv"] == conv and got["events"] == SNAPSHOT

    await agent.send({"t": "cobrowse_pointer", "conv": conv, "x": 120, "y": 1800})
    pointer = await visitor.expect("cobrowse_pointer")
    assert (pointer["x"], pointer["y"]) == (120, 1800)
    assert pointer["agent"]["name"] == "Agent 0"
    await agent.send({"t": "cobrowse_pointer", "conv": conv})
    hidden = await visitor.expect("cobrowse_pointer", lambda f: "x" not in f)
    assert hidden["conv"] == conv
    lit = await agent.request(
        {"t": "cobrowse_highlight", "conv": conv, "node": 5, "selector": "button.add"}
    )
    assert lit["t"] == "ok"
    highlight = await visitor.expect("cobrowse_highlight")
    assert highlight["node"] == 5 and highlight["selector"] == "button.add"

    # The agent stops: the visitor hears it, its stream is refused, the viewer gets nothing more.
    stopped = await agent.request({"t": "cobrowse", "conv": conv, "action": "stop"})
    assert stopped["state"] == "ended"
    ended = await cobrowse_entry(visitor, "ended")
    assert ended["data"]["by"]["kind"] == "agent"
    mark = len(agent.frames)
    after = await visitor.request(
        {"t": "cobrowse_events", "conv": conv, "seq": 1, "events": CLICKED}
    )
    assert after["code"] == ErrorCode.NOT_ALLOWED
    point = await agent.request({"t": "cobrowse_pointer", "conv": conv, "x": 1, "y": 1})
    assert point["code"] == ErrorCode.NOT_ALLOWED
    await agent.quiet(0.3)
    assert not agent.of("cobrowse_events")[mark:] and all(
        f["t"] != "cobrowse_events" for f in agent.frames[mark:]
    )


async def test_visitor_stops_and_declining_streams_nothing(server: Server) -> None:
    visitor, (agent,), conv = await chatting(server)
    await agent.request({"t": "cobrowse", "conv": conv, "action": "view"})
    await agent.request({"t": "cobrowse", "conv": conv, "action": "request"})
    await cobrowse_entry(visitor, "requested")
    await visitor.request({"t": "cobrowse", "conv": conv, "action": "decline"})
    for seq in range(3):
        await visitor.send({"t": "cobrowse_events", "conv": conv, "seq": seq, "events": SNAPSHOT})
    await visitor.request({"t": "ping"})
    await agent.quiet(0.3)
    assert agent.of("cobrowse_events") == []
    assert not visitor.of("cobrowse_snapshot")

    await start(visitor, agent, conv)
    stopped = await visitor.request({"t": "cobrowse", "conv": conv, "action": "stop"})
    assert stopped["state"] == "ended"
    ended = await cobrowse_entry(agent, "ended")
    assert ended["data"]["by"] == {"kind": "visitor", "id": visitor.welcome["visitor"]}
    again = await visitor.request({"t": "cobrowse", "conv": conv, "action": "stop"})
    assert again["state"] == "ended"  # stopping twice is harmless


async def test_only_members_and_the_conversations_visitor(server: Server) -> None:
    visitor, (agent, other), conv = await chatting(server, agents=2)
    for action in ("request", "view", "stop"):
        reply = await other.request({"t": "cobrowse", "conv": conv, "action": action})
        assert reply["code"] == ErrorCode.FORBIDDEN, (action, reply)
    await start(visitor, agent, conv)
    pointer = await other.request({"t": "cobrowse_pointer", "conv": conv, "x": 1, "y": 1})
    assert pointer["code"] == ErrorCode.NOT_ALLOWED
    # Another visitor of the site can neither answer nor stream for this conversation.
    stranger = await Client.visitor(server, _key(server))
    for frame in (
        {"t": "cobrowse", "conv": conv, "action": "stop"},
        {"t": "cobrowse", "conv": conv, "action": "resume", "offset": 1},
    ):
        reply = await stranger.request(frame)
        assert reply["code"] == ErrorCode.NOT_FOUND, reply
    reply = await stranger.request(
        {"t": "cobrowse_events", "conv": conv, "seq": 0, "events": SNAPSHOT}
    )
    assert reply["code"] == ErrorCode.NOT_ALLOWED
    # A second tab of the same visitor may stop it, but only the accepting tab streams.
    tab = await Client.visitor(server, _key(server), token=visitor.welcome["token"])
    reply = await tab.request({"t": "cobrowse_events", "conv": conv, "seq": 0, "events": SNAPSHOT})
    assert reply["code"] == ErrorCode.NOT_ALLOWED
    # An agent who leaves the conversation stops being able to point (checked again).
    await agent.request({"t": "leave", "conv": conv})
    await asyncio.sleep(5.2)  # past RECHECK
    reply = await agent.request({"t": "cobrowse_pointer", "conv": conv, "x": 1, "y": 1})
    assert reply["code"] == ErrorCode.FORBIDDEN
    reply = await agent.request({"t": "cobrowse_pointer", "conv": conv, "x": 1, "y": 1})
    assert reply["code"] == ErrorCode.NOT_ALLOWED  # and is no longer viewing


_KEYS: dict[tuple[int, str], str] = {}


def _key(server: Server) -> str:
    """The site key of the test's shop (set by ``chatting``)."""
    return _KEYS[id(server), "key"]


async def test_bad_stream_frames_are_refused_and_counted(server: Server) -> None:
    visitor, (agent,), conv = await chatting(server)
    await start(visitor, agent, conv)
    bad = [
        {"seq": 0},  # neither events nor parts
        {"seq": 0, "events": []},
        {"seq": 0, "events": ["x"]},
        {"seq": 0, "events": [{"type": 9, "timestamp": 1}]},
        {"seq": 0, "events": [{"type": True, "timestamp": 1}]},
        {"seq": 0, "events": [{"type": 3, "timestamp": -1}]},
        {"seq": 0, "events": [{"type": 3}]},
        {"seq": 0, "events": [{"type": 3, "timestamp": 1}] * 501},
        {"seq": 0, "part": 1, "parts": 2, "data": "x"},  # not from 0
        {"seq": 0, "part": 0, "parts": 2},  # no data
        {"seq": 0, "part": 2, "parts": 2, "data": "x"},
    ]
    for fields in bad:
        reply = await visitor.request({"t": "cobrowse_events", "conv": conv, **fields})
        assert reply["code"] == ErrorCode.INVALID_FIELD, (fields, reply)
    # parts in order reach the viewer in order; a part out of order is refused
    text = json.dumps(SNAPSHOT)
    chunks = [text[:40], text[40:80], text[80:]]
    for i, chunk in enumerate(chunks):
        await visitor.send(
            {"t": "cobrowse_events", "conv": conv, "seq": 7, "part": i, "parts": 3, "data": chunk}
        )
    await agent.expect("cobrowse_events", lambda f: f.get("part") == 2)
    parts = [f for f in agent.of("cobrowse_events") if f["seq"] == 7]
    assert [p["part"] for p in parts] == [0, 1, 2]
    assert json.loads("".join(p["data"] for p in parts)) == SNAPSHOT
    await visitor.send(
        {"t": "cobrowse_events", "conv": conv, "seq": 8, "part": 0, "parts": 3, "data": "["}
    )
    skip = await visitor.request(
        {"t": "cobrowse_events", "conv": conv, "seq": 8, "part": 2, "parts": 3, "data": "]"}
    )
    assert skip["code"] == ErrorCode.INVALID_FIELD
    # a highlight needs a node or a selector
    reply = await agent.request({"t": "cobrowse_highlight", "conv": conv})
    assert reply["code"] == ErrorCode.INVALID_FIELD


async def test_resume_after_a_page_load(server: Server) -> None:
    visitor, (agent,), conv = await chatting(server)
    accepted = await start(visitor, agent, conv)
    token = visitor.welcome["token"]
    key = _key(server)
    await visitor.close()
    # The page loads again (a new connection): the tab resumes with the offset it accepted.
    page2 = await Client.visitor(server, key, token=token)
    wrong = await page2.request(
        {"t": "cobrowse", "conv": conv, "action": "resume", "offset": accepted["offset"] + 1}
    )
    assert wrong["code"] == ErrorCode.CONFLICT
    resumed = await page2.request(
        {"t": "cobrowse", "conv": conv, "action": "resume", "offset": accepted["offset"]}
    )
    assert resumed["state"] == "active"
    # a viewer that joins late asks for a snapshot, and the resumed tab hears it
    snap = await agent.request({"t": "cobrowse", "conv": conv, "action": "snapshot"})
    assert snap["state"] == "active"
    await page2.expect("cobrowse_snapshot")
    await page2.send({"t": "cobrowse_events", "conv": conv, "seq": 0, "events": SNAPSHOT})
    await agent.expect("cobrowse_events")
    # Stopped by the agent while the page loads: the next page cannot resume.
    await page2.close()
    await agent.request({"t": "cobrowse", "conv": conv, "action": "stop"})
    page3 = await Client.visitor(server, key, token=token)
    refused = await page3.request(
        {"t": "cobrowse", "conv": conv, "action": "resume", "offset": accepted["offset"]}
    )
    assert refused["code"] == ErrorCode.CONFLICT
    # a closed conversation cannot be asked for again
    await agent.request({"t": "close", "conv": conv})
    reply = await agent.request({"t": "cobrowse", "conv": conv, "action": "request"})
    assert reply["code"] == ErrorCode.CONFLICT


async def test_stream_frames_have_their_own_rate_bucket() -> None:
    limits = Limits(
        rate_per_second=1.0, rate_burst=2.0, stream_rate_per_second=1.0, stream_rate_burst=5.0
    )
    conn = Connection(Codec.JSON, limits, now=0.0)
    conn.accept(ClientKind.VISITOR)
    frame = json.dumps({"t": "cobrowse_events", "conv": "c", "seq": 0, "events": CLICKED})
    for _ in range(5):
        assert conn.receive(frame, 0.0).type == "cobrowse_events"
    # the chat's bucket is untouched by the stream, and the stream's is spent
    assert conn.receive('{"t":"ping"}', 0.0).type == "ping"
    with pytest.raises(Exception) as exc:
        conn.receive(frame, 0.0)
    assert getattr(exc.value, "code", None) is ErrorCode.RATE_LIMITED


# -- several processes on one redis-server ---------------------------------------


@pytest.fixture
async def two(tmp_path: Path, redis: RedisServer) -> AsyncIterator[tuple[Server, Server]]:
    procs = [Server(tmp_path / f"p{i}", "--redis", redis.url) for i in range(2)]
    yield procs[0], procs[1]
    for proc in procs:
        proc.stop()


async def test_across_processes_on_redis(two: tuple[Server, Server], redis: RedisServer) -> None:
    a, b = two
    shop = await seed(a.data, redis_url=redis.url, roles={0: Role.AGENT})
    a.start()
    b.start()
    (email,) = shop.agents
    agent = await Client.agent(b, email, codec="msgpack")
    visitor = await Client.visitor(a, shop.key)
    ack = await visitor.request({"t": "send", "cid": "m1", "body": "help?"})
    conv = ack["conv"]
    await agent.expect("conv", lambda f: f["conv"]["id"] == conv and f["conv"]["state"] == "active")
    await start(visitor, agent, conv)
    await visitor.expect("cobrowse_snapshot")
    await visitor.send({"t": "cobrowse_events", "conv": conv, "seq": 0, "events": SNAPSHOT})
    got = await agent.expect("cobrowse_events")
    assert got["events"] == SNAPSHOT
    await agent.send({"t": "cobrowse_pointer", "conv": conv, "x": 3, "y": 4})
    assert (await visitor.expect("cobrowse_pointer"))["x"] == 3
    # a second viewer on the visitor's process: a fresh snapshot is asked for
    second = await Client.agent(a, email)
    mark = len(visitor.frames)
    await second.request({"t": "cobrowse", "conv": conv, "action": "view"})
    await visitor.expect("cobrowse_snapshot", after=mark)
    await visitor.send({"t": "cobrowse_events", "conv": conv, "seq": 1, "events": CLICKED})
    await second.expect("cobrowse_events", lambda f: f["seq"] == 1)
    await agent.expect("cobrowse_events", lambda f: f["seq"] == 1)
    # stop on the visitor's process ends it on the agent's
    await visitor.request({"t": "cobrowse", "conv": conv, "action": "stop"})
    await cobrowse_entry(agent, "ended")
    await asyncio.sleep(0.3)  # the end op reaches process b
    reply = await agent.request({"t": "cobrowse_pointer", "conv": conv, "x": 1, "y": 1})
    assert reply["code"] == ErrorCode.NOT_ALLOWED


async def test_console_page_is_for_the_conversations_agents(server: Server) -> None:
    _visitor, (agent, _other), conv = await chatting(server, agents=2)
    emails = [f"agent{i}-{agent.welcome['site']['id']}@test.shop" for i in range(2)]
    async with httpx.AsyncClient(base_url=server.url) as anon:
        page = await anon.get(f"/console/cobrowse/{conv}")
        assert page.status_code == 303 and "/console/login" in page.headers["location"]
    async with httpx.AsyncClient(base_url=server.url) as http:
        await console_login(http, emails[0])
        page = await http.get(f"/console/cobrowse/{conv}")
        assert page.status_code == 200
        assert f'data-conv="{conv}"' in page.text and 'src="/widget/replay.' in page.text
        csp = page.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "img-src 'self' data: blob: http: https:" in csp
        assert "frame-ancestors 'none'" in csp
        missing = await http.get("/console/cobrowse/c_nope")
        assert missing.status_code == 404
    async with httpx.AsyncClient(base_url=server.url) as http:
        await console_login(http, emails[1])  # of the site, not in the conversation
        page = await http.get(f"/console/cobrowse/{conv}")
        assert page.status_code == 403


async def test_replay_csp_names_the_sites_origins() -> None:
    site = Site("s_1", "pk", "Shop", allowed_origins=("https://shop.example", "http://old.example"))
    csp = replay_csp(site)
    assert "img-src 'self' data: blob: https://shop.example http://old.example;" in csp
    assert "script-src 'self';" in csp and "http: https:" not in csp
    assert "img-src 'self' data: blob: http: https:;" in replay_csp(Site("s_2", "pk2", "Any"))
