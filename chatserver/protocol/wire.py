"""Every server frame's shape, declared once (pure code, no I/O).

One ``TypedDict`` per server frame type, its keys exactly as the server
sends them: a ``NotRequired`` key is one that some frames of the type carry
and others do not.  Shapes nested in frames (the conversation object, an
entry, its ``from``, an agent's public record ``{id, name}``, a read
marker, ...) are ``TypedDict`` s of their own, in ``shapes.py``.
``SERVER_FRAMES`` maps each type name (``t``) to its shapes: one, except
``welcome``, whose visitor and agent forms differ.

``problems(frame)`` checks a frame against its declaration (unknown type,
missing or undeclared keys, value types, nested shapes).  It is for tests
(``tests/node.py`` runs it on every frame a session writes) and is never on
the server's path.  ``docs/protocol.md`` "Server frames" is the reader's
version of these declarations; ``tests/unit/test_docs.py`` checks both ways that
each declared key is documented and each documented key declared.

The builders (``ok``, ``pong``, ``error``, ``ack``) are the common replies,
typed so that mypy checks them against their declaration.
"""

import functools
import types
from typing import (
    Any,
    Literal,
    NotRequired,
    TypedDict,
    Union,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)

from .shapes import (
    AgentRef,
    AgentSelf,
    AgentSite,
    Author,
    ConversationObject,
    Entry,
    OnlineVisitor,
    PageView,
    PresenceInfo,
    Reader,
    ReadMarker,
    TrackedEvent,
    Viewer,
    VisitorRecord,
    VisitorSite,
    WireLimits,
)

# -- the frames ------------------------------------------------------------------


class VisitorWelcome(TypedDict):
    t: Literal["welcome"]
    v: int
    re: int | None
    visitor: str
    token: str
    site: VisitorSite
    agents_online: int
    conv: str | None
    limits: WireLimits


class AgentWelcome(TypedDict):
    t: Literal["welcome"]
    v: int
    re: int | None
    agent: AgentSelf
    status: str
    site: AgentSite
    conversations: list[ConversationObject]
    queue: list[str]
    limits: WireLimits


class AckFrame(TypedDict):
    t: Literal["ack"]
    re: int | None
    cid: str
    conv: str
    offset: int
    ts: float
    duplicate: bool


class MsgFrame(Entry):
    t: Literal["msg"]


class ConvFrame(TypedDict):
    t: Literal["conv"]
    conv: ConversationObject
    follow: NotRequired[bool]  # follow start: true
    reads: NotRequired[list[ReadMarker]]  # follow start only


class QueueFrame(TypedDict):
    t: Literal["queue"]
    conv: str
    position: int
    agents_online: int


class PreviewFrame(TypedDict):
    t: Literal["preview"]
    conv: str
    text: str


TypingFrame = TypedDict(
    "TypingFrame",
    {
        "t": Literal["typing"],
        "conv": str,
        "from": Author,
        "on": bool,
        "note": NotRequired[bool],  # an agent typing a note
    },
)


class HistoryFrame(TypedDict):
    t: Literal["history"]
    re: int | None
    conv: str
    epoch: str
    messages: list[Entry]
    complete: bool
    more: bool


class ReadFrame(TypedDict):
    t: Literal["read"]
    conv: str
    by: Reader
    offset: int


class StatusFrame(TypedDict):
    t: Literal["status"]
    status: str


class OkFrame(TypedDict):
    t: Literal["ok"]
    re: int | None
    visitor: NotRequired[str]  # an identify that moved the browser onto another record
    token: NotRequired[str]


class PongFrame(TypedDict):
    t: Literal["pong"]
    re: int | None


class ErrorFrame(TypedDict):
    t: Literal["error"]
    code: int
    message: str
    re: NotRequired[int]  # when the failing frame had a usable id


class AgentsFrame(TypedDict):
    t: Literal["agents"]
    online: int


class VisitorsFrame(TypedDict):
    t: Literal["visitors"]
    re: int | None
    count: int
    visitors: list[OnlineVisitor]


class VisitorFrame(TypedDict):
    """A visitor changed (broadcast), or the answer to ``visitor`` (with ``re``)."""

    t: Literal["visitor"]
    visitor: VisitorRecord
    event: NotRequired[TrackedEvent]  # after a track
    re: NotRequired[int | None]  # the answer's fields from here on
    pages: NotRequired[list[PageView]]
    events: NotRequired[list[TrackedEvent]]
    conversations: NotRequired[list[ConversationObject]]
    online: NotRequired[PresenceInfo | None]


class InviteFrame(TypedDict):
    t: Literal["invite"]
    conv: ConversationObject
    by: AgentRef


class ViewersFrame(TypedDict):
    t: Literal["viewers"]
    conv: str
    agents: list[Viewer]


class OpenFrame(TypedDict):
    t: Literal["open"]
    trigger: NotRequired[str]  # a proactive trigger's "open the widget"
    agent: NotRequired[AgentRef]  # an agent started a chat (``start``)


class SignalFrame(TypedDict):
    """A recorded visitor's frustration or failure (recordings/signals.py), to agents."""

    t: Literal["signal"]
    visitor: str
    kind: str
    url: str
    ts: float
    session: str
    detail: dict[str, Any]


class RecordedFrame(TypedDict):
    t: Literal["recorded"]
    re: int | None
    session: str
    seq: int
    duplicate: bool


class CobrowseFrame(TypedDict):
    t: Literal["cobrowse"]
    re: int | None
    conv: str
    state: str
    offset: int
    agent: AgentRef | None
    viewing: NotRequired[bool]  # answers to view and snapshot


class CobrowseEventsFrame(TypedDict):
    t: Literal["cobrowse_events"]
    conv: str
    seq: int
    events: NotRequired[list[Any]]  # a whole batch, or one part:
    part: NotRequired[int]
    parts: NotRequired[int]
    data: NotRequired[str]


class CobrowseSnapshotFrame(TypedDict):
    t: Literal["cobrowse_snapshot"]
    conv: str


class CobrowsePointerFrame(TypedDict):
    t: Literal["cobrowse_pointer"]
    conv: str
    agent: AgentRef
    x: NotRequired[int]  # neither: hide the pointer
    y: NotRequired[int]


class CobrowseHighlightFrame(TypedDict):
    t: Literal["cobrowse_highlight"]
    conv: str
    agent: AgentRef
    node: NotRequired[int]
    selector: NotRequired[str]


# Type name -> its shapes (a frame must match one of them).
SERVER_FRAMES: dict[str, tuple[type, ...]] = {
    "welcome": (VisitorWelcome, AgentWelcome),
    "ack": (AckFrame,),
    "msg": (MsgFrame,),
    "conv": (ConvFrame,),
    "queue": (QueueFrame,),
    "preview": (PreviewFrame,),
    "typing": (TypingFrame,),
    "history": (HistoryFrame,),
    "read": (ReadFrame,),
    "status": (StatusFrame,),
    "ok": (OkFrame,),
    "pong": (PongFrame,),
    "error": (ErrorFrame,),
    "agents": (AgentsFrame,),
    "visitors": (VisitorsFrame,),
    "visitor": (VisitorFrame,),
    "invite": (InviteFrame,),
    "viewers": (ViewersFrame,),
    "open": (OpenFrame,),
    "recorded": (RecordedFrame,),
    "signal": (SignalFrame,),
    "cobrowse": (CobrowseFrame,),
    "cobrowse_events": (CobrowseEventsFrame,),
    "cobrowse_snapshot": (CobrowseSnapshotFrame,),
    "cobrowse_pointer": (CobrowsePointerFrame,),
    "cobrowse_highlight": (CobrowseHighlightFrame,),
}


# -- builders of the common replies ------------------------------------------------


def ok(rid: int | None) -> OkFrame:
    return {"t": "ok", "re": rid}


def pong(rid: int | None) -> PongFrame:
    return {"t": "pong", "re": rid}


def error(code: int, message: str, rid: int | None = None) -> ErrorFrame:
    frame: ErrorFrame = {"t": "error", "code": code, "message": message}
    if rid is not None:
        frame["re"] = rid
    return frame


def ack(rid: int | None, cid: str, conv: str, offset: int, ts: float, duplicate: bool) -> AckFrame:
    return {
        "t": "ack",
        "re": rid,
        "cid": cid,
        "conv": conv,
        "offset": offset,
        "ts": ts,
        "duplicate": duplicate,
    }


# -- the check (tests only) ----------------------------------------------------------


@functools.cache
def fields(shape: type) -> dict[str, Any]:
    """A ``TypedDict`` 's keys and their types (``NotRequired`` taken off)."""
    return get_type_hints(shape)


def required(shape: type) -> frozenset[str]:
    keys: frozenset[str] = getattr(shape, "__required_keys__", frozenset())
    return keys


def problems(frame: Any) -> list[str]:
    """What is wrong with ``frame`` as a server frame (``[]``: nothing).

    Unknown type, missing required key, undeclared key, a value of the wrong
    type, at the top level and in nested shapes.  With several shapes for a
    type the frame must match one; the problems of the closest are given.
    """
    if not isinstance(frame, dict):
        return [f"a frame must be a map, not {type(frame).__name__}"]
    ftype = frame.get("t")
    if not isinstance(ftype, str) or ftype not in SERVER_FRAMES:
        return [f"unknown server frame type {ftype!r}"]
    shapes = SERVER_FRAMES[ftype]
    best: list[str] | None = None
    for shape in shapes:
        found = _shape_problems(frame, shape, ftype)
        if not found:
            return []
        if best is None or len(found) < len(best):
            best = found
    return best or []


def _shape_problems(value: dict[str, Any], shape: type, path: str) -> list[str]:
    declared = fields(shape)
    found = [f"{path}: missing key {k!r}" for k in sorted(required(shape) - value.keys())]
    for key, item in value.items():
        if key not in declared:
            found.append(f"{path}: undeclared key {key!r}")
        else:
            found.extend(_value_problems(item, declared[key], f"{path}.{key}"))
    return found


_SCALARS: dict[type, tuple[type, ...]] = {
    str: (str,),
    int: (int,),
    float: (int, float),
    bool: (bool,),
    type(None): (type(None),),
}


def _value_problems(value: Any, hint: Any, path: str) -> list[str]:
    if hint is Any:
        return []
    origin = get_origin(hint)
    if origin is Union or origin is types.UnionType:
        alternatives = [_value_problems(value, h, path) for h in get_args(hint)]
        if any(not a for a in alternatives):
            return []
        return min(alternatives, key=len)
    if origin is Literal:
        return [] if value in get_args(hint) else [f"{path}: {value!r} is not {get_args(hint)}"]
    if is_typeddict(hint):
        if not isinstance(value, dict):
            return [f"{path}: expected a map, got {type(value).__name__}"]
        return _shape_problems(value, hint, path)
    if origin is list:
        if not isinstance(value, list):
            return [f"{path}: expected an array, got {type(value).__name__}"]
        (item,) = get_args(hint)
        return [p for i, v in enumerate(value) for p in _value_problems(v, item, f"{path}[{i}]")]
    if origin is dict or hint is dict:
        ok_ = isinstance(value, dict)
        return [] if ok_ else [f"{path}: expected a map, got {type(value).__name__}"]
    kinds = _SCALARS.get(hint)
    if kinds is None:
        return [f"{path}: the declaration's type {hint!r} is not checked here"]
    # bool is an int in Python; on the wire they are different things.
    if isinstance(value, bool) and hint is not bool:
        return [f"{path}: expected {hint.__name__}, got bool"]
    if not isinstance(value, kinds):
        return [f"{path}: expected {getattr(hint, '__name__', hint)}, got {type(value).__name__}"]
    return []
