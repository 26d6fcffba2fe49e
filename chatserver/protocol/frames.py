"""Client frame schemas and their validation (pure code, no I/O).

A frame is a map with a type ``t``, an optional request id ``id`` (echoed as
``re`` in the reply or error) and the fields of its type.  Each client kind
(visitor, agent) has its own table of frame types; a frame type that the
kind may not send is ``unknown_type`` for it.  Unknown extra fields are
ignored so that newer clients can talk to older servers.

``docs/protocol.md`` is the reader's version of the tables below; a test
checks that every type named here is documented there.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

import msgspec

from ..errors import ErrorCode, FrameError
from ..types import RATINGS, ClientKind

PROTOCOL_VERSION = 1

# Wire limits, fixed by the protocol version (docs/protocol.md, "Limits").
MAX_FRAME_BYTES = 64 * 1024
MAX_MESSAGE_CHARS = 4000
MAX_PREVIEW_CHARS = 2000
MAX_ID_CHARS = 64
MAX_HISTORY = 200
MAX_INT = 2**53 - 1  # larger integers are refused (JavaScript's safe range)
MAX_URL_CHARS = 2000  # page url and referrer
MAX_TITLE_CHARS = 500  # page title
MAX_NAME_CHARS = 200  # identify name
MAX_EMAIL_CHARS = 320  # identify email
MAX_ATTRS = 50  # keys per attrs map (and per nested map)
MAX_ATTR_KEY_CHARS = 64
MAX_ATTR_VALUE_CHARS = 500
MAX_ATTRS_BYTES = 8 * 1024  # the attrs map encoded as compact JSON
MAX_USER_ID_CHARS = 200  # identify user_id (the shop's customer id)
MAX_HASH_CHARS = 128  # identify hash (64 hex digits for HMAC-SHA256)
MAX_COMMENT_CHARS = 1000  # rate comment
MAX_EVENT_NAME_CHARS = 64  # track name
# An e-mail address as the offline form checks it: something@domain.tld, no spaces.
EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
MAX_TAG_CHARS = 32  # one conversation tag
MAX_TAGS_PER_FRAME = 20  # tags in one ``tag`` frame's ``add`` (and in its ``remove``)
MAX_TAGS = 50  # tags a conversation may carry
MAX_VIEWING = 20  # conversations one agent connection may announce as viewed
# Co-browsing (chatserver/cobrowse.py, docs/cobrowse.md).
MAX_COBROWSE_EVENTS = 500  # rrweb events in one cobrowse_events frame
MAX_COBROWSE_PARTS = 256  # parts of one event batch too big for a frame
MAX_COORD = 1_000_000  # pointer coordinates, CSS pixels of the visitor's document
MAX_SELECTOR_CHARS = 300  # a highlight's CSS selector
# Frames of a running co-browse: rate limited by their own token bucket.
STREAM_FRAMES = frozenset({"cobrowse_events", "cobrowse_pointer"})


@dataclass(frozen=True, slots=True)
class Limits:
    """Tunable per-connection limits; every default is documented in docs/protocol.md."""

    max_frame_bytes: int = MAX_FRAME_BYTES
    recovery_window: int = 500
    rate_per_second: float = 20.0
    rate_burst: float = 60.0
    max_errors: int = 50
    hello_timeout: float = 10.0
    preview_interval: float = 0.1
    max_outbox_bytes: int = 1024 * 1024
    # co-browse stream frames (STREAM_FRAMES) draw on a bucket of their own
    stream_rate_per_second: float = 40.0
    stream_rate_burst: float = 300.0


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    kind: type | tuple[type, ...]
    required: bool = True
    max_len: int | None = None
    min: int | None = None
    max: int | None = None
    choices: frozenset[str] | None = None
    truncate: bool = False  # cut an over-long string instead of refusing it
    item: Field | None = None  # arrays: the rule every element must pass
    max_items: int | None = None  # arrays: most elements


class Frame(msgspec.Struct, frozen=True):
    """A validated client frame.

    A frozen ``msgspec.Struct`` rather than a frozen dataclass: made once per
    frame, and a dataclass's frozen ``__init__`` (three ``object.__setattr__``
    calls) cost about as much as decoding the frame (docs/performance.md).
    """

    type: str
    rid: int | None
    data: dict[str, Any]

    def get(self, name: str, default: Any = None) -> Any:
        return self.data.get(name, default)


def _id(name: str, required: bool = True) -> Field:
    return Field(name, str, required, max_len=MAX_ID_CHARS)


_CONV = _id("conv")
_PAGE = Field("page", dict, False)
_TAG = Field("tag", str, max_len=MAX_TAG_CHARS)

_COMMON: dict[str, tuple[Field, ...]] = {
    "ping": (),
    "read": (_CONV, Field("offset", int, min=0)),
    "history": (
        _CONV,
        Field("since", int, False, min=0),
        _id("epoch", False),
        Field("before", int, False, min=1),
        Field("limit", int, False, min=1, max=MAX_HISTORY),
    ),
}

VISITOR_FRAMES: dict[str, tuple[Field, ...]] = {
    "hello": (
        Field("v", int),
        Field("kind", str, choices=frozenset({"visitor"})),
        _id("site"),
        Field("token", str, False, max_len=512),
        _id("dept", False),
        _PAGE,
    ),
    **_COMMON,
    "send": (
        _id("cid"),
        Field("body", str, max_len=MAX_MESSAGE_CHARS),
        _id("conv", False),
        _id("dept", False),
    ),
    "typing": (Field("draft", str, max_len=MAX_PREVIEW_CHARS, truncate=True),),
    "close": (_id("conv", False),),
    "page": (
        Field("url", str, max_len=MAX_URL_CHARS),
        Field("title", str, False, max_len=MAX_TITLE_CHARS),
        Field("referrer", str, False, max_len=MAX_URL_CHARS),
    ),
    "identify": (
        Field("name", str, False, max_len=MAX_NAME_CHARS),
        Field("email", str, False, max_len=MAX_EMAIL_CHARS),
        Field("user_id", str, False, max_len=MAX_USER_ID_CHARS),
        Field("hash", str, False, max_len=MAX_HASH_CHARS),
    ),
    "attrs": (Field("set", dict),),
    # Session recording (recordings/ingest.py): a batch of rrweb events, whole
    # in ``events`` or, too big for one frame, cut in ``parts`` of JSON text.
    "rec": (
        Field("session", str, max_len=MAX_ID_CHARS),
        Field("seq", int, min=0),
        Field("events", list, False),
        Field("part", int, False, min=0),
        Field("parts", int, False, min=1),
        Field("data", str, False),
        Field("now", (int, float), False),
    ),
    "offline": (
        _id("cid"),
        Field("email", str, max_len=MAX_EMAIL_CHARS),
        Field("body", str, max_len=MAX_MESSAGE_CHARS),
        Field("name", str, False, max_len=MAX_NAME_CHARS),
        _id("dept", False),
    ),
    "rate": (
        _CONV,
        Field("rating", str, choices=frozenset(RATINGS)),
        Field("comment", str, False, max_len=MAX_COMMENT_CHARS),
    ),
    "attach": (_id("cid"), _id("attachment"), _id("conv", False)),
    # E-mail (chatserver/mail/transcript.py): the conversation mailed to the visitor.
    "transcript": (
        _CONV,
        Field("email", str, max_len=MAX_EMAIL_CHARS),
        Field("lang", str, False, choices=frozenset({"en", "ca", "es"})),
    ),
    "track": (Field("name", str, max_len=MAX_EVENT_NAME_CHARS), Field("props", dict, False)),
    # Co-browsing (chatserver/cobrowse.py): the visitor's answer and its stream.
    "cobrowse": (
        _CONV,
        Field("action", str, choices=frozenset({"accept", "decline", "stop", "resume"})),
        Field("offset", int, False, min=1),
    ),
    "cobrowse_events": (
        _CONV,
        Field("seq", int, min=0),
        Field("events", list, False),
        Field("part", int, False, min=0),
        Field("parts", int, False, min=1, max=MAX_COBROWSE_PARTS),
        Field("data", str, False),
    ),
}

AGENT_FRAMES: dict[str, tuple[Field, ...]] = {
    "hello": (
        Field("v", int),
        Field("kind", str, choices=frozenset({"agent"})),
        Field("token", str, max_len=512),
        Field("status", str, False, choices=frozenset({"online", "away", "offline"})),
    ),
    **_COMMON,
    "send": (
        _CONV,
        _id("cid"),
        Field("body", str, max_len=MAX_MESSAGE_CHARS),
        Field("note", bool, False),
    ),
    "typing": (_CONV, Field("on", bool), Field("note", bool, False)),
    "status": (Field("status", str, choices=frozenset({"online", "away", "offline"})),),
    "join": (_CONV,),
    "leave": (_CONV,),
    "watch": (_CONV,),
    "unwatch": (_CONV,),
    "transfer": (_CONV, _id("agent", False), _id("dept", False)),
    "visitors": (),
    "visitor": (_id("visitor"),),
    "start": (_id("visitor"), _id("cid"), Field("body", str, max_len=MAX_MESSAGE_CHARS)),
    "close": (_CONV,),
    "attach": (_CONV, _id("cid"), _id("attachment")),
    # The agent console: tags, inviting a colleague, collision detection.
    "tag": (
        _CONV,
        Field("add", list, False, item=_TAG, max_items=MAX_TAGS_PER_FRAME),
        Field("remove", list, False, item=_TAG, max_items=MAX_TAGS_PER_FRAME),
    ),
    "invite": (_CONV, _id("agent")),
    "view": (_CONV, Field("on", bool)),
    # Co-browsing (chatserver/cobrowse.py): ask, view, point.
    "cobrowse": (
        _CONV,
        Field("action", str, choices=frozenset({"request", "stop", "view", "unview", "snapshot"})),
    ),
    "cobrowse_pointer": (
        _CONV,
        Field("x", int, False, min=0, max=MAX_COORD),
        Field("y", int, False, min=0, max=MAX_COORD),
    ),
    "cobrowse_highlight": (
        _CONV,
        Field("node", int, False, min=1),
        Field("selector", str, False, max_len=MAX_SELECTOR_CHARS),
    ),
}

FRAMES: dict[ClientKind, dict[str, tuple[Field, ...]]] = {
    ClientKind.VISITOR: VISITOR_FRAMES,
    ClientKind.AGENT: AGENT_FRAMES,
}

_MAX_RID = 2**31 - 1


def _type_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "string", int: "integer", bool: "boolean", dict: "map", list: "array"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _check_field(spec: Field, value: Any, rid: int | None) -> Any:
    def fail(code: ErrorCode, why: str) -> FrameError:
        return FrameError(code, f"field {spec.name!r}: {why}", rid=rid)

    # bool is an int in Python; on the wire they are different things.
    if isinstance(value, bool) and spec.kind is not bool:
        raise fail(ErrorCode.INVALID_FIELD, f"expected {_type_name(spec.kind)}, got boolean")
    if not isinstance(value, spec.kind):
        raise fail(
            ErrorCode.INVALID_FIELD,
            f"expected {_type_name(spec.kind)}, got {type(value).__name__}",
        )
    if isinstance(value, str):
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise fail(ErrorCode.INVALID_FIELD, "not valid Unicode text") from None
        if spec.max_len is not None and len(value) > spec.max_len:
            if spec.truncate:
                value = value[: spec.max_len]
            else:
                code = ErrorCode.TOO_LONG if spec.name == "body" else ErrorCode.INVALID_FIELD
                raise fail(code, f"longer than {spec.max_len} characters")
        if spec.choices is not None and value not in spec.choices:
            raise fail(ErrorCode.INVALID_FIELD, f"must be one of {sorted(spec.choices)}")
    if isinstance(value, int) and not isinstance(value, bool):
        if spec.min is not None and value < spec.min:
            raise fail(ErrorCode.INVALID_FIELD, f"must be >= {spec.min}")
        upper = MAX_INT if spec.max is None else spec.max
        if value > upper:
            raise fail(ErrorCode.INVALID_FIELD, f"must be <= {upper}")
    if isinstance(value, list) and spec.item is not None:
        if spec.max_items is not None and len(value) > spec.max_items:
            raise fail(ErrorCode.INVALID_FIELD, f"more than {spec.max_items} elements")
        value = [_check_field(spec.item, element, rid) for element in value]
    return value


def check_field(spec: Field, value: Any) -> Any:
    """``value`` checked against ``spec`` (cut if ``truncate``); ``FrameError`` if wrong.

    The frames' rules for one value, for the REST API's bodies (``chatserver/api/``).
    """
    return _check_field(spec, value, None)


def validate(kind: ClientKind, raw: Any) -> Frame:
    """Check a decoded frame against the table of ``kind``; return a ``Frame``.

    Raises ``FrameError`` with a code naming what is wrong and, when the frame
    had a usable request id, that id so the client can match the error.
    """
    if not isinstance(raw, dict):
        raise FrameError(ErrorCode.BAD_FRAME, "a frame must be a map")
    rid = raw.get("id")
    if rid is not None and (
        isinstance(rid, bool) or not isinstance(rid, int) or not 0 <= rid <= _MAX_RID
    ):
        raise FrameError(ErrorCode.BAD_FRAME, "'id' must be an integer from 0 to 2**31-1")
    ftype = raw.get("t")
    if not isinstance(ftype, str):
        raise FrameError(ErrorCode.BAD_FRAME, "a frame needs a string type 't'", rid=rid)
    fields = FRAMES[kind].get(ftype)
    if fields is None:
        raise FrameError(
            ErrorCode.UNKNOWN_TYPE, f"unknown frame type {ftype[:32]!r} for a {kind.value}", rid=rid
        )
    data: dict[str, Any] = {}
    for spec in fields:
        value = raw.get(spec.name)
        if value is None:
            if spec.required:
                raise FrameError(
                    ErrorCode.INVALID_FIELD, f"field {spec.name!r} is required", rid=rid
                )
            continue
        data[spec.name] = _check_field(spec, value, rid)
    return finish(kind, ftype, rid, data)


def finish(kind: ClientKind, ftype: str, rid: int | None, data: dict[str, Any]) -> Frame:
    """The checks across a frame's fields, once each field passed its own; the ``Frame``.

    Shared by ``validate`` and the typed decoders of ``structs.py``.
    """
    if ftype == "send" and not data["body"].strip():
        raise FrameError(ErrorCode.INVALID_FIELD, "field 'body' is empty", rid=rid)
    if ftype == "attrs" and kind is ClientKind.VISITOR:
        why = attrs_problem(data["set"])
        if why is not None:
            raise FrameError(ErrorCode.INVALID_FIELD, f"field 'set': {why}", rid=rid)
    if kind is ClientKind.VISITOR and ftype in _VISITOR_CHECKS:
        why = _VISITOR_CHECKS[ftype](data)
        if why is not None:
            raise FrameError(ErrorCode.INVALID_FIELD, why, rid=rid)
    return Frame(ftype, rid, data)


def _offline_problem(data: dict[str, Any]) -> str | None:
    if not data["body"].strip():
        return "field 'body' is empty"
    if not EMAIL.fullmatch(data["email"].strip()):
        return "field 'email' is not an e-mail address"
    return None


def _transcript_problem(data: dict[str, Any]) -> str | None:
    email = data["email"].strip()
    # Stricter than the offline form: the address goes into a To header.
    if not EMAIL.fullmatch(email) or any(c in email for c in "<>\"',;\\"):
        return "field 'email' is not an e-mail address"
    return None


def _track_problem(data: dict[str, Any]) -> str | None:
    if not data["name"].strip():
        return "field 'name' is empty"
    why = attrs_problem(data.get("props") or {})
    return None if why is None else f"field 'props': {why}"


def _identify_problem(data: dict[str, Any]) -> str | None:
    if "user_id" in data and not data["user_id"]:
        return "field 'user_id' is empty"
    return None


_VISITOR_CHECKS = {
    "offline": _offline_problem,
    "transcript": _transcript_problem,
    "track": _track_problem,
    "identify": _identify_problem,
}


def _scalar_problem(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return "numbers must be finite"
        if isinstance(value, int) and abs(value) > MAX_INT:
            return f"integers must be within +-{MAX_INT}"
        return None
    if isinstance(value, str):
        if len(value) > MAX_ATTR_VALUE_CHARS:
            return f"a value is longer than {MAX_ATTR_VALUE_CHARS} characters"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "a value is not valid Unicode text"
        return None
    return f"a value of type {_type_name(type(value))} is not allowed"


def _map_problem(attrs: dict[str, Any], nested: bool) -> str | None:
    if len(attrs) > MAX_ATTRS:
        return f"more than {MAX_ATTRS} keys"
    for key, value in attrs.items():
        if not isinstance(key, str) or not key or len(key) > MAX_ATTR_KEY_CHARS:
            return f"keys must be 1 to {MAX_ATTR_KEY_CHARS} characters"
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            return "a key is not valid Unicode text"
        if isinstance(value, dict):
            if nested:
                return "maps nest one level at most"
            why = _map_problem(value, nested=True)
        else:
            why = _scalar_problem(value)
        if why is not None:
            return f"{key[:MAX_ATTR_KEY_CHARS]!r}: {why}"
    return None


def attrs_problem(attrs: dict[str, Any]) -> str | None:
    """Why a visitor's ``attrs.set`` map is refused, or ``None`` when it is fine.

    At most ``MAX_ATTRS`` keys of 1..``MAX_ATTR_KEY_CHARS`` characters; values
    are strings up to ``MAX_ATTR_VALUE_CHARS``, numbers, booleans, null (which
    deletes the key) or one level of nested map with the same rules; the whole
    map encodes to at most ``MAX_ATTRS_BYTES`` of compact JSON.
    """
    why = _map_problem(attrs, nested=False)
    if why is not None:
        return why
    size = len(json.dumps(attrs, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    if size > MAX_ATTRS_BYTES:
        return f"encodes to {size} bytes, more than {MAX_ATTRS_BYTES}"
    return None
