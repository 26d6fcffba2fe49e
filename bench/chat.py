"""Chat participants (visitors and agents) as the load generator drives them.

A participant holds one link (``bench.links``), reacts to every frame from
inside the link's callback (no task per message) and sends on open-loop
timers: each stream (visitor messages, visitor typing previews, agent
messages) fires at ``t0 + phase + k / rate`` whatever the server does, so a
slow server cannot slow the offered load down (no coordinated omission).

Every payload carries its *scheduled* send time: a message body is
``"<tag>|<seq>|<t_us>|<padding>"`` and a typing draft is the same shape, with
``t_us`` the scheduled time in microseconds of ``CLOCK_MONOTONIC`` written in
letters (``stamp``: a long run of digits would be redacted by the server as a
card number being typed, chatserver/cards.py), which is
shared by all processes of the machine.  Receivers compute latency as
arrival time minus that, so latency includes the time a message waited
because the generator itself was late; ``Recorder.late`` measures that
lateness separately so a run can be declared invalid when the generator,
not the server, was the bottleneck.

Each participant also keeps a copy of its conversations the way
``docs/protocol.md`` §7 tells a client to (offsets, ``last``, recovery with
``history``), which lets the reconnect storm count gaps and duplicates.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import random
import time
from array import array
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .links import Link

LinkFactory = Callable[..., Awaitable[Link]]
NAN = math.nan


class Recorder:
    """What one worker measured.  Times are loop seconds (CLOCK_MONOTONIC)."""

    # The arrays (``reset`` makes each an empty ``array("d")``), in ARRAYS' order.
    msg_sent_t: array[float]  # scheduled time of each message sent
    msg_rcpt: array[float]  # recipients it should reach (not counting the sender)
    msg_dlv_t: array[float]  # scheduled time of each delivery
    msg_dlv_lat: array[float]  # its latency (NaN when it arrived through history)
    prev_sent_t: array[float]
    prev_rcpt: array[float]
    prev_dlv_t: array[float]
    prev_dlv_lat: array[float]
    ack_t: array[float]
    ack_lat: array[float]
    late_t: array[float]  # timer lateness of the generator: scheduled time ...
    late: array[float]  # ... and how late the callback ran
    ARRAYS = (
        "msg_sent_t",
        "msg_rcpt",
        "msg_dlv_t",
        "msg_dlv_lat",
        "prev_sent_t",
        "prev_rcpt",
        "prev_dlv_t",
        "prev_dlv_lat",
        "ack_t",
        "ack_lat",
        "late_t",
        "late",
    )

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        for name in self.ARRAYS:
            setattr(self, name, array("d"))
        self.counts: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.closes: Counter[str] = Counter()
        self.reconnect: list[float] = []  # drop → welcome, seconds
        self.recovered: list[float] = []  # drop → every conversation recovered

    def export(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: getattr(self, name).tobytes() for name in self.ARRAYS}
        out["counts"] = dict(self.counts)
        out["errors"] = dict(self.errors)
        out["closes"] = dict(self.closes)
        out["reconnect"] = self.reconnect
        out["recovered"] = self.recovered
        return out


_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def stamp(us: int) -> str:
    """Microseconds written in letters (base 26): no run of digits for the server's
    card-number and draft redaction to hide (chatserver/cards.py)."""
    out = []
    while True:
        us, digit = divmod(us, 26)
        out.append(_LETTERS[digit])
        if not us:
            return "".join(reversed(out))


def unstamp(text: str) -> int:
    value = 0
    for ch in text:
        index = _LETTERS.find(ch)
        if index < 0:
            raise ValueError(f"not a stamp: {text!r}")
        value = value * 26 + index
    return value


def payload(tag: str, seq: int, t: float, pad: str) -> str:
    """A benchmark body or draft: ``<tag>|<seq>|<stamp of t in µs>|<padding>``."""
    return f"{tag}|{seq}|{stamp(int(t * 1e6))}|{pad}"


def parse_payload(text: str) -> tuple[str, int, float] | None:
    """``(tag, seq, scheduled time)`` of a benchmark body or draft, else ``None``."""
    parts = text.split("|", 3)
    if len(parts) < 3:
        return None
    try:
        return parts[0], int(parts[1]), unstamp(parts[2]) / 1e6
    except ValueError:
        return None


@dataclass(slots=True)
class ConvCopy:
    """A participant's copy of one conversation (docs/protocol.md §7)."""

    id: str
    epoch: str | None = None
    last: int = 0  # complete up to here
    position: int = 0  # offset of the last conv frame on this connection
    live_max: int | None = None  # highest live offset on this connection
    recovering: bool = False
    state: str = "queued"
    agents: list[str] = field(default_factory=list)
    offsets: dict[int, tuple[str, int] | None] = field(default_factory=dict)
    idents: set[tuple[str, int]] = field(default_factory=set)


class Stream:
    """One open-loop periodic sender: ``tick(stream)`` runs at ``next``, every ``period``."""

    __slots__ = ("active", "fire", "next", "period", "stop", "tick")

    def __init__(
        self,
        tick: Callable[[Stream], None],
        fire: Callable[[float], None],
        period: float,
        start: float,
        stop: float,
    ):
        self.tick = tick
        self.fire = fire
        self.period = period
        self.next = start
        self.stop = stop
        self.active = True


class Timers:
    """The timers of every stream of a worker, on one asyncio timer.

    asyncio orders its timers with ``TimerHandle.__lt__``, a Python method,
    so with thousands of streams every re-arm costs a few dozen Python calls.
    This heap holds ``(time, n, stream)`` tuples, compared in C, and keeps one
    loop timer armed at the earliest.  Each stream still runs at its own
    scheduled time: a wake-up runs every stream due by then, within the
    clock's resolution, as asyncio's loop does with its own timers.

    Times are ``time.monotonic()``, the clock of asyncio's loop, read directly:
    ``asyncio.get_running_loop()`` costs a ``getpid()`` system call each time.
    """

    _RESOLUTION = time.get_clock_info("monotonic").resolution

    def __init__(self) -> None:
        self.heap: list[tuple[float, int, Stream]] = []
        self.n = 0
        self.handle: asyncio.TimerHandle | None = None
        self.armed = math.inf  # when ``handle`` fires
        self.running = False
        self.loop: asyncio.AbstractEventLoop | None = None

    def add(self, stream: Stream) -> None:
        self.n += 1
        heapq.heappush(self.heap, (stream.next, self.n, stream))
        if not self.running and stream.next < self.armed:
            self._arm(stream.next)

    def _arm(self, when: float) -> None:
        if self.handle is not None:
            self.handle.cancel()
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        self.handle = self.loop.call_at(when, self._run)
        self.armed = when

    def _run(self) -> None:
        self.handle, self.armed = None, math.inf
        heap, pop = self.heap, heapq.heappop
        end = time.monotonic() + self._RESOLUTION
        self.running = True
        try:
            while heap and heap[0][0] <= end:
                stream = pop(heap)[2]
                if stream.active:
                    stream.tick(stream)
        finally:
            self.running = False
        if heap:
            self._arm(heap[0][0])


class Participant:
    kind = ""

    def __init__(self, ctx: Context, tag: str, hello: dict[str, Any]) -> None:
        self.ctx = ctx
        self.rec = ctx.rec
        self.tag = tag
        self.hello = hello
        self.token: str | None = hello.get("token")
        self.link: Link | None = None
        self.url: str | None = None  # the server process to use, when not the target's first
        self.id: str | None = None
        self.rid = 0
        self.seq = 0
        self.pending: dict[str, tuple[dict[str, Any], float]] = {}
        self.sent_cids: dict[str, str | None] = {}  # cid -> conversation (None: the open one)
        self.convs: dict[str, ConvCopy] = {}
        self.requests: dict[int, tuple[str, str]] = {}
        self.streams: list[Stream] = []
        self.stalled = False
        self.dropping = False  # a drop we caused: do not count the close
        self.welcome: asyncio.Future[dict[str, Any]] | None = None
        self.rcvbuf: int | None = None
        self.lost_at: float | None = None
        self.close_code: int | None = None
        self.verify: Counter[str] = Counter()
        self._handlers: dict[str, Callable[[dict[str, Any], float], None]] = {
            "welcome": self._on_welcome,
            "ack": self._on_ack,
            "msg": self._on_msg,
            "preview": self._on_preview,
            "conv": self._on_conv,
            "history": self._on_history,
            "error": self._on_error,
        }

    # -- connection --------------------------------------------------------

    def next_rid(self) -> int:
        self.rid += 1
        return self.rid

    async def connect(self, timeout: float = 30.0) -> None:
        loop = asyncio.get_running_loop()
        kw: dict[str, Any] = {"timeout": timeout}
        if self.rcvbuf is not None:
            kw["rcvbuf"] = self.rcvbuf
        if self.url is not None:
            kw["url"] = self.url
        link = await self.ctx.link_factory(**kw)
        self.link = link
        link.on_frame = self._on_frame
        link.on_close = lambda code: self._on_close(link, code)
        for conv in self.convs.values():
            conv.live_max = None
            conv.position = 0
            conv.recovering = False
        self.welcome = loop.create_future()
        hello = dict(self.hello)
        hello["id"] = self.next_rid()
        if self.token:
            hello["token"] = self.token
        link.send(hello)
        await asyncio.wait_for(self.welcome, timeout)

    def _on_close(self, link: Link, code: int | None) -> None:
        if link is not self.link:
            return  # an old connection we dropped ourselves
        self.close_code = code
        self.lost_at = asyncio.get_running_loop().time()
        if not self.dropping:
            self.rec.closes[str(code)] += 1
        if self.welcome is not None and not self.welcome.done():
            self.welcome.set_exception(ConnectionError(f"closed before welcome ({code})"))

    def send(self, frame: dict[str, Any]) -> bool:
        link = self.link
        if link is None or not link.ws.open or self.dropping:
            return False
        link.send(frame)
        return True

    # -- inbound -------------------------------------------------------------

    def _on_frame(self, frame: dict[str, Any], now: float) -> None:
        handler = self._handlers.get(frame.get("t", ""))
        if handler is not None:
            handler(frame, now)

    def _on_welcome(self, frame: dict[str, Any], now: float) -> None:
        self._welcomed(frame)
        if self.welcome is not None and not self.welcome.done():
            self.welcome.set_result(frame)

    def _welcomed(self, frame: dict[str, Any]) -> None:
        raise NotImplementedError

    def _on_error(self, frame: dict[str, Any], now: float) -> None:
        self.rec.errors[str(frame.get("code"))] += 1

    def _on_ack(self, frame: dict[str, Any], now: float) -> None:
        pending = self.pending.pop(frame.get("cid", ""), None)
        if frame.get("duplicate"):
            self.rec.counts["duplicate_acks"] += 1
        if pending is not None:
            t = pending[1]
            if t > 0:
                self.rec.ack_t.append(t)
                self.rec.ack_lat.append(now - t)

    def _copy(self, conv_id: str) -> ConvCopy:
        conv = self.convs.get(conv_id)
        if conv is None:
            conv = self.convs[conv_id] = ConvCopy(conv_id)
        return conv

    def _on_conv(self, frame: dict[str, Any], now: float) -> None:
        data = frame["conv"]
        mine = self._concerns(data)
        if not mine:
            return
        conv = self._copy(data["id"])
        conv.state = data.get("state", "active")
        conv.agents = [a["id"] for a in data.get("agents", ())]
        epoch = data.get("epoch")
        if conv.epoch is not None and epoch != conv.epoch:
            self.rec.counts["epoch_changes"] += 1
            conv.offsets.clear()
            conv.idents.clear()
            conv.last = 0
        conv.epoch = epoch
        position = int(data.get("offset", 0))
        conv.position = max(conv.position, position)
        if conv.live_max is None:
            # The first conv frame on this connection is the follow point (§7.2);
            # later ones (site feed, state changes) are snapshots that may lag.
            conv.live_max = position
        if position > conv.last and not conv.recovering:
            self._recover(conv)
        self._conv_changed(conv)

    def _concerns(self, data: dict[str, Any]) -> bool:
        return True

    def _conv_changed(self, conv: ConvCopy) -> None:
        pass

    def _recover(self, conv: ConvCopy) -> None:
        rid = self.next_rid()
        self.requests[rid] = ("recover", conv.id)
        conv.recovering = True
        frame = {"t": "history", "id": rid, "conv": conv.id, "since": conv.last}
        if conv.epoch:
            frame["epoch"] = conv.epoch
        if not self.send(frame):
            conv.recovering = False
        self.rec.counts["history_requests"] += 1

    def _on_history(self, frame: dict[str, Any], now: float) -> None:
        purpose, conv_id = self.requests.pop(frame.get("re") or 0, ("", frame.get("conv", "")))
        conv = self._copy(conv_id)
        messages = frame.get("messages", [])
        if purpose == "verify":
            self._verify(conv, frame)
            return
        conv.recovering = False
        if not frame.get("complete", True):
            self.rec.counts["recovery_incomplete"] += 1
        highest = 0
        for m in messages:
            self._entry(conv, m["offset"], m, now, live=False)
            highest = max(highest, m["offset"])
        conv.last = max(conv.last, conv.position, highest)

    def _on_msg(self, frame: dict[str, Any], now: float) -> None:
        conv = self._copy(frame["conv"])
        offset = frame["offset"]
        live_max = conv.live_max
        if live_max is not None:
            # §7.2: after a conv frame at P, offsets > P arrive live exactly once, in order.
            if offset <= live_max:
                self.rec.counts["live_duplicates"] += 1
            elif offset > live_max + 1:
                self.rec.counts["live_gaps"] += offset - live_max - 1
            conv.live_max = max(live_max, offset)
        else:
            conv.live_max = offset
        self._entry(conv, offset, frame, now, live=True)
        if not conv.recovering and offset > conv.last:
            conv.last = offset

    def _entry(
        self, conv: ConvCopy, offset: int, m: dict[str, Any], now: float, live: bool
    ) -> None:
        if offset in conv.offsets:
            return
        parsed = parse_payload(m.get("body", "")) if m.get("kind") == "text" else None
        if parsed is None:
            conv.offsets[offset] = None
            return
        tag, seq, t = parsed
        ident = (tag, seq)
        conv.offsets[offset] = ident
        if ident in conv.idents:
            self.rec.counts["stored_duplicates"] += 1
            return
        conv.idents.add(ident)
        if tag == self.tag or self.stalled or t <= 0:
            return
        rec = self.rec
        rec.msg_dlv_t.append(t)
        rec.msg_dlv_lat.append(now - t if live else NAN)
        if not live:
            rec.counts["delivered_by_history"] += 1

    def _on_preview(self, frame: dict[str, Any], now: float) -> None:
        parsed = parse_payload(frame.get("text", ""))
        if parsed is None or self.stalled or parsed[2] <= 0:
            return
        self.rec.prev_dlv_t.append(parsed[2])
        self.rec.prev_dlv_lat.append(now - parsed[2])

    # -- outbound --------------------------------------------------------------

    def send_message(self, t: float, conv_id: str | None, recipients: int, pad: str) -> None:
        self.seq += 1
        cid = f"{self.tag}.{self.seq}"
        frame: dict[str, Any] = {
            "t": "send",
            "id": self.next_rid(),
            "cid": cid,
            "body": payload(self.tag, self.seq, t, pad),
        }
        if conv_id is not None:
            frame["conv"] = conv_id
        self.pending[cid] = (frame, t)
        self.sent_cids[cid] = conv_id
        if t > 0:
            self.rec.msg_sent_t.append(t)
            self.rec.msg_rcpt.append(recipients)
        self.send(frame)

    def resend_pending(self) -> None:
        """After a reconnect: every unacknowledged message again, same ``cid``."""
        for frame, _t in list(self.pending.values()):
            frame["id"] = self.next_rid()
            if self.send(frame):
                self.rec.counts["resent"] += 1

    def start_stream(
        self, fire: Callable[[float], None], rate: float, t0: float, stop: float
    ) -> None:
        if rate <= 0:
            return
        period = 1.0 / rate
        stream = Stream(self._tick, fire, period, t0 + random.random() * period, stop)
        if stream.next < stop:
            self.ctx.timers.add(stream)
            self.streams.append(stream)

    def _tick(self, stream: Stream) -> None:
        t = stream.next
        rec = self.rec
        rec.late_t.append(t)
        rec.late.append(time.monotonic() - t)
        if not self.stalled:
            stream.fire(t)
        stream.next = t + stream.period
        if stream.next < stream.stop and not self.stalled:
            self.ctx.timers.add(stream)
        else:
            stream.active = False

    def stop_streams(self) -> None:
        for s in self.streams:
            s.active = False
        self.streams.clear()

    # -- verification ------------------------------------------------------------

    def request_verify(self) -> int:
        """Ask for the full history of every conversation; ``_verify`` checks it."""
        n = 0
        for conv in self.convs.values():
            if not self._verifiable(conv):
                continue
            rid = self.next_rid()
            self.requests[rid] = ("verify", conv.id)
            if self.send({"t": "history", "id": rid, "conv": conv.id, "since": 0}):
                n += 1
        return n

    def _verifiable(self, conv: ConvCopy) -> bool:
        return True

    def _verify(self, conv: ConvCopy, frame: dict[str, Any]) -> None:
        v = self.verify
        v["replies"] += 1
        if not frame.get("complete"):
            v["incomplete"] += 1
            return
        offsets: set[int] = set()
        cids: Counter[tuple[str, str]] = Counter()
        for m in frame.get("messages", []):
            offsets.add(m["offset"])
            if m.get("cid") is not None:
                cids[(m["from"]["id"], m["cid"])] += 1
        v["gaps"] += len(offsets - conv.offsets.keys())
        v["stored_duplicates"] += sum(n - 1 for n in cids.values() if n > 1)
        own = {cid for (author, cid) in cids if author == self.id}
        mine = {c for c, where in self.sent_cids.items() if where in (None, conv.id)}
        v["lost"] += len(mine - own)
        v["entries"] += len(offsets)


class Visitor(Participant):
    kind = "visitor"

    def __init__(self, ctx: Context, tag: str, site: str) -> None:
        super().__init__(ctx, tag, {"t": "hello", "v": 1, "kind": "visitor", "site": site})
        self.conv_id: str | None = None

    def _verifiable(self, conv: ConvCopy) -> bool:
        return conv.id == self.conv_id

    def _welcomed(self, frame: dict[str, Any]) -> None:
        self.id = frame.get("visitor")
        if frame.get("token"):
            self.token = frame["token"]

    def _on_ack(self, frame: dict[str, Any], now: float) -> None:
        if frame.get("conv"):
            self.conv_id = frame["conv"]
        super()._on_ack(frame, now)

    def _conv_changed(self, conv: ConvCopy) -> None:
        if self.conv_id is None:
            self.conv_id = conv.id

    @property
    def conv(self) -> ConvCopy | None:
        return self.convs.get(self.conv_id or "")

    def open(self) -> None:
        """The first message: creates the conversation (not measured)."""
        self.send_message(0.0, None, 0, "open")

    def recipients(self) -> int:
        conv = self.convs.get(self.conv_id or "")
        if conv is None:
            return 0
        stalled = self.ctx.stalled_ids
        if not stalled:
            return len(conv.agents)
        return sum(1 for a in conv.agents if a not in stalled)

    def start(self, t0: float, stop: float, msg_rate: float, typing_rate: float, pad: str) -> None:
        def message(t: float) -> None:
            self.send_message(t, self.conv_id, self.recipients(), pad)

        def typing(t: float) -> None:
            self.seq += 1
            n = self.recipients()
            self.rec.prev_sent_t.append(t)
            self.rec.prev_rcpt.append(n)
            self.send({"t": "typing", "draft": payload(self.tag, self.seq, t, pad)})

        self.start_stream(message, msg_rate, t0, stop)
        self.start_stream(typing, typing_rate, t0, stop)


class Agent(Participant):
    kind = "agent"

    def __init__(self, ctx: Context, tag: str, site: str, token: str | None, capacity: int) -> None:
        hello = {
            "t": "hello",
            "v": 1,
            "kind": "agent",
            "site": site,
            "name": tag,
            "capacity": capacity,
        }
        if token:
            hello["token"] = token
        super().__init__(ctx, tag, hello)
        self.mine: list[str] = []  # conversations this agent is a member of
        self._rr = 0

    def _welcomed(self, frame: dict[str, Any]) -> None:
        self.id = frame["agent"]["id"]

    def _concerns(self, data: dict[str, Any]) -> bool:
        return any(a["id"] == self.id for a in data.get("agents", ())) or data["id"] in self.convs

    def _conv_changed(self, conv: ConvCopy) -> None:
        member = self.id in conv.agents and conv.state != "closed"
        if member and conv.id not in self.mine:
            self.mine.append(conv.id)
        elif not member and conv.id in self.mine:
            self.mine.remove(conv.id)

    def _verifiable(self, conv: ConvCopy) -> bool:
        return conv.id in self.mine

    def start(self, t0: float, stop: float, per_conv_rate: float, pad: str) -> None:
        stalled = self.ctx.stalled_ids

        def message(t: float) -> None:
            if not self.mine:
                return
            conv_id = self.mine[self._rr % len(self.mine)]
            self._rr += 1
            conv = self.convs[conv_id]
            others = sum(1 for a in conv.agents if a != self.id and a not in stalled)
            self.send_message(t, conv_id, 1 + others, pad)

        self.start_stream(message, per_conv_rate * len(self.mine), t0, stop)


@dataclass
class Context:
    """What the participants of one worker share."""

    link_factory: LinkFactory
    rec: Recorder = field(default_factory=Recorder)
    stalled_ids: set[str] = field(default_factory=set)
    timers: Timers = field(default_factory=Timers)
