"""One conversation's facts: the row every report is aggregated from (pure code).

``compute_facts`` reads a conversation and its entries (the record) and
returns a ``ConvFacts``; the rules are those of docs/reports.md, and this
module is where they are implemented, once, for the listener, the start-up
sweep, ``chatserver reports rebuild`` and the live figures of open chats.
``encode``/``decode`` turn the lists of a row into compact strings for the
backends (no JSON: decoding 100,000 rows must stay cheap).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from ..types import AuthorKind, Conversation, ConvState, Entry, EntryKind

if TYPE_CHECKING:  # proactive/ imports the Store, which imports this module
    from ..proactive.hours import BusinessHours

# An agent's time in a conversation: (agent id, joined at, left at or closed at).
Span = tuple[str, float, float]


@dataclass(frozen=True, slots=True)
class ConvFacts:
    """What the reports know of one conversation (docs/reports.md, "Facts")."""

    conv_id: str
    site_id: str
    visitor_id: str
    started: float  # created_at
    closed: float | None  # None while open (live figures only; never stored open)
    department: str | None
    agents: tuple[str, ...]  # every agent that was in it, in order of first joining
    tags: tuple[str, ...]
    offline: bool
    served: bool  # an agent wrote at least one message
    in_hours: bool  # started within the site's business hours (no schedule: always)
    local_day: str  # YYYY-MM-DD of ``started`` in the site's time zone
    local_slot: int  # weekday * 24 + hour of ``started`` there (Monday 0)
    first_response: float | None  # seconds, first visitor message -> first agent reply
    queue_wait: float | None  # seconds, queue start -> first agent joined
    handling: float | None  # seconds, first agent joined -> closed
    transfers: int
    msgs_visitor: int
    msgs_agent: int
    response_times: tuple[float, ...]  # one per answered visitor turn
    rating: str | None
    comment: str
    trigger: str | None  # the trigger whose message opened or joined it
    spans: tuple[Span, ...]
    replies: tuple[tuple[str, int], ...]  # messages written, per agent
    first_replier: str | None

    @property
    def missed(self) -> bool:
        """Closed with no agent message, and not an offline message."""
        return self.closed is not None and not self.served and not self.offline


def _auto(entry: Entry) -> bool:
    """A message a trigger wrote (in an agent's or the shop's name): no reply."""
    return isinstance(entry.data, dict) and "auto" in entry.data


def _agent_of(entry: Entry) -> str | None:
    agent = entry.data.get("agent") if isinstance(entry.data, dict) else None
    if isinstance(agent, dict) and isinstance(agent.get("id"), str):
        return str(agent["id"])
    return None


def local_place(ts: float, tz: str) -> tuple[str, int]:
    """``(YYYY-MM-DD, weekday * 24 + hour)`` of Unix time ``ts`` in zone ``tz``."""
    local = datetime.fromtimestamp(ts, ZoneInfo(tz))
    return local.strftime("%Y-%m-%d"), local.weekday() * 24 + local.hour


def compute_facts(
    conv: Conversation,
    entries: Sequence[Entry],
    hours: BusinessHours | None,
    at: float,
) -> ConvFacts:
    """The facts of ``conv`` from its entries (offset order); ``at`` ends open spans."""
    from ..proactive.hours import open_at

    closed = conv.closed_at if conv.state is ConvState.CLOSED else None
    end = closed if closed is not None else at
    first_visitor: float | None = None
    first_response: float | None = None
    first_replier: str | None = None
    first_join: float | None = None
    pending: float | None = None  # the start of the unanswered visitor turn
    response_times: list[float] = []
    replies: dict[str, int] = {}
    joined: dict[str, float] = {}
    spans: list[Span] = []
    order: list[str] = []
    transfers = msgs_visitor = msgs_agent = 0
    trigger: str | None = None
    for e in entries:
        if e.kind is EntryKind.TEXT:
            if _auto(e):
                auto = e.data.get("auto")
                if trigger is None and isinstance(auto, dict):
                    trigger = str(auto.get("trigger") or "") or None
                continue
            if e.author_kind is AuthorKind.VISITOR:
                msgs_visitor += 1
                if first_visitor is None:
                    first_visitor = e.ts
                if pending is None:
                    pending = e.ts
            elif e.author_kind is AuthorKind.AGENT:
                msgs_agent += 1
                replies[e.author_id] = replies.get(e.author_id, 0) + 1
                if pending is not None:
                    response_times.append(max(0.0, e.ts - pending))
                    if first_response is None:
                        first_response = response_times[-1]
                        first_replier = e.author_id
                    pending = None
        elif e.kind is EntryKind.EVENT:
            event = e.data.get("event") if isinstance(e.data, dict) else None
            agent = _agent_of(e)
            if event == "joined" and agent is not None:
                if first_join is None:
                    first_join = e.ts
                if agent not in order:
                    order.append(agent)
                joined.setdefault(agent, e.ts)
            elif event == "left" and agent is not None and agent in joined:
                spans.append((agent, joined.pop(agent), e.ts))
            elif event == "transferred":
                transfers += 1
    for agent, since in joined.items():
        spans.append((agent, since, max(since, end)))
    for agent in conv.agents:
        if agent not in order:
            order.append(agent)
    queue_start = first_visitor if first_visitor is not None else conv.created_at
    tz = hours.timezone if hours is not None else "UTC"
    day, slot = local_place(conv.created_at, tz)
    return ConvFacts(
        conv_id=conv.id,
        site_id=conv.site_id,
        visitor_id=conv.visitor_id,
        started=conv.created_at,
        closed=closed,
        department=conv.department,
        agents=tuple(order),
        tags=tuple(conv.tags),
        offline=conv.offline,
        served=msgs_agent > 0,
        in_hours=open_at(hours, conv.created_at),
        local_day=day,
        local_slot=slot,
        first_response=first_response,
        queue_wait=None if first_join is None else max(0.0, first_join - queue_start),
        handling=None if first_join is None or closed is None else max(0.0, closed - first_join),
        transfers=transfers,
        msgs_visitor=msgs_visitor,
        msgs_agent=msgs_agent,
        response_times=tuple(response_times),
        rating=conv.rating,
        comment=conv.rating_comment,
        trigger=trigger,
        spans=tuple(spans),
        replies=tuple(sorted(replies.items())),
        first_replier=first_replier,
    )


# -- compact text forms of the lists (the backends store these) -------------------
# Ids and tags never hold a tab or newline (tags: ``types``' checks; ids: ``new_id``).


def encode_list(items: Sequence[str]) -> str:
    return "\t".join(items)


def decode_list(text: str) -> tuple[str, ...]:
    return tuple(text.split("\t")) if text else ()


def encode_times(times: Sequence[float]) -> str:
    return " ".join(f"{t:.3f}" for t in times)


def decode_times(text: str) -> tuple[float, ...]:
    return tuple(map(float, text.split())) if text else ()


def encode_spans(spans: Sequence[Span]) -> str:
    return "\n".join(f"{a}\t{s!r}\t{e!r}" for a, s, e in spans)


def decode_spans(text: str) -> tuple[Span, ...]:
    if not text:
        return ()
    out: list[Span] = []
    for line in text.split("\n"):
        a, s, e = line.split("\t")
        out.append((a, float(s), float(e)))
    return tuple(out)


def encode_replies(replies: Sequence[tuple[str, int]]) -> str:
    return "\n".join(f"{a}\t{n}" for a, n in replies)


def decode_replies(text: str) -> tuple[tuple[str, int], ...]:
    if not text:
        return ()
    out: list[tuple[str, int]] = []
    for line in text.split("\n"):
        a, n = line.split("\t")
        out.append((a, int(n)))
    return tuple(out)


# The stored row: the facts' scalar fields as columns, the lists as text.
COLUMNS = (
    "conv_id",
    "site_id",
    "visitor_id",
    "started",
    "closed",
    "department",
    "agents",
    "tags",
    "offline",
    "served",
    "in_hours",
    "local_day",
    "local_slot",
    "first_response",
    "queue_wait",
    "handling",
    "transfers",
    "msgs_visitor",
    "msgs_agent",
    "response_times",
    "rating",
    "comment",
    "trigger_id",
    "spans",
    "replies",
    "first_replier",
)

Row = Sequence[Any]  # a stored row: tuple (SQL stores) or list (Redis's JSON)


def to_row(f: ConvFacts) -> tuple[Any, ...]:
    """``f`` as the stored row (``COLUMNS`` order); booleans as 0/1."""
    return (
        f.conv_id,
        f.site_id,
        f.visitor_id,
        f.started,
        f.closed,
        f.department,
        encode_list(f.agents),
        encode_list(f.tags),
        int(f.offline),
        int(f.served),
        int(f.in_hours),
        f.local_day,
        f.local_slot,
        f.first_response,
        f.queue_wait,
        f.handling,
        f.transfers,
        f.msgs_visitor,
        f.msgs_agent,
        encode_times(f.response_times),
        f.rating,
        f.comment,
        f.trigger,
        encode_spans(f.spans),
        encode_replies(f.replies),
        f.first_replier,
    )


def from_row(r: Sequence[Any]) -> ConvFacts:
    """The facts of a stored row (``COLUMNS`` order).

    Every backend returns the columns' own types (REAL as float, INTEGER as
    int, TEXT as str; Redis keeps the row as JSON), so no value is converted
    here but the lists: this runs once per row of a report.
    """
    return ConvFacts(
        r[0],
        r[1],
        r[2],
        r[3],
        r[4],
        r[5],
        tuple(r[6].split("\t")) if r[6] else (),
        tuple(r[7].split("\t")) if r[7] else (),
        bool(r[8]),
        bool(r[9]),
        bool(r[10]),
        r[11],
        r[12],
        r[13],
        r[14],
        r[15],
        r[16],
        r[17],
        r[18],
        tuple(map(float, r[19].split())) if r[19] else (),
        r[20],
        r[21] or "",
        r[22],
        decode_spans(r[23]) if r[23] else (),
        decode_replies(r[24]) if r[24] else (),
        r[25],
    )
