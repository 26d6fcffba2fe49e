"""A chatserver client written from docs/protocol.md alone, and tests that use it.

The two client classes below (``Visitor`` and ``Agent``) implement what the
protocol reference prescribes: their own frame encoding and decoding (§1.1,
§2), request ids (§2), token handling (§3.5, §3.6), per-conversation offset
bookkeeping (§7.1, §7.2), the reconnect-and-recover procedure (§7.3) and the
idempotent resend of pending messages (§7.4).  Only ``Server``, ``seed`` and
``PASSWORD`` come from ``tests/conftest.py``, to run a real server.

Every frame the server sends is also checked against the frame-shape rules of
§2 (replies carry ``re``, broadcasts never do, server frames use the negotiated
codec); anything that disagrees with the document is recorded in
``anomalies`` and the tests assert there is none.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgpack
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.conftest import PASSWORD, Server, seed

Frame = dict[str, Any]

SUBPROTOCOL = {"msgpack": "chatserver.msgpack", "json": "chatserver.json"}
REPLY_TYPES = {"welcome", "ack", "ok", "history", "pong"}  # §2: always carry `re`
BROADCAST_TYPES = {"msg", "conv", "queue", "preview", "typing", "read", "status", "agents"}
MAX_REQUEST_ID = 2**31 - 1  # §2
RECONNECT_CODES = set(range(4000, 4100)) | {1001, 1006, 1011, 1012}  # §3.8


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class ServerError(Exception):
    """An `error` frame answering one of our requests (§5.13)."""

    def __init__(self, frame: Frame) -> None:
        super().__init__(f"{frame.get('code')} {frame.get('message')}")
        self.code = frame.get("code")
        self.frame = frame


class Closed(Exception):
    """The connection ended while we waited for something."""


# --------------------------------------------------------------------------- codecs


def encode(frame: Frame, codec: str) -> bytes | str:
    """§1.1: binary messages are msgpack, text messages are JSON."""
    if codec == "msgpack":
        # str/bin distinction on; strings are `str` (no bin values allowed).
        return bytes(msgpack.packb(frame, use_bin_type=True))
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


def decode(raw: bytes | str) -> Frame:
    """Decode by WebSocket message type, as the server does."""
    value = msgpack.unpackb(raw, raw=False) if isinstance(raw, bytes) else json.loads(raw)
    if not isinstance(value, dict) or not isinstance(value.get("t"), str):
        raise ValueError(f"not a frame: {value!r}")
    return value


# ----------------------------------------------------------- per-conversation state


@dataclass
class ConvState:
    """Client state per conversation (§7.1): epoch, `last`, and our copy."""

    id: str
    epoch: str | None = None
    last: int = 0  # offset up to which `entries` is complete
    told: int = 0  # highest `conv` frame offset seen on the current connection
    snapshot: Frame = field(default_factory=dict)
    entries: dict[int, Frame] = field(default_factory=dict)  # offset -> entry
    syncing: bool = False  # a `history` recovery is in flight
    again: bool = False  # a `conv` frame asked for recovery while one was in flight
    dropped_copies: int = 0  # times the copy was dropped (epoch change, complete:false)

    def drop_copy(self, epoch: str | None) -> None:
        self.entries.clear()
        self.last = 0
        self.epoch = epoch
        self.dropped_copies += 1

    def ordered(self) -> list[Frame]:
        return [self.entries[o] for o in sorted(self.entries)]

    def texts(self) -> list[str]:
        return [e["body"] for e in self.ordered() if e["kind"] == "text"]


# ------------------------------------------------------------------- base client


class DocClient:
    """What visitors and agents share: transport, frames, requests, recovery."""

    kind = ""

    def __init__(self, server: Server, codec: str) -> None:
        self.server = server
        self.codec = codec
        self.ws: ClientConnection | None = None
        self.reader: asyncio.Task[None] | None = None
        self.ids = itertools.count(1)  # request ids, 1..2^31-1
        self.waiting: dict[int, asyncio.Future[Frame]] = {}
        self.frames: list[Frame] = []  # every frame received, all connections
        self.convs: dict[str, ConvState] = {}
        self.pending: dict[str, Frame] = {}  # cid -> `send` frame without ack (§7.4)
        self.acks: dict[str, Frame] = {}  # cid -> last ack
        self.welcome: Frame = {}
        self.anomalies: list[str] = []  # server behaviour that contradicts the doc
        self.failures: list[BaseException] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.changed = asyncio.Condition()
        self.close_code: int | None = None

    # -- transport

    async def _connect(self) -> None:
        ws = await websockets.connect(
            self.server.ws_url,
            subprotocols=[SUBPROTOCOL[self.codec]],  # type: ignore[list-item]
            compression=None,  # §1.2: permessage-deflate is off
        )
        if ws.subprotocol != SUBPROTOCOL[self.codec]:
            self.anomalies.append(f"§1.1: offered {self.codec}, echoed {ws.subprotocol!r}")
        self.ws = ws
        self.close_code = None
        self.reader = asyncio.create_task(self._read(ws))

    async def _hello(self, frame: Frame) -> Frame:
        """Send `hello` as the first frame; return the `welcome`."""
        welcome = await self.request(frame)
        if welcome.get("t") != "welcome" or welcome.get("v") != 1:
            raise AssertionError(f"expected welcome v1, got {welcome}")
        self.welcome = welcome
        return welcome

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                self._check_codec(raw)
                frame = decode(raw)
                self._check_shape(frame)
                self.frames.append(frame)
                self._dispatch(frame)
                async with self.changed:
                    self.changed.notify_all()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = ws.close_code
            for fut in self.waiting.values():
                if not fut.done():
                    fut.set_exception(Closed(f"connection closed ({ws.close_code})"))
            self.waiting.clear()
            async with self.changed:
                self.changed.notify_all()

    def _check_codec(self, raw: bytes | str) -> None:
        binary = isinstance(raw, bytes)
        if binary != (self.codec == "msgpack"):
            self.anomalies.append(f"§1.1: {self.codec} connection got a {type(raw).__name__}")

    def _check_shape(self, frame: Frame) -> None:
        t = frame["t"]
        if t in REPLY_TYPES and "re" not in frame:
            self.anomalies.append(f"§2: reply {t} without `re`: {frame}")
        if t in BROADCAST_TYPES and "re" in frame:
            self.anomalies.append(f"§2: broadcast {t} carries `re`: {frame}")

    async def send_frame(self, frame: Frame) -> None:
        if self.ws is None:
            raise Closed("not connected")
        await self.ws.send(encode(frame, self.codec))

    async def request(self, frame: Frame, timeout: float = 5.0) -> Frame:
        """Send with a fresh `id`; return the frame whose `re` is that id (§2)."""
        rid = next(self.ids)
        assert rid <= MAX_REQUEST_ID
        fut: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self.waiting[rid] = fut
        await self.send_frame({**frame, "id": rid})
        try:
            reply = await asyncio.wait_for(fut, timeout)
        finally:
            self.waiting.pop(rid, None)
        if reply["t"] == "error":
            raise ServerError(reply)
        return reply

    def drop(self) -> None:
        """Lose the connection abruptly: no close frame, the TCP connection is aborted."""
        assert self.ws is not None
        self.ws.transport.abort()

    async def wait_closed(self) -> None:
        if self.reader is not None:
            await self.reader

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(BaseException):
                await task
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            with contextlib.suppress(BaseException):
                await self.reader

    async def until(self, check: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
        """Wait until ``check()`` is true."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with self.changed:
            while not check():
                if self.failures:
                    raise self.failures[0]
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise AssertionError(f"timed out waiting for {what or check}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), remaining)

    def of(self, t: str) -> list[Frame]:
        return [f for f in self.frames if f["t"] == t]

    # -- frame handling

    def _dispatch(self, frame: Frame) -> None:
        t = frame["t"]
        re = frame.get("re")
        if re is not None and re in self.waiting:
            fut = self.waiting[re]
            if not fut.done():
                fut.set_result(frame)
        if t == "ack":
            self.acks[frame["cid"]] = frame
            self.pending.pop(frame["cid"], None)  # §7.4: durably stored
        elif t == "conv":
            self._on_conv(frame["conv"])
        elif t == "msg":
            self._on_msg(frame)

    def follows(self, conv: Frame) -> bool:
        """Whether this connection follows the conversation of a `conv` snapshot."""
        raise NotImplementedError

    def _on_conv(self, conv: Frame) -> None:
        st = self.convs.setdefault(conv["id"], ConvState(conv["id"]))
        st.snapshot = conv  # §5.4: a full snapshot, replace our copy
        if not self.follows(conv):
            return
        if st.epoch is not None and conv["epoch"] != st.epoch:
            st.drop_copy(conv["epoch"])  # §7.1
        st.epoch = conv["epoch"]
        news = conv["offset"] > st.told
        st.told = max(st.told, conv["offset"])
        # §7.2: after a `conv` frame, if offset > last, request history since last.
        # (A repeated snapshot, §5.4, asks for nothing new while a request is out.)
        if conv["offset"] > st.last and (news or not st.syncing):
            self._recover(st)

    def _on_msg(self, frame: Frame) -> None:
        st = self.convs.setdefault(frame["conv"], ConvState(frame["conv"]))
        entry = {k: v for k, v in frame.items() if k != "t"}
        offset = entry["offset"]
        if offset in st.entries:
            return  # already have it (recovery overlap)
        st.entries[offset] = entry
        # §7.1: once our copy is complete, every live msg raises `last`.
        if not st.syncing:
            st.last = max(st.last, offset)

    def _recover(self, st: ConvState) -> None:
        if st.syncing:
            st.again = True
            return
        st.syncing = True
        task = asyncio.create_task(self._sync(st))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _sync(self, st: ConvState) -> None:
        """§7.3 steps 3-4 for one conversation."""
        try:
            while True:
                st.again = False
                req: Frame = {"t": "history", "conv": st.id, "since": st.last}
                if st.epoch is not None:
                    req["epoch"] = st.epoch
                reply = await self.request(req)
                self._apply_history(st, reply)
                if not st.again and st.told <= st.last:
                    break
        except Closed:
            pass  # the next reconnect recovers again
        except Exception as exc:  # reported by `until` and checked at the end of each test
            self.failures.append(exc)
        finally:
            st.syncing = False
            async with self.changed:
                self.changed.notify_all()

    def _apply_history(self, st: ConvState, reply: Frame) -> None:
        if reply["complete"]:
            if st.epoch is not None and reply["epoch"] != st.epoch:
                st.drop_copy(reply["epoch"])
            for entry in reply["messages"]:
                st.entries.setdefault(entry["offset"], entry)  # ignore offsets we have
        else:
            # Recovery impossible: drop our copy, keep this (latest) page.
            st.drop_copy(reply["epoch"])
            for entry in reply["messages"]:
                st.entries[entry["offset"]] = entry
        st.epoch = reply["epoch"]
        # §7.1: `last` = larger of the conv frame's offset and the highest offset received.
        st.last = max([st.last, st.told, *st.entries])

    def synced(self, conv_id: str) -> bool:
        st = self.convs.get(conv_id)
        return st is not None and not st.syncing and st.last >= st.told

    # -- shared requests

    def new_cid(self) -> str:
        return f"{self.kind[0]}-{uuid.uuid4().hex[:16]}"

    async def post(self, frame: Frame) -> str:
        """Send a `send` frame without waiting for the ack; it stays pending (§7.4)."""
        self.pending[frame["cid"]] = frame
        await self.send_frame({**frame, "id": next(self.ids)})
        return str(frame["cid"])

    async def _send(self, frame: Frame) -> Frame:
        self.pending[frame["cid"]] = frame
        return await self.request(frame)

    async def resend_pending(self) -> list[Frame]:
        """§7.4: resend every pending frame, same `cid`, after reconnecting."""
        return [await self.request(frame) for frame in list(self.pending.values())]

    async def reconnect(self) -> None:
        """§7.3: reconnect, hello with our token, recover every conversation."""
        for st in self.convs.values():
            st.told = 0
        await self._connect()
        await self._hello(self._hello_frame())
        await self._initial_convs()  # step 2
        # Step 3: for each conversation we hold, history since `last` with its epoch
        # (unless the `conv` frame that follows `welcome` already started it, §7.2).
        for st in self.convs.values():
            if st.epoch is not None and not st.syncing:
                self._recover(st)
        await self.until(lambda: all(not st.syncing for st in self.convs.values()), what="recovery")
        await self.resend_pending()

    def _hello_frame(self) -> Frame:
        raise NotImplementedError

    async def _initial_convs(self) -> None:
        """Wait for the `conv` frames that follow `welcome`, where that is knowable."""


# ---------------------------------------------------------------------- visitor


class Visitor(DocClient):
    kind = "visitor"

    def __init__(self, server: Server, site: str, codec: str = "json") -> None:
        super().__init__(server, codec)
        self.site = site
        self.token: str | None = None  # "store it" (§3.3)
        self.visitor_id: str | None = None

    @classmethod
    async def open(cls, server: Server, site: str, codec: str = "json") -> Visitor:
        self = cls(server, site, codec)
        await self._connect()
        await self._hello(self._hello_frame())
        return self

    def _hello_frame(self) -> Frame:
        frame: Frame = {"t": "hello", "v": 1, "kind": "visitor", "site": self.site}
        if self.token is not None:
            frame["token"] = self.token
        return frame

    async def _hello(self, frame: Frame) -> Frame:
        welcome = await super()._hello(frame)
        if self.visitor_id is not None and welcome["visitor"] != self.visitor_id:
            self.anomalies.append(f"§3.5: token resumed another visitor: {welcome['visitor']}")
        self.visitor_id = welcome["visitor"]
        self.token = welcome["token"]  # it may differ from the one we sent
        return welcome

    async def _initial_convs(self) -> None:
        # §3.3: if `welcome.conv` is not null, its `conv` frame follows right after.
        conv = self.welcome["conv"]
        if conv is not None:
            start = self.frames.index(self.welcome)
            await self.until(
                lambda: any(
                    f["t"] == "conv" and f["conv"]["id"] == conv for f in self.frames[start:]
                ),
                what="conv frame after welcome",
            )

    def follows(self, conv: Frame) -> bool:
        return True  # a visitor gets `conv` frames only for conversations it follows

    async def send(self, body: str) -> Frame:
        return await self._send({"t": "send", "cid": self.new_cid(), "body": body})

    async def type(self, draft: str) -> None:
        await self.send_frame({"t": "typing", "draft": draft})

    def texts(self, conv: str) -> list[str]:
        return self.convs[conv].texts()


# ------------------------------------------------------------------------ agent


class Agent(DocClient):
    kind = "agent"

    def __init__(self, server: Server, email: str, codec: str = "json") -> None:
        super().__init__(server, codec)
        self.email = email
        self.token: str | None = None
        self.agent_id: str | None = None
        self.watched: set[str] = set()

    @classmethod
    async def open(cls, server: Server, email: str, codec: str = "json") -> Agent:
        self = cls(server, email, codec)
        await self.login()
        await self._connect()
        await self._hello(self._hello_frame())
        return self

    async def login(self) -> None:
        """§3.6: POST /api/login."""
        async with httpx.AsyncClient() as http:
            r = await http.post(
                f"{self.server.url}/api/login",
                json={"email": self.email, "password": PASSWORD},
            )
        assert r.status_code == 200, r.text
        body = r.json()
        self.token = body["token"]
        self.agent_id = body["agent"]["id"]

    def _hello_frame(self) -> Frame:
        return {"t": "hello", "v": 1, "kind": "agent", "token": self.token}

    async def _hello(self, frame: Frame) -> Frame:
        welcome = await super()._hello(frame)
        self.agent_id = welcome["agent"]["id"]
        for conv in welcome["conversations"]:
            self.convs.setdefault(conv["id"], ConvState(conv["id"])).snapshot = conv
        return welcome

    async def reconnect(self) -> None:
        await super().reconnect()
        for conv in sorted(self.watched):  # §7.3 step 5
            await self.request({"t": "watch", "conv": conv})

    def follows(self, conv: Frame) -> bool:
        members = {a["id"] for a in conv["agents"]}
        return self.agent_id in members or conv["id"] in self.watched

    async def send(self, conv: str, body: str, note: bool = False) -> Frame:
        frame: Frame = {"t": "send", "conv": conv, "cid": self.new_cid(), "body": body}
        if note:
            frame["note"] = True
        return await self._send(frame)

    def texts(self, conv: str) -> list[str]:
        return self.convs[conv].texts()

    def of_texts(self) -> list[str]:
        """Text bodies in every conversation this agent holds."""
        return [b for st in self.convs.values() for b in st.texts()]


# ------------------------------------------------------------------------- tests


@pytest.fixture
async def shop(tmp_path: Path) -> Any:
    data = tmp_path / "data"
    data.mkdir()
    made = await seed(data, agents=1)
    server = Server(data).start()
    try:
        yield server, made.key, next(iter(made.agents))
    finally:
        server.stop()


async def closing(*clients: DocClient) -> None:
    for c in clients:
        await c.close()
    for c in clients:
        assert c.failures == [], c.failures
        assert c.anomalies == [], c.anomalies


async def assigned(agent: Agent, conv: str) -> None:
    """Wait until the agent follows the conversation and holds a complete copy."""
    await agent.until(
        lambda: (
            conv in agent.convs
            and agent.follows(agent.convs[conv].snapshot or {"agents": [], "id": conv})
            and agent.convs[conv].told > 0
            and agent.synced(conv)
        ),
        what=f"agent following {conv}",
    )


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("visitor_codec", "agent_codec"), [("msgpack", "json"), ("json", "msgpack")]
)
async def test_chat_both_ways(shop: Any, visitor_codec: str, agent_codec: str) -> None:
    server, key, email = shop
    agent = await Agent.open(server, email, agent_codec)
    visitor = await Visitor.open(server, key, visitor_codec)
    try:
        assert visitor.welcome["conv"] is None
        assert visitor.welcome["agents_online"] == 1
        limits = {
            "max_frame_bytes": 65536,
            "max_message_chars": 4000,
            "max_preview_chars": 2000,
            "preview_interval": 0.1,
            "rate_per_second": 20.0,
            "rate_burst": 60.0,
        }
        assert visitor.welcome["limits"] == limits == agent.welcome["limits"]
        assert agent.welcome["status"] == "online"

        ack = await visitor.send("Hi! Is the blue mug in stock?")
        assert ack["t"] == "ack" and ack["offset"] == 1 and ack["duplicate"] is False
        conv = ack["conv"]
        assert visitor.pending == {}

        # Auto routing gives the conversation to the only online agent; it starts
        # following and recovers the visitor's first message with `history`.
        await assigned(agent, conv)
        await agent.until(lambda: agent.texts(conv) == ["Hi! Is the blue mug in stock?"])

        reply = await agent.send(conv, "Hello! Yes, 12 in stock.")
        assert reply["t"] == "ack" and reply["duplicate"] is False
        await visitor.until(lambda: "Hello! Yes, 12 in stock." in visitor.texts(conv))

        await visitor.send("Great, thanks.")
        expected = ["Hi! Is the blue mug in stock?", "Hello! Yes, 12 in stock.", "Great, thanks."]
        await agent.until(lambda: agent.texts(conv) == expected, what="agent copy")
        await visitor.until(lambda: visitor.texts(conv) == expected, what="visitor copy")

        # Both copies agree entry by entry (the visitor never gets notes; none here).
        assert [e["offset"] for e in visitor.convs[conv].ordered()] == [
            e["offset"] for e in agent.convs[conv].ordered()
        ]
        joined = [e for e in agent.convs[conv].ordered() if e["kind"] == "event"]
        assert joined and joined[0]["data"]["event"] == "joined"
        assert joined[0]["data"]["agent"]["id"] == agent.agent_id
    finally:
        await closing(visitor, agent)


@pytest.mark.anyio
async def test_typing_preview(shop: Any) -> None:
    server, key, email = shop
    agent = await Agent.open(server, email, "json")
    visitor = await Visitor.open(server, key, "msgpack")
    try:
        # §4.2: typing is ignored before the first send (no open conversation).
        await visitor.type("ignored draft")
        ack = await visitor.send("Hello")
        conv = ack["conv"]
        await assigned(agent, conv)
        await asyncio.sleep(0.3)
        assert agent.of("preview") == []

        def previews() -> list[str]:
            return [f["text"] for f in agent.of("preview") if f["conv"] == conv]

        # A draft arriving more than 100 ms after the last update is forwarded at once.
        await visitor.type("Can")
        await agent.until(lambda: previews() == ["Can"], what="leading-edge preview")

        # Drafts in quick succession: the first at once, then only the newest.
        await asyncio.sleep(0.3)
        await visitor.type("Can I")
        await visitor.type("Can I pay")
        await visitor.type("Can I pay by invoice?")
        await agent.until(lambda: previews()[-1:] == ["Can I pay by invoice?"], what="trailing")
        await asyncio.sleep(0.3)
        assert previews() == ["Can", "Can I", "Can I pay by invoice?"]

        # Cleared box: `""`.
        await asyncio.sleep(0.3)
        await visitor.type("")
        await agent.until(lambda: previews()[-1:] == [""], what="cleared preview")

        # A draft still held when the visitor sends is cancelled: no preview for it.
        await asyncio.sleep(0.3)
        await visitor.type("Or by card")  # forwarded at once
        await visitor.type("Or by card?")  # held (within 100 ms) ...
        await visitor.send("Or by card?")  # ... and cancelled by the send
        await agent.until(lambda: agent.texts(conv)[-1:] == ["Or by card?"], what="msg")
        await asyncio.sleep(0.3)
        assert previews()[-1] == "Or by card"
        assert "Or by card?" not in previews()

        # §8.2: agent typing reaches the visitor, not the agent's own connection.
        await agent.send_frame({"t": "typing", "conv": conv, "on": True})
        await visitor.until(lambda: bool(visitor.of("typing")), what="agent typing")
        typing = visitor.of("typing")[-1]
        assert typing["conv"] == conv and typing["on"] is True
        assert typing["from"]["kind"] == "agent" and typing["from"]["id"] == agent.agent_id
        await asyncio.sleep(0.2)
        assert agent.of("typing") == []

        # Drafts are never stored and go only to agents.
        assert visitor.of("preview") == []
        assert agent.texts(conv) == ["Hello", "Or by card?"]
        assert visitor.texts(conv) == ["Hello", "Or by card?"]
    finally:
        await closing(visitor, agent)


@pytest.mark.anyio
@pytest.mark.parametrize("visitor_codec", ["json", "msgpack"])
async def test_recovery_after_dropped_connection(shop: Any, visitor_codec: str) -> None:
    server, key, email = shop
    agent = await Agent.open(server, email, "json")
    visitor = await Visitor.open(server, key, visitor_codec)
    try:
        sent = ["I ordered a mug"]
        ack = await visitor.send(sent[0])
        conv = ack["conv"]
        await assigned(agent, conv)
        sent.append("Let me check")
        await agent.send(conv, sent[-1])
        await visitor.until(lambda: visitor.texts(conv) == sent, what="before the drop")
        last_before = visitor.convs[conv].last

        visitor.drop()
        await visitor.wait_closed()
        assert visitor.close_code == 1006  # lost without a close frame
        assert visitor.close_code in RECONNECT_CODES

        # Meanwhile the agent writes, including a note the visitor must never get.
        for i in range(5):
            sent.append(f"update {i}")
            await agent.send(conv, sent[-1])
            if i == 2:
                await agent.send(conv, "internal: customer is VIP", note=True)
        await agent.until(lambda: agent.texts(conv) == sent, what="agent copy")

        # Reconnect while the agent keeps writing: live msgs race the history reply.
        racing = [f"racing {i}" for i in range(8)]

        async def keep_writing() -> None:
            for body in racing:
                await agent.send(conv, body)
                await asyncio.sleep(0.002)

        await asyncio.gather(visitor.reconnect(), keep_writing())
        sent.extend(racing)
        assert visitor.token  # stored from the new welcome (§3.3)
        assert visitor.welcome["conv"] == conv
        st = visitor.convs[conv]
        assert st.last > last_before
        assert st.dropped_copies == 0

        # Live traffic keeps flowing after recovery.
        sent.append("Thanks, all clear")
        await agent.send(conv, sent[-1])
        await visitor.until(lambda: visitor.texts(conv)[-1:] == [sent[-1]], what="live msg")
        await asyncio.sleep(0.2)

        # No gap and no duplicate: exactly what was sent, in order, and no note.
        assert visitor.texts(conv) == sent
        offsets = [e["offset"] for e in st.ordered()]
        assert offsets == sorted(set(offsets))
        assert all(e["kind"] != "note" for e in st.ordered())
        assert st.last == agent.convs[conv].last
        # Every offset is there except the note's (§5.1: gaps where notes are).
        note_offsets = [e["offset"] for e in agent.convs[conv].ordered() if e["kind"] == "note"]
        assert sorted(offsets + note_offsets) == list(range(1, st.last + 1))
        # Received frames: no entry delivered twice as a live msg either.
        live = [(f["conv"], f["offset"]) for f in visitor.of("msg")]
        assert len(live) == len(set(live))
    finally:
        await closing(visitor, agent)


@pytest.mark.anyio
@pytest.mark.parametrize("wait_for_store", [True, False], ids=["stored", "maybe-stored"])
async def test_idempotent_resend(shop: Any, wait_for_store: bool) -> None:
    server, key, email = shop
    agent = await Agent.open(server, email, "msgpack")
    visitor = await Visitor.open(server, key, "json")
    try:
        ack = await visitor.send("first")
        conv = ack["conv"]
        await assigned(agent, conv)

        assert visitor.ws is not None
        if wait_for_store:
            # Stop reading so the ack cannot reach the client, and drop only once
            # the message is known to be stored (the agent got its broadcast).
            visitor.ws.transport.pause_reading()
            cid = await visitor.post({"t": "send", "cid": visitor.new_cid(), "body": "second"})
            await agent.until(lambda: "second" in agent.texts(conv), what="stored")
        else:
            cid = await visitor.post({"t": "send", "cid": visitor.new_cid(), "body": "second"})
        visitor.drop()  # right after sending: the ack is lost
        await visitor.wait_closed()
        assert cid in visitor.pending and cid not in visitor.acks

        await visitor.reconnect()  # resends the pending frame with the same cid
        assert visitor.pending == {}
        ack2 = visitor.acks[cid]
        assert ack2["conv"] == conv
        if wait_for_store:
            assert ack2["duplicate"] is True

        await agent.until(lambda: "second" in agent.texts(conv), what="agent copy")
        await visitor.until(lambda: "second" in visitor.texts(conv), what="visitor copy")
        await asyncio.sleep(0.3)

        # Stored once: one entry with that cid, in the store and in both copies.
        history = await agent.request({"t": "history", "conv": conv, "since": 0})
        assert history["complete"] is True
        stored = [e for e in history["messages"] if e.get("cid") == cid]
        assert len(stored) == 1
        assert stored[0]["offset"] == ack2["offset"]
        assert agent.texts(conv) == ["first", "second"]
        assert visitor.texts(conv) == ["first", "second"]
        broadcasts = [f for f in agent.of("msg") if f.get("cid") == cid]
        assert len(broadcasts) == 1
    finally:
        await closing(visitor, agent)


@pytest.mark.anyio
async def test_idempotent_resend_of_the_first_message(shop: Any) -> None:
    """The `send` that creates the conversation loses its ack; the resend (no `conv`)
    lands in the conversation the first copy created (§7.4) and stores nothing."""
    server, key, email = shop
    agent = await Agent.open(server, email, "json")
    visitor = await Visitor.open(server, key, "msgpack")
    try:
        assert visitor.ws is not None
        visitor.ws.transport.pause_reading()  # neither the `conv` frame nor the ack arrives
        cid = await visitor.post({"t": "send", "cid": visitor.new_cid(), "body": "hello?"})
        await agent.until(lambda: "hello?" in agent.of_texts(), what="stored")
        visitor.drop()
        await visitor.wait_closed()
        assert visitor.convs == {} and cid in visitor.pending

        await visitor.reconnect()
        conv = visitor.welcome["conv"]
        assert conv is not None
        ack = visitor.acks[cid]
        assert ack["duplicate"] is True and ack["conv"] == conv and ack["offset"] == 1
        await visitor.until(lambda: visitor.texts(conv) == ["hello?"], what="visitor copy")
        await assigned(agent, conv)
        await asyncio.sleep(0.3)
        history = await agent.request({"t": "history", "conv": conv, "since": 0})
        assert [e["body"] for e in history["messages"] if e["kind"] == "text"] == ["hello?"]
        assert visitor.texts(conv) == agent.texts(conv) == ["hello?"]
        convs = {f["conv"]["id"] for f in agent.of("conv")}
        assert convs == {conv}  # no second conversation was created
    finally:
        await closing(visitor, agent)
