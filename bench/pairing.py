"""In-memory visitor-to-agent pairing shared by the two baseline servers.

The baselines implement the part of chatserver's protocol the benchmark
drives, with the same frames, so the load generator talks to all three
servers with one client:

* ``hello`` (visitor: ``site``; agent: ``site``, ``name``, ``capacity``) →
  ``welcome``.  No authentication.
* the visitor's first ``send`` creates a conversation and assigns it to the
  least-loaded agent of the site that has room (or queues it until an agent
  connects); both sides get a ``conv`` frame.
* ``send`` → ``ack`` to the sender, ``msg`` (with a per-conversation offset) to
  every member, sender included, as chatserver does.
* visitor ``typing`` → ``preview`` to the conversation's agents (forwarded at
  once: at the benchmark's rates chatserver's 100 ms coalescing never merges
  two drafts); agent ``typing`` → ``typing`` to the other members.
* ``join`` adds an agent to a conversation (fan-out scenario).

What the baselines leave out, and chatserver does not: persistence (SQLite,
durable acks), idempotent ``cid``, history and recovery, rate limiting, frame
validation, bounded outboxes, grace periods, the site feed.  They are the
floor (bare ``websockets``) and the usual pick (python-socketio) for *relaying*,
not equivalent products.

``Relay`` does no I/O.  Its methods return what to send; a member's
``handle`` is whatever the server uses to reach it (a websocket, a sid).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]


@dataclass(eq=False, slots=True)
class Member:
    kind: str
    site: str
    id: str
    name: str
    handle: Any
    capacity: int = 0
    load: int = 0
    conv: Conv | None = None  # a visitor's conversation


@dataclass(eq=False, slots=True)
class Conv:
    id: str
    site: str
    visitor: Member
    agents: list[Member] = field(default_factory=list)
    offset: int = 0

    def summary(self) -> JSON:
        return {
            "id": self.id,
            "visitor": self.visitor.id,
            "state": "active" if self.agents else "queued",
            "epoch": "baseline",
            "offset": self.offset,
            "agents": [{"id": a.id, "name": a.name} for a in self.agents],
        }

    def members(self) -> list[Member]:
        return [self.visitor, *self.agents]


Out = list[tuple[list[Member], JSON]]  # frames to send and to whom


class Relay:
    def __init__(self) -> None:
        self.agents: dict[str, list[Member]] = {}
        self.queue: dict[str, list[Conv]] = {}
        self.convs: dict[str, Conv] = {}
        self._ids = itertools.count(1)

    def hello(self, handle: Any, frame: JSON) -> tuple[Member, Out]:
        kind = frame.get("kind")
        site = str(frame.get("site"))
        if kind == "agent":
            name = str(frame.get("name") or f"agent{next(self._ids)}")
            member = Member("agent", site, name, name, handle, int(frame.get("capacity") or 1))
            self.agents.setdefault(site, []).append(member)
            welcome = {
                "t": "welcome",
                "v": 1,
                "re": frame.get("id"),
                "agent": {"id": member.id, "name": member.name, "capacity": member.capacity},
            }
            out: Out = [([member], welcome)]
            out += self._drain(site)
            return member, out
        member = Member("visitor", site, f"v{next(self._ids)}", "", handle)
        welcome = {"t": "welcome", "v": 1, "re": frame.get("id"), "visitor": member.id}
        return member, [([member], welcome)]

    def _free_agent(self, site: str) -> Member | None:
        best = None
        for agent in self.agents.get(site, ()):
            if agent.load < agent.capacity and (best is None or agent.load < best.load):
                best = agent
        return best

    def _assign(self, conv: Conv, agent: Member) -> Out:
        conv.agents.append(agent)
        agent.load += 1
        return [(conv.members(), {"t": "conv", "conv": conv.summary()})]

    def _drain(self, site: str) -> Out:
        out: Out = []
        waiting = self.queue.get(site, [])
        while waiting:
            agent = self._free_agent(site)
            if agent is None:
                break
            out += self._assign(waiting.pop(0), agent)
        return out

    def send(self, member: Member, frame: JSON) -> Out:
        conv = member.conv if member.kind == "visitor" else self.convs.get(frame.get("conv", ""))
        out: Out = []
        if conv is None:
            if member.kind != "visitor":
                return [([member], {"t": "error", "code": 205, "re": frame.get("id")})]
            conv = member.conv = Conv(f"c{next(self._ids)}", member.site, member)
            self.convs[conv.id] = conv
            out.append(([member], {"t": "conv", "conv": conv.summary()}))
            agent = self._free_agent(member.site)
            if agent is None:
                self.queue.setdefault(member.site, []).append(conv)
            else:
                out += self._assign(conv, agent)
        conv.offset += 1
        ts = time.time()
        cid = frame.get("cid")
        ack = {
            "t": "ack",
            "re": frame.get("id"),
            "cid": cid,
            "conv": conv.id,
            "offset": conv.offset,
            "ts": ts,
            "duplicate": False,
        }
        msg = {
            "t": "msg",
            "conv": conv.id,
            "offset": conv.offset,
            "kind": "text",
            "from": {"kind": member.kind, "id": member.id, "name": member.name},
            "body": frame.get("body"),
            "ts": ts,
            "cid": cid,
        }
        out.append(([member], ack))
        out.append((conv.members(), msg))
        return out

    def typing(self, member: Member, frame: JSON) -> Out:
        if member.kind == "visitor":
            conv = member.conv
            if conv is None or not conv.agents:
                return []
            return [(conv.agents, {"t": "preview", "conv": conv.id, "text": frame.get("draft")})]
        conv = self.convs.get(frame.get("conv", ""))
        if conv is None:
            return []
        event = {
            "t": "typing",
            "conv": conv.id,
            "from": {"kind": "agent", "id": member.id, "name": member.name},
            "on": bool(frame.get("on")),
        }
        return [([m for m in conv.members() if m is not member], event)]

    def join(self, member: Member, frame: JSON) -> Out:
        conv = self.convs.get(frame.get("conv", ""))
        if conv is None or member.kind != "agent":
            return [([member], {"t": "error", "code": 205, "re": frame.get("id")})]
        out: Out = []
        if member not in conv.agents:
            out += self._assign(conv, member)
        out.append(([member], {"t": "ok", "re": frame.get("id")}))
        return out

    def ping(self, member: Member, frame: JSON) -> Out:
        return [([member], {"t": "pong", "re": frame.get("id")})]

    def gone(self, member: Member | None) -> None:
        """Forget a closed connection (its conversations stay, as with chatserver)."""
        if member is not None and member.kind == "agent":
            agents = self.agents.get(member.site, [])
            if member in agents:
                agents.remove(member)

    def handle(self, member: Member, frame: JSON) -> Out:
        t = frame.get("t")
        if t == "send":
            return self.send(member, frame)
        if t == "typing":
            return self.typing(member, frame)
        if t == "join":
            return self.join(member, frame)
        if t == "ping":
            return self.ping(member, frame)
        return [([member], {"t": "error", "code": 202, "re": frame.get("id")})]
