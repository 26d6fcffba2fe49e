"""The sans-I/O protocol core (``chatserver.protocol``) and frame schemas (``chatserver.frames``).

Everything here is fed raw bytes / text, with no server and no event loop.
``bytes`` messages are decoded as msgpack and ``str`` messages as JSON, so
every table-driven case is run once per codec.
"""

from __future__ import annotations

import json
import random
from typing import Any

import msgpack
import pytest

from chatserver.errors import CloseCode, ConnectionClosing, ErrorCode, FrameError
from chatserver.protocol.codec import Codec, Connection, TokenBucket, decode, encode, error_frame
from chatserver.protocol.frames import (
    AGENT_FRAMES,
    FRAMES,
    MAX_ATTR_KEY_CHARS,
    MAX_ATTR_VALUE_CHARS,
    MAX_ATTRS,
    MAX_EMAIL_CHARS,
    MAX_FRAME_BYTES,
    MAX_HISTORY,
    MAX_ID_CHARS,
    MAX_MESSAGE_CHARS,
    MAX_NAME_CHARS,
    MAX_PREVIEW_CHARS,
    MAX_TAG_CHARS,
    MAX_TAGS_PER_FRAME,
    MAX_TITLE_CHARS,
    MAX_URL_CHARS,
    PROTOCOL_VERSION,
    VISITOR_FRAMES,
    Frame,
    Limits,
    validate,
)
from chatserver.types import ClientKind, ConnState

VISITOR = ClientKind.VISITOR
AGENT = ClientKind.AGENT

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

CODECS = ["json", "msgpack"]

CODEC_OF = {"json": Codec.JSON, "msgpack": Codec.MSGPACK}

# Generous limits so that tests not about rate limiting / error counting never hit them.
LOOSE = Limits(rate_per_second=1e9, rate_burst=1e9, max_errors=10**9)


def wire(codec: str, obj: Any) -> bytes | str:
    """``obj`` as one WebSocket message of ``codec``."""
    if codec == "msgpack":
        return msgpack.packb(obj, use_bin_type=True)  # type: ignore[no-any-return]
    return json.dumps(obj)


def hello_of(who: ClientKind, /, **extra: Any) -> dict[str, Any]:
    if who is VISITOR:
        frame: dict[str, Any] = {"t": "hello", "v": PROTOCOL_VERSION, "kind": "visitor"}
        frame["site"] = "pk_site"
    else:
        frame = {"t": "hello", "v": PROTOCOL_VERSION, "kind": "agent", "token": "tok"}
    frame.update(extra)
    return frame


def open_conn(
    kind: ClientKind = VISITOR, limits: Limits = LOOSE, codec: str = "json"
) -> Connection:
    """A connection already past its hello (no decoding involved)."""
    conn = Connection(CODEC_OF[codec], limits, now=0.0)
    conn.accept(kind)
    return conn


def frame_error(fn: Any, *args: Any) -> FrameError:
    with pytest.raises(FrameError) as info:
        fn(*args)
    return info.value


# ---------------------------------------------------------------------------
# example frames: one full and one minimal valid example of every type
# ---------------------------------------------------------------------------

CONV = {"conv": "c_1"}

FULL_EXAMPLES: dict[ClientKind, dict[str, dict[str, Any]]] = {
    VISITOR: {
        "hello": {
            "t": "hello",
            "v": PROTOCOL_VERSION,
            "kind": "visitor",
            "site": "pk_site",
            "token": "tok",
            "dept": "sales",
            "page": {"url": "https://shop.example/cart", "title": "Cart"},
        },
        "ping": {"t": "ping"},
        "read": {"t": "read", **CONV, "offset": 3},
        "history": {"t": "history", **CONV, "since": 0, "epoch": "e1", "before": 5, "limit": 50},
        "send": {"t": "send", "cid": "m1", "body": "hello there", **CONV, "dept": "sales"},
        "typing": {"t": "typing", "draft": "hel"},
        "close": {"t": "close", **CONV},
        "page": {
            "t": "page",
            "url": "https://shop.example/cart",
            "title": "Cart",
            "referrer": "https://search.example/?q=shoes",
        },
        "identify": {
            "t": "identify",
            "name": "Ann",
            "email": "ann@example.com",
            "user_id": "cust-1",
            "hash": "ab" * 32,
        },
        "attrs": {
            "t": "attrs",
            "set": {
                "plan": "pro",
                "vip": True,
                "age": 41,
                "old": None,
                "cart": {"items": 2, "total": 59.9, "currency": "EUR", "coupon": None},
            },
        },
        "rec": {
            "t": "rec",
            "session": "r_session1",
            "seq": 3,
            "events": [{"type": 3, "data": {"source": 1}, "timestamp": 1.5e12}],
            "part": 0,
            "parts": 1,
            "data": "[]",
            "now": 1.5e12,
        },
        "offline": {
            "t": "offline",
            "cid": "o1",
            "email": "ann@example.com",
            "body": "Do you ship to Andorra?",
            "name": "Ann",
            "dept": "sales",
        },
        "rate": {"t": "rate", **CONV, "rating": "okay", "comment": "quick"},
        "transcript": {"t": "transcript", **CONV, "email": "ann@example.com", "lang": "ca"},
        "attach": {"t": "attach", "cid": "f1", "attachment": "f_1", **CONV},
        "track": {"t": "track", "name": "added_to_cart", "props": {"sku": "B1", "qty": 2}},
        "cobrowse": {"t": "cobrowse", **CONV, "action": "accept", "offset": 7},
        "cobrowse_events": {
            "t": "cobrowse_events",
            **CONV,
            "seq": 3,
            "events": [{"type": 3, "timestamp": 1.5, "data": {}}],
            "part": 0,
            "parts": 2,
            "data": "[",
        },
    },
    AGENT: {
        "hello": {"t": "hello", "v": PROTOCOL_VERSION, "kind": "agent", "token": "tok"}
        | {"status": "away"},
        "ping": {"t": "ping"},
        "read": {"t": "read", **CONV, "offset": 0},
        "history": {"t": "history", **CONV, "since": 2, "epoch": "e1", "before": 1, "limit": 1},
        "send": {"t": "send", **CONV, "cid": "m1", "body": "hi", "note": True},
        "typing": {"t": "typing", **CONV, "on": False, "note": True},
        "status": {"t": "status", "status": "offline"},
        "join": {"t": "join", **CONV},
        "leave": {"t": "leave", **CONV},
        "watch": {"t": "watch", **CONV},
        "unwatch": {"t": "unwatch", **CONV},
        "transfer": {"t": "transfer", **CONV, "agent": "a_2", "dept": "sales"},
        "visitors": {"t": "visitors"},
        "visitor": {"t": "visitor", "visitor": "v_1"},
        "start": {"t": "start", "visitor": "v_1", "cid": "s1", "body": "Hello!"},
        "close": {"t": "close", **CONV},
        "attach": {"t": "attach", **CONV, "cid": "f1", "attachment": "f_1"},
        "tag": {"t": "tag", **CONV, "add": ["vip", "t" * MAX_TAG_CHARS], "remove": ["billing"]},
        "invite": {"t": "invite", **CONV, "agent": "a_2"},
        "view": {"t": "view", **CONV, "on": True},
        "cobrowse": {"t": "cobrowse", **CONV, "action": "request"},
        "cobrowse_pointer": {"t": "cobrowse_pointer", **CONV, "x": 10, "y": 2000},
        "cobrowse_highlight": {"t": "cobrowse_highlight", **CONV, "node": 42, "selector": "a.b"},
    },
}

MINIMAL_EXAMPLES: dict[ClientKind, dict[str, dict[str, Any]]] = {
    VISITOR: {
        "hello": {"t": "hello", "v": PROTOCOL_VERSION, "kind": "visitor", "site": "pk_site"},
        "ping": {"t": "ping"},
        "read": {"t": "read", **CONV, "offset": 0},
        "history": {"t": "history", **CONV},
        "send": {"t": "send", "cid": "m1", "body": "x"},
        "typing": {"t": "typing", "draft": ""},
        "close": {"t": "close"},
        "page": {"t": "page", "url": "/"},
        "identify": {"t": "identify"},
        "attrs": {"t": "attrs", "set": {}},
        "rec": {"t": "rec", "session": "r_session1", "seq": 0},
        "offline": {"t": "offline", "cid": "o1", "email": "a@b.co", "body": "x"},
        "rate": {"t": "rate", **CONV, "rating": "poor"},
        "transcript": {"t": "transcript", **CONV, "email": "ann@example.com"},
        "attach": {"t": "attach", "cid": "f1", "attachment": "f_1"},
        "track": {"t": "track", "name": "e"},
        "cobrowse": {"t": "cobrowse", **CONV, "action": "stop"},
        "cobrowse_events": {"t": "cobrowse_events", **CONV, "seq": 0},
    },
    AGENT: {
        "hello": {"t": "hello", "v": PROTOCOL_VERSION, "kind": "agent", "token": "tok"},
        "ping": {"t": "ping"},
        "read": {"t": "read", **CONV, "offset": 0},
        "history": {"t": "history", **CONV},
        "send": {"t": "send", **CONV, "cid": "m1", "body": "x"},
        "typing": {"t": "typing", **CONV, "on": True},
        "status": {"t": "status", "status": "online"},
        "join": {"t": "join", **CONV},
        "leave": {"t": "leave", **CONV},
        "watch": {"t": "watch", **CONV},
        "unwatch": {"t": "unwatch", **CONV},
        "transfer": {"t": "transfer", **CONV},
        "visitors": {"t": "visitors"},
        "visitor": {"t": "visitor", "visitor": "v_1"},
        "start": {"t": "start", "visitor": "v_1", "cid": "s1", "body": "x"},
        "close": {"t": "close", **CONV},
        "attach": {"t": "attach", **CONV, "cid": "f1", "attachment": "f_1"},
        "tag": {"t": "tag", **CONV},
        "invite": {"t": "invite", **CONV, "agent": "a_2"},
        "view": {"t": "view", **CONV, "on": False},
        "cobrowse": {"t": "cobrowse", **CONV, "action": "view"},
        "cobrowse_pointer": {"t": "cobrowse_pointer", **CONV},
        "cobrowse_highlight": {"t": "cobrowse_highlight", **CONV},
    },
}


def _examples(table: dict[ClientKind, dict[str, dict[str, Any]]]) -> list[Any]:
    return [
        pytest.param(kind, ftype, frame, id=f"{kind.value}-{ftype}")
        for kind, frames in table.items()
        for ftype, frame in frames.items()
    ]


def test_examples_cover_every_frame_type_of_both_tables() -> None:
    for table in (FULL_EXAMPLES, MINIMAL_EXAMPLES):
        assert set(table) == set(FRAMES)
        for kind, frames in FRAMES.items():
            assert set(table[kind]) == set(frames), kind


def test_full_examples_set_every_field() -> None:
    for kind, frames in FRAMES.items():
        for ftype, fields in frames.items():
            assert {f.name for f in fields} <= set(FULL_EXAMPLES[kind][ftype]), (kind, ftype)


@pytest.mark.parametrize(("kind", "ftype", "raw"), _examples(FULL_EXAMPLES))
def test_validate_accepts_full_example(kind: ClientKind, ftype: str, raw: dict[str, Any]) -> None:
    frame = validate(kind, raw)
    assert frame.type == ftype
    assert frame.rid is None
    assert frame.data == {k: v for k, v in raw.items() if k != "t"}


@pytest.mark.parametrize(("kind", "ftype", "raw"), _examples(MINIMAL_EXAMPLES))
def test_validate_accepts_minimal_example(
    kind: ClientKind, ftype: str, raw: dict[str, Any]
) -> None:
    frame = validate(kind, raw)
    assert frame.type == ftype
    assert frame.data == {k: v for k, v in raw.items() if k != "t"}


@pytest.mark.parametrize(("kind", "ftype", "raw"), _examples(MINIMAL_EXAMPLES))
def test_validate_carries_request_id(kind: ClientKind, ftype: str, raw: dict[str, Any]) -> None:
    assert validate(kind, {**raw, "id": 41}).rid == 41


# ---------------------------------------------------------------------------
# validate(): refusals
# ---------------------------------------------------------------------------

_S = "s" * (MAX_ID_CHARS + 1)

V, A = VISITOR, AGENT
INVALID_FIELD, TOO_LONG = ErrorCode.INVALID_FIELD, ErrorCode.TOO_LONG
UNKNOWN_TYPE, BAD_FRAME = ErrorCode.UNKNOWN_TYPE, ErrorCode.BAD_FRAME
_HELLO_V, _HELLO_A = MINIMAL_EXAMPLES[V]["hello"], MINIMAL_EXAMPLES[A]["hello"]
_LONG_BODY = "b" * (MAX_MESSAGE_CHARS + 1)


def case(name: str, kind: ClientKind, raw: Any, code: ErrorCode = INVALID_FIELD) -> Any:
    return pytest.param(kind, raw, code, id=name)


# (kind, raw frame, expected error code)
INVALID_CASES: list[Any] = [
    # missing required fields / explicit null for a required field
    case("send-no-cid", V, {"t": "send", "body": "hi"}),
    case("send-no-body", V, {"t": "send", "cid": "m"}),
    case("a-send-no-conv", A, {"t": "send", "cid": "m", "body": "x"}),
    case("read-no-conv", V, {"t": "read", "offset": 1}),
    case("read-no-offset", V, {"t": "read", **CONV}),
    case("null-req", V, {"t": "read", **CONV, "offset": None}),
    case("typing-no-draft", V, {"t": "typing"}),
    case("a-typing-no-on", A, {"t": "typing", **CONV}),
    case("status-missing", A, {"t": "status"}),
    case("join-no-conv", A, {"t": "join"}),
    case("a-close-no-conv", A, {"t": "close"}),
    # wrong types
    case("str-for-int", V, {"t": "read", **CONV, "offset": "3"}),
    case("float-for-int", V, {"t": "read", **CONV, "offset": 1.0}),
    case("int-for-str", V, {"t": "read", "conv": 7, "offset": 1}),
    case("list-for-str", V, {"t": "read", "conv": ["c"], "offset": 1}),
    case("map-body", V, {"t": "send", "cid": "m", "body": {"x": 1}}),
    case("int-draft", V, {"t": "typing", "draft": 5}),
    case("str-page", V, {**_HELLO_V, "page": "x"}),
    case("int-for-bool", A, {"t": "typing", **CONV, "on": 1}),
    case("str-for-bool", A, {"t": "typing", **CONV, "on": "yes"}),
    case("int-note", A, {"t": "send", **CONV, "cid": "m", "body": "x", "note": 0}),
    # bool where an int is expected
    case("bool-offset", V, {"t": "read", **CONV, "offset": True}),
    case("bool-limit", V, {"t": "history", **CONV, "limit": True}),
    case("bool-since", V, {"t": "history", **CONV, "since": False}),
    # ints out of range
    case("offset-neg", V, {"t": "read", **CONV, "offset": -1}),
    case("since-neg", V, {"t": "history", **CONV, "since": -1}),
    case("before-0", V, {"t": "history", **CONV, "before": 0}),
    case("limit-0", V, {"t": "history", **CONV, "limit": 0}),
    case("limit-max", V, {"t": "history", **CONV, "limit": MAX_HISTORY + 1}),
    # over-long strings
    case("body-long", V, {"t": "send", "cid": "m", "body": _LONG_BODY}, TOO_LONG),
    case("a-body-long", A, {"t": "send", **CONV, "cid": "m", "body": _LONG_BODY}, TOO_LONG),
    case("cid-long", V, {"t": "send", "cid": _S, "body": "x"}),
    case("conv-long", V, {"t": "read", "conv": _S, "offset": 0}),
    case("epoch-long", V, {"t": "history", **CONV, "epoch": _S}),
    case("agent-long", A, {"t": "transfer", **CONV, "agent": _S}),
    case("site-long", V, {**_HELLO_V, "site": _S}),
    case("token-long", A, {**_HELLO_A, "token": "t" * 513}),
    # choices
    case("status-choice", A, {"t": "status", "status": "busy"}),
    case("status-case", A, {"t": "status", "status": "ONLINE"}),
    case("hello-status", A, {**_HELLO_A, "status": "busy"}),
    case("kind-choice", V, {**_HELLO_A, "site": "s"}),
    # empty / whitespace bodies
    case("body-empty", V, {"t": "send", "cid": "m", "body": ""}),
    case("body-ws", V, {"t": "send", "cid": "m", "body": " \t\r\n "}),
    case("a-body-ws", A, {"t": "send", **CONV, "cid": "m", "body": "\n\n"}),
    # unknown types, and agent-only types are unknown to visitors
    case("unknown", V, {"t": "launch_missiles"}, UNKNOWN_TYPE),
    case("empty-type", V, {"t": ""}, UNKNOWN_TYPE),
    case("type-case", V, {"t": "PING"}, UNKNOWN_TYPE),
    case("long-type", A, {"t": "x" * 1000}, UNKNOWN_TYPE),
    *(
        case(f"visitor-sends-{t}", V, FULL_EXAMPLES[A][t], UNKNOWN_TYPE)
        for t in sorted(set(AGENT_FRAMES) - set(VISITOR_FRAMES))
    ),
    # the console's frames: tag, invite, view
    case("tag-no-conv", A, {"t": "tag", "add": ["x"]}),
    case("tag-str-add", A, {"t": "tag", **CONV, "add": "vip"}),
    case("tag-int-tag", A, {"t": "tag", **CONV, "add": [1]}),
    case("tag-long", A, {"t": "tag", **CONV, "remove": ["t" * (MAX_TAG_CHARS + 1)]}),
    case("tag-many", A, {"t": "tag", **CONV, "add": ["t"] * (MAX_TAGS_PER_FRAME + 1)}),
    case("tag-map", A, {"t": "tag", **CONV, "add": [{"x": 1}]}),
    case("invite-no-agent", A, {"t": "invite", **CONV}),
    case("invite-agent-long", A, {"t": "invite", **CONV, "agent": _S}),
    case("view-no-on", A, {"t": "view", **CONV}),
    case("view-int-on", A, {"t": "view", **CONV, "on": 1}),
    case("typing-str-note", A, {"t": "typing", **CONV, "on": True, "note": "yes"}),
    # page, identify, attrs
    case("page-no-url", V, {"t": "page"}),
    case("page-url-long", V, {"t": "page", "url": "u" * (MAX_URL_CHARS + 1)}),
    case("page-title-long", V, {"t": "page", "url": "/", "title": "t" * (MAX_TITLE_CHARS + 1)}),
    case("page-ref-long", V, {"t": "page", "url": "/", "referrer": "r" * (MAX_URL_CHARS + 1)}),
    case("identify-name-long", V, {"t": "identify", "name": "n" * (MAX_NAME_CHARS + 1)}),
    case("identify-email-long", V, {"t": "identify", "email": "e" * (MAX_EMAIL_CHARS + 1)}),
    case("identify-int-name", V, {"t": "identify", "name": 5}),
    case("attrs-no-set", V, {"t": "attrs"}),
    case("attrs-list", V, {"t": "attrs", "set": [1]}),
    case("attrs-many", V, {"t": "attrs", "set": {f"k{i}": i for i in range(MAX_ATTRS + 1)}}),
    case("attrs-key-long", V, {"t": "attrs", "set": {"k" * (MAX_ATTR_KEY_CHARS + 1): 1}}),
    case("attrs-key-empty", V, {"t": "attrs", "set": {"": 1}}),
    case("attrs-value-long", V, {"t": "attrs", "set": {"k": "v" * (MAX_ATTR_VALUE_CHARS + 1)}}),
    case("attrs-array", V, {"t": "attrs", "set": {"k": [1]}}),
    case("attrs-deep", V, {"t": "attrs", "set": {"a": {"b": {"c": 1}}}}),
    case("attrs-nested-many", V, {"t": "attrs", "set": {"a": {f"k{i}": i for i in range(51)}}}),
    case("attrs-nested-long", V, {"t": "attrs", "set": {"a": {"b": "v" * 501}}}),
    case("attrs-big-int", V, {"t": "attrs", "set": {"a": 2**53}}),
    case("attrs-nan", V, {"t": "attrs", "set": {"a": float("nan")}}),
    case("attrs-bytes", V, {"t": "attrs", "set": {f"k{i}": "x" * 490 for i in range(17)}}),
    case("visitor-no-id", A, {"t": "visitor"}),
    case("visitor-id-long", A, {"t": "visitor", "visitor": _S}),
    # no usable type
    case("no-type", V, {"conv": "c"}, BAD_FRAME),
    case("int-type", V, {"t": 1}, BAD_FRAME),
    case("null-type", V, {"t": None}, BAD_FRAME),
    case("list-type", A, {"t": ["ping"]}, BAD_FRAME),
]


@pytest.mark.parametrize(("kind", "raw", "code"), INVALID_CASES)
def test_validate_refuses(kind: ClientKind, raw: dict[str, Any], code: ErrorCode) -> None:
    exc = frame_error(validate, kind, raw)
    assert exc.code is code
    assert exc.rid is None
    assert exc.message


@pytest.mark.parametrize(("kind", "raw", "code"), INVALID_CASES)
def test_validate_error_carries_valid_rid(
    kind: ClientKind, raw: dict[str, Any], code: ErrorCode
) -> None:
    exc = frame_error(validate, kind, {**raw, "id": 0})
    assert (exc.code, exc.rid) == (code, 0)
    exc = frame_error(validate, kind, {**raw, "id": 2**31 - 1})
    assert (exc.code, exc.rid) == (code, 2**31 - 1)


BAD_IDS = [-1, 2**31, 2**40, "1", 1.0, 1.5, True, False, [], {"n": 1}]


@pytest.mark.parametrize("rid", BAD_IDS, ids=repr)
def test_bad_id_is_bad_frame_without_rid(rid: Any) -> None:
    exc = frame_error(validate, VISITOR, {"t": "ping", "id": rid})
    assert (exc.code, exc.rid) == (ErrorCode.BAD_FRAME, None)
    # the id is checked before anything else
    exc = frame_error(validate, AGENT, {"t": "nope", "id": rid})
    assert (exc.code, exc.rid) == (ErrorCode.BAD_FRAME, None)


@pytest.mark.parametrize("rid", [0, 1, 2**31 - 1, None])
def test_good_ids(rid: int | None) -> None:
    assert validate(VISITOR, {"t": "ping", "id": rid}).rid == rid


@pytest.mark.parametrize("raw", [[], ["t", "ping"], "ping", 1, 1.5, None, True, b"x"], ids=repr)
def test_non_map_frame_is_bad_frame(raw: Any) -> None:
    exc = frame_error(validate, AGENT, raw)
    assert (exc.code, exc.rid) == (ErrorCode.BAD_FRAME, None)


def test_limits_are_inclusive() -> None:
    exact = "b" * MAX_MESSAGE_CHARS
    assert validate(VISITOR, {"t": "send", "cid": "c" * MAX_ID_CHARS, "body": exact}).data == {
        "cid": "c" * MAX_ID_CHARS,
        "body": exact,
    }
    assert validate(VISITOR, {"t": "history", **CONV, "limit": MAX_HISTORY}).get("limit") == (
        MAX_HISTORY
    )
    assert validate(AGENT, {**MINIMAL_EXAMPLES[AGENT]["hello"], "token": "t" * 512})


@pytest.mark.parametrize("length", [MAX_PREVIEW_CHARS + 1, MAX_PREVIEW_CHARS * 3])
def test_overlong_draft_is_truncated_not_refused(length: int) -> None:
    draft = "".join(chr(ord("a") + i % 26) for i in range(length))
    frame = validate(VISITOR, {"t": "typing", "draft": draft})
    assert frame.get("draft") == draft[:MAX_PREVIEW_CHARS]
    assert len(frame.get("draft")) == MAX_PREVIEW_CHARS


def test_unknown_extra_fields_are_ignored() -> None:
    raw = {"t": "send", "cid": "m", "body": "hi", "future": {"x": [1, 2]}, "colour": "red"}
    frame = validate(VISITOR, raw)
    assert frame.data == {"cid": "m", "body": "hi"}
    assert frame.get("future") is None
    assert validate(AGENT, {"t": "ping", "id": 3, "extra": None}) == Frame("ping", 3, {})


def test_optional_null_is_absent() -> None:
    frame = validate(VISITOR, {"t": "send", "cid": "m", "body": "hi", "conv": None, "dept": None})
    assert frame.data == {"cid": "m", "body": "hi"}


def test_body_with_surrounding_whitespace_is_kept_verbatim() -> None:
    assert validate(VISITOR, {"t": "send", "cid": "m", "body": "  hi \n"}).get("body") == "  hi \n"


def test_error_message_names_the_field() -> None:
    exc = frame_error(validate, VISITOR, {"t": "read", **CONV, "offset": True})
    assert "'offset'" in exc.message
    assert "boolean" in exc.message


@pytest.mark.parametrize("field", ["since", "before"])
def test_int_fields_beyond_int64_are_refused(field: str) -> None:
    exc = frame_error(validate, VISITOR, {"t": "history", **CONV, field: 2**64})
    assert exc.code is ErrorCode.INVALID_FIELD


# ---------------------------------------------------------------------------
# codecs
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offered", "expected"),
    [
        ([], None),
        (["chat"], None),
        (["chatserver.json"], Codec.JSON),
        (["chatserver.msgpack"], Codec.MSGPACK),
        (["chatserver.json", "chatserver.msgpack"], Codec.MSGPACK),
        (["chatserver.msgpack", "chatserver.json"], Codec.MSGPACK),
        (["x", "chatserver.json", "y"], Codec.JSON),
        (["CHATSERVER.JSON"], None),
    ],
)
def test_codec_negotiate(offered: list[str], expected: Codec | None) -> None:
    assert Codec.negotiate(offered) is expected


OUT_FRAME = {"t": "message", "conv": "c_1", "offset": 7, "body": "grüße 👋", "ts": 1.5, "ok": True}


def test_encode_json_is_compact_utf8_text() -> None:
    text = encode(Codec.JSON, OUT_FRAME)
    assert isinstance(text, str)
    assert " " not in text.replace("grüße 👋", "")
    assert "grüße 👋" in text  # not \u-escaped
    assert json.loads(text) == OUT_FRAME


def test_encode_msgpack_is_bytes_any_client_can_read() -> None:
    data = encode(Codec.MSGPACK, OUT_FRAME)
    assert isinstance(data, bytes)
    assert msgpack.unpackb(data, raw=False) == OUT_FRAME


def test_connection_encodes_with_its_codec() -> None:
    assert isinstance(Connection(Codec.JSON, LOOSE, 0).encode(OUT_FRAME), str)
    assert isinstance(Connection(Codec.MSGPACK, LOOSE, 0).encode(OUT_FRAME), bytes)


@pytest.mark.parametrize("codec", CODECS)
def test_decode_roundtrips_encode(codec: str) -> None:
    assert decode(encode(CODEC_OF[codec], OUT_FRAME)) == OUT_FRAME


@pytest.mark.parametrize("codec", CODECS)
def test_decode_accepts_a_plain_frame(codec: str) -> None:
    assert decode(wire(codec, {"t": "ping", "id": 1})) == {"t": "ping", "id": 1}


@pytest.mark.parametrize(
    "text",
    [
        '{"t": "ping", "id": 1, "x": "\\ud800"}',
        '{"t": "ping", "id": 1, "x": 123456789012345678901234567890}',
        '{"t": "ping", "id": 1, "id": 2}',
        '{"t": "rec", "data": "[{\\"type\\":3,\\"data\\":{\\"x\\":\\"\\u00e9\\\\n\\"}}]"}',
    ],
)
def test_decode_json_reads_as_json_loads(text: str) -> None:
    """The fast JSON reading falls back on ``json`` for what it refuses: same values."""
    got, want = decode(text), json.loads(text)
    assert repr(got) == repr(want)  # repr: NaN is not equal to itself


# Numbers JSON cannot carry: not JSON (RFC 8259), or only a float infinity could hold them.
NON_FINITE_JSON = [
    pytest.param('{"t": "ping", "id": 1, "x": NaN}', id="NaN"),
    pytest.param('{"t": "ping", "id": 1, "x": Infinity}', id="Infinity"),
    pytest.param('{"t": "ping", "id": 1, "x": [1, {"y": -Infinity}]}', id="-Infinity-nested"),
    pytest.param('{"t": "ping", "id": 1, "x": 1e400}', id="1e400"),
    pytest.param('{"t": "ping", "id": 1, "x": -2.5e308}', id="-2.5e308"),
    pytest.param('{"t": "history", "id": 1, "conv": "c_1", "limit": NaN}', id="int-field-NaN"),
    pytest.param('{"t": "attrs", "id": 1, "set": {"total": Infinity}}', id="attrs-Infinity"),
    pytest.param('{"t": "rec", "id": 1, "session": "s", "seq": 0, "now": NaN}', id="rec-now-NaN"),
]
NAN, INF = float("nan"), float("inf")
NON_FINITE_MSGPACK = [
    pytest.param(msgpack.packb({"t": "ping", "id": 1, "x": NAN}), id="nan"),
    pytest.param(msgpack.packb({"t": "ping", "id": 1, "x": [1, {"y": -INF}]}), id="-inf-nested"),
    pytest.param(
        msgpack.packb({"t": "ping", "id": 1, "x": INF}, use_single_float=True), id="inf-float32"
    ),
    pytest.param(msgpack.packb({"t": "history", "id": 1, "conv": "c_1", "limit": NAN}), id="int"),
    pytest.param(msgpack.packb({"t": "attrs", "id": 1, "set": {"a": {"b": INF}}}), id="attrs"),
    pytest.param(
        msgpack.packb({"t": "rec", "id": 1, "session": "s", "seq": 0, "now": NAN}), id="rec-now"
    ),
]


@pytest.mark.parametrize("data", [*NON_FINITE_JSON, *NON_FINITE_MSGPACK])
def test_non_finite_numbers_are_bad_frames(data: bytes | str) -> None:
    """Anywhere in the frame, known field or not: ``200 bad_frame``, no ``re``, still open."""
    conn = open_conn()
    exc = frame_error(conn.receive, data, 0.0)
    assert exc.code is ErrorCode.BAD_FRAME and exc.rid is None
    kind = "msgpack" if isinstance(data, bytes) else "JSON"
    assert exc.message.startswith(f"not a valid {kind} frame")
    assert conn.state is ConnState.OPEN
    assert conn.receive(wire("json", {"t": "ping", "id": 2}), 0.0).type == "ping"


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("value", [NAN, INF, -INF])
def test_non_finite_number_in_hello_is_protocol_violation(codec: str, value: float) -> None:
    hello = {**hello_of(VISITOR), "x": value}
    data = msgpack.packb(hello) if codec == "msgpack" else json.dumps(hello)
    conn = Connection(Codec.MSGPACK, LOOSE, 0.0)
    with pytest.raises(ConnectionClosing) as info:
        conn.receive(data, 0.0)
    assert info.value.code is CloseCode.PROTOCOL_VIOLATION


@pytest.mark.parametrize("codec", CODECS)
def test_finite_floats_are_read_as_before(codec: str) -> None:
    """The other side: the largest floats, float32 and floats in ignored fields are fine."""
    conn = open_conn()
    frame = {"t": "ping", "id": 1, "x": [1.7976931348623157e308, -5e-324, 0.5, -0.0]}
    assert conn.receive(wire(codec, frame), 0.0).type == "ping"
    assert decode(wire(codec, frame)) == frame
    single = msgpack.packb({"t": "ping", "x": 1.5}, use_single_float=True)
    assert decode(single) == {"t": "ping", "x": 1.5}
    rec = {"t": "rec", "session": "s", "seq": 0, "events": [], "now": 1.5}
    assert conn.receive(wire(codec, rec), 0.0).get("now") == 1.5
    # A string holding a float marker's byte is no float.
    assert decode(msgpack.packb({"t": "ping", "x": "\u00cb\u00ca"})) == {
        "t": "ping",
        "x": "\u00cb\u00ca",
    }


def test_error_frame() -> None:
    assert error_frame(ErrorCode.NOT_FOUND, "nope") == {
        "t": "error",
        "code": 205,
        "message": "nope",
    }
    assert error_frame(ErrorCode.RATE_LIMITED, "slow", 0)["re"] == 0
    assert error_frame(ErrorCode.RATE_LIMITED, "slow", 9)["re"] == 9
    frame = error_frame(ErrorCode.BAD_FRAME, "x")
    assert type(frame["code"]) is int  # plain int on the wire, not an IntEnum


def test_error_and_close_code_ranges() -> None:
    assert ErrorCode.RATE_LIMITED.retryable
    assert ErrorCode.INTERNAL.retryable
    assert not ErrorCode.BAD_FRAME.retryable
    assert not ErrorCode.TOO_LONG.retryable
    assert CloseCode.TOO_MANY_ERRORS.reconnect
    assert not CloseCode.PROTOCOL_VIOLATION.reconnect
    assert not CloseCode.UNSUPPORTED_VERSION.reconnect


# ---------------------------------------------------------------------------
# garbage in: always BAD_FRAME
# ---------------------------------------------------------------------------

_PING = msgpack.packb({"t": "ping", "id": 1})

GARBAGE_MSGPACK = [
    pytest.param(b"", id="empty"),
    pytest.param(b"\xc1", id="never-used-byte"),
    pytest.param(b"\xff\xfe\xfd\x00garbage", id="junk"),
    pytest.param(_PING[:-1], id="truncated"),
    pytest.param(_PING[:1], id="truncated-header"),
    pytest.param(b"\xdd\xff\xff\xff\xff", id="array-claims-4G"),
    pytest.param(b"\xdb\x7f\xff\xff\xff", id="str-claims-2G"),
    pytest.param(_PING + b"\x00", id="trailing-data"),
    pytest.param(_PING + _PING, id="two-frames"),
    pytest.param(b"\x81\x01\xa1x", id="int-map-key"),
    pytest.param(b"\x81\xc0\xa1x", id="nil-map-key"),
    pytest.param(b"\x81\x91\x01\xa1x", id="array-map-key"),
    pytest.param(msgpack.packb({"t": "ping", "x": b"raw"}, use_bin_type=True), id="bin-value"),
    pytest.param(msgpack.packb({"t": "ping", "x": msgpack.ExtType(5, b"abc")}), id="ext-value"),
    pytest.param(b"\x81\xa1t\xa2\xed\xa0", id="invalid-utf8"),
    pytest.param(b"\x81\xa1t\xa4\xff\xfe\xfd\xfc", id="invalid-utf8-2"),
    pytest.param(b"\x91" * 5000 + b"\xc0", id="deep-nesting"),
    pytest.param(msgpack.packb({"t": "ping", "x": list(range(1025))}), id="array-over-limit"),
    pytest.param(
        msgpack.packb({"t": "ping", "x": {str(i): i for i in range(257)}}), id="map-over-limit"
    ),
    pytest.param(msgpack.packb(list(range(5000))), id="huge-top-array"),
]

GARBAGE_JSON = [
    pytest.param("", id="empty"),
    pytest.param(" ", id="blank"),
    pytest.param("{", id="open-brace"),
    pytest.param('{"t": "ping"', id="truncated"),
    pytest.param("{'t': 'ping'}", id="single-quotes"),
    pytest.param('{"t": "ping",}', id="trailing-comma"),
    pytest.param('{"t": "ping"} {}', id="two-docs"),
    pytest.param("nul", id="bad-literal"),
    pytest.param('{"t": "\\uZZZZ"}', id="bad-escape"),
    pytest.param('{"t": "ping", "x": ' + "1" * 5000 + "}", id="int-too-many-digits"),
    pytest.param("[" * 5000 + "]" * 5000, id="deep-nesting"),
    pytest.param('{"t": "ping", "x": ' + "[" * 5000 + "]" * 5000 + "}", id="deep-nesting-field"),
    pytest.param('{"t": "ping", "x": ' + "{" * 3000 + "}" * 3000 + "}", id="deep-maps"),
    pytest.param("[]", id="array"),
    pytest.param("[" + ",".join(["1"] * 5000) + "]", id="huge-array"),
    pytest.param('"ping"', id="string"),
    pytest.param("42", id="number"),
    pytest.param("null", id="null"),
    pytest.param("true", id="true"),
]


@pytest.mark.parametrize("data", GARBAGE_MSGPACK)
def test_decode_garbage_msgpack_is_bad_frame(data: bytes) -> None:
    with pytest.raises(FrameError) as info:
        validate(VISITOR, decode(data))
    assert info.value.code is ErrorCode.BAD_FRAME
    assert info.value.rid is None


@pytest.mark.parametrize("data", GARBAGE_JSON)
def test_decode_garbage_json_is_bad_frame(data: str) -> None:
    with pytest.raises(FrameError) as info:
        validate(VISITOR, decode(data))
    assert info.value.code is ErrorCode.BAD_FRAME
    assert info.value.rid is None


@pytest.mark.parametrize("data", [*GARBAGE_MSGPACK, *GARBAGE_JSON])
def test_garbage_on_open_connection_is_bad_frame_and_keeps_it_open(data: bytes | str) -> None:
    conn = open_conn()
    exc = frame_error(conn.receive, data, 0.0)
    assert exc.code is ErrorCode.BAD_FRAME
    assert conn.state is ConnState.OPEN
    assert conn.errors == 1


@pytest.mark.parametrize("data", [*GARBAGE_MSGPACK, *GARBAGE_JSON])
def test_garbage_hello_is_protocol_violation(data: bytes | str) -> None:
    conn = Connection(Codec.MSGPACK, LOOSE, 0.0)
    with pytest.raises(ConnectionClosing) as info:
        conn.receive(data, 0.0)
    assert info.value.code is CloseCode.PROTOCOL_VIOLATION
    assert conn.state is ConnState.CLOSING


def test_msgpack_limits_are_inclusive() -> None:
    """The unpack limits refuse only what is beyond them (the other side of the garbage cases)."""
    conn = open_conn()
    frame = conn.receive(msgpack.packb({"t": "ping", "x": list(range(1024))}), 0.0)
    assert frame.type == "ping"
    frame = conn.receive(msgpack.packb({"t": "ping", "x": {str(i): i for i in range(255)}}), 0.0)
    assert frame.type == "ping"
    frame = conn.receive(msgpack.packb({"t": "ping", "x": [[[[[[[[[[1]]]]]]]]]]}), 0.0)
    assert frame.type == "ping"


@pytest.mark.parametrize(
    "text",
    [
        '{"t": "send", "cid": "m", "body": "hi \\ud800"}',
        '{"t": "send", "cid": "\\udfff", "body": "hi"}',
    ],
)
def test_json_lone_surrogate_is_refused(text: str) -> None:
    conn = open_conn()
    exc = frame_error(conn.receive, text, 0.0)
    assert exc.code in (ErrorCode.BAD_FRAME, ErrorCode.INVALID_FIELD)


# ---------------------------------------------------------------------------
# the same table of frames, through Connection.receive, in both codecs
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize(("kind", "ftype", "raw"), _examples(FULL_EXAMPLES))
def test_receive_accepts_every_frame_type(
    codec: str, kind: ClientKind, ftype: str, raw: dict[str, Any]
) -> None:
    if ftype == "hello":
        conn = Connection(CODEC_OF[codec], LOOSE, 0.0)
    else:
        conn = open_conn(kind, codec=codec)
    frame = conn.receive(wire(codec, {**raw, "id": 12}), 0.0)
    assert (frame.type, frame.rid) == (ftype, 12)
    assert frame.data == {k: v for k, v in raw.items() if k != "t"}
    assert conn.errors == 0


# a hello after accept is a case of its own (NOT_ALLOWED), see the hello tests below;
# a NaN never reaches validate from the wire (test_non_finite_numbers_are_bad_frames)
NON_HELLO_INVALID_CASES = [
    case for case in INVALID_CASES if case.values[1].get("t") != "hello" and case.id != "attrs-nan"
]


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize(("kind", "raw", "code"), NON_HELLO_INVALID_CASES)
def test_receive_refuses_like_validate(
    codec: str, kind: ClientKind, raw: dict[str, Any], code: ErrorCode
) -> None:
    conn = open_conn(kind, codec=codec)
    exc = frame_error(conn.receive, wire(codec, {**raw, "id": 5}), 0.0)
    assert (exc.code, exc.rid) == (code, 5)
    assert conn.state is ConnState.OPEN
    assert conn.errors == 1


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("rid", BAD_IDS, ids=repr)
def test_receive_bad_id(codec: str, rid: Any) -> None:
    conn = open_conn(codec=codec)
    exc = frame_error(conn.receive, wire(codec, {"t": "ping", "id": rid}), 0.0)
    assert (exc.code, exc.rid) == (ErrorCode.BAD_FRAME, None)


@pytest.mark.parametrize("codec", CODECS)
def test_receive_truncates_draft(codec: str) -> None:
    conn = open_conn(codec=codec)
    frame = conn.receive(wire(codec, {"t": "typing", "draft": "é" * 3000}), 0.0)
    assert frame.get("draft") == "é" * MAX_PREVIEW_CHARS


@pytest.mark.parametrize("codec", CODECS)
def test_receive_non_map_is_bad_frame(codec: str) -> None:
    conn = open_conn(codec=codec)
    for raw in ([1, 2], "ping", 3, None):
        exc = frame_error(conn.receive, wire(codec, raw), 0.0)
        assert exc.code is ErrorCode.BAD_FRAME


# ---------------------------------------------------------------------------
# Connection: hello and state machine
# ---------------------------------------------------------------------------


def closing(conn: Connection, data: bytes | str, now: float = 0.0) -> ConnectionClosing:
    with pytest.raises(ConnectionClosing) as info:
        conn.receive(data, now)
    return info.value


def test_new_connection_awaits_hello() -> None:
    conn = Connection(Codec.JSON, Limits(), now=100.0)
    assert conn.state is ConnState.AWAITING_HELLO
    assert conn.kind is None
    assert conn.errors == 0
    assert conn.codec is Codec.JSON


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("kind", [VISITOR, AGENT])
def test_hello_then_accept(codec: str, kind: ClientKind) -> None:
    conn = Connection(CODEC_OF[codec], Limits(), 0.0)
    frame = conn.receive(wire(codec, hello_of(kind, id=1)), 0.0)
    assert (frame.type, frame.rid, frame.get("kind")) == ("hello", 1, kind.value)
    # receiving the hello does not open the connection: the hub decides
    assert conn.state is ConnState.AWAITING_HELLO
    conn.accept(kind)
    assert conn.state is ConnState.OPEN
    assert conn.kind is kind
    assert conn.receive(wire(codec, {"t": "ping"}), 0.0).type == "ping"


@pytest.mark.parametrize("codec", CODECS)
def test_kind_accepted_decides_the_frame_table(codec: str) -> None:
    conn = Connection(CODEC_OF[codec], LOOSE, 0.0)
    conn.receive(wire(codec, hello_of(AGENT)), 0.0)
    conn.accept(AGENT)
    assert conn.receive(wire(codec, {"t": "join", **CONV}), 0.0).type == "join"
    visitor = open_conn(VISITOR, codec=codec)
    exc = frame_error(visitor.receive, wire(codec, {"t": "join", **CONV}), 0.0)
    assert exc.code is ErrorCode.UNKNOWN_TYPE


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize(
    "first",
    [
        pytest.param({"t": "ping"}, id="ping"),
        pytest.param(MINIMAL_EXAMPLES[VISITOR]["send"], id="send"),
        pytest.param({"v": 1, "kind": "visitor", "site": "s"}, id="no-type"),
        pytest.param({"t": "HELLO", "v": 1, "kind": "visitor", "site": "s"}, id="type-case"),
        pytest.param([hello_of(VISITOR)], id="hello-in-array"),
        pytest.param("hello", id="string"),
        pytest.param(hello_of(VISITOR, kind=None), id="no-kind"),
        pytest.param(hello_of(VISITOR, kind="robot"), id="unknown-kind"),
        pytest.param(hello_of(VISITOR, kind=["visitor"]), id="list-kind"),
        pytest.param(hello_of(VISITOR, site=None), id="visitor-no-site"),
        pytest.param(hello_of(VISITOR, site=7), id="visitor-int-site"),
        pytest.param(hello_of(VISITOR, page="x"), id="visitor-bad-page"),
        pytest.param(hello_of(AGENT, token=None), id="agent-no-token"),
        pytest.param(hello_of(AGENT, status="busy"), id="agent-bad-status"),
        pytest.param(hello_of(AGENT, id=-1), id="bad-id"),
        pytest.param(hello_of(VISITOR, v=True), id="bool-version"),
        pytest.param(hello_of(VISITOR, v=1.0), id="float-version"),
    ],
)
def test_bad_hello_is_protocol_violation(codec: str, first: Any) -> None:
    conn = Connection(CODEC_OF[codec], LOOSE, 0.0)
    exc = closing(conn, wire(codec, first))
    assert exc.code is CloseCode.PROTOCOL_VIOLATION
    assert exc.reason
    assert conn.state is ConnState.CLOSING
    # and the connection refuses anything after that
    exc = closing(conn, wire(codec, hello_of(VISITOR)))
    assert exc.code is CloseCode.PROTOCOL_VIOLATION


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("version", [0, 2, PROTOCOL_VERSION + 1, -1, "1", None, [1]], ids=repr)
def test_version_mismatch_is_unsupported_version(codec: str, version: Any) -> None:
    conn = Connection(CODEC_OF[codec], LOOSE, 0.0)
    exc = closing(conn, wire(codec, hello_of(AGENT, v=version)))
    assert exc.code is CloseCode.UNSUPPORTED_VERSION
    assert str(PROTOCOL_VERSION) in exc.reason
    assert conn.state is ConnState.CLOSING


@pytest.mark.parametrize("codec", CODECS)
def test_version_is_checked_before_the_rest_of_the_hello(codec: str) -> None:
    conn = Connection(CODEC_OF[codec], LOOSE, 0.0)
    exc = closing(conn, wire(codec, {"t": "hello", "v": 99, "kind": "martian"}))
    assert exc.code is CloseCode.UNSUPPORTED_VERSION


@pytest.mark.parametrize("codec", CODECS)
def test_unsupported_version_reason_fits_a_close_frame(codec: str) -> None:
    conn = Connection(CODEC_OF[codec], LOOSE, 0.0)
    exc = closing(conn, wire(codec, hello_of(VISITOR, v="9" * 300)))
    assert exc.code is CloseCode.UNSUPPORTED_VERSION
    assert len(exc.reason.encode()) <= 123


def test_hello_too_large_is_protocol_violation() -> None:
    limits = Limits(max_frame_bytes=200)
    conn = Connection(Codec.JSON, limits, 0.0)
    exc = closing(conn, json.dumps(hello_of(VISITOR, page={"x": "p" * 300})))
    assert exc.code is CloseCode.PROTOCOL_VIOLATION
    conn = Connection(Codec.MSGPACK, limits, 0.0)
    exc = closing(conn, msgpack.packb(hello_of(VISITOR, page={"x": "p" * 300})))
    assert exc.code is CloseCode.PROTOCOL_VIOLATION


@pytest.mark.parametrize("codec", CODECS)
def test_hello_may_be_resent_until_accepted(codec: str) -> None:
    conn = Connection(CODEC_OF[codec], LOOSE, 0.0)
    conn.receive(wire(codec, hello_of(VISITOR)), 0.0)
    assert conn.receive(wire(codec, hello_of(VISITOR)), 0.0).type == "hello"
    assert conn.state is ConnState.AWAITING_HELLO


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("kind", [VISITOR, AGENT])
def test_second_hello_after_accept_is_not_allowed(codec: str, kind: ClientKind) -> None:
    conn = Connection(CODEC_OF[codec], LOOSE, 0.0)
    conn.receive(wire(codec, hello_of(kind)), 0.0)
    conn.accept(kind)
    exc = frame_error(conn.receive, wire(codec, hello_of(kind, id=77)), 0.0)
    assert (exc.code, exc.rid) == (ErrorCode.NOT_ALLOWED, 77)
    assert conn.state is ConnState.OPEN
    assert conn.errors == 1
    assert conn.receive(wire(codec, {"t": "ping"}), 0.0).type == "ping"


@pytest.mark.parametrize(
    ("setup", "state"),
    [
        pytest.param(lambda c: c.accept(VISITOR), "open", id="open"),
        pytest.param(lambda c: c.close(), "closing", id="closing"),
        pytest.param(lambda c: c.closed(), "closed", id="closed"),
        pytest.param(lambda c: (c.accept(AGENT), c.close(), c.closed()), "closed", id="done"),
    ],
)
def test_accept_in_wrong_state_raises_naming_the_states(setup: Any, state: str) -> None:
    conn = Connection(Codec.JSON, LOOSE, 0.0)
    setup(conn)
    with pytest.raises(RuntimeError) as info:
        conn.accept(VISITOR)
    assert "awaiting_hello" in str(info.value)
    assert state in str(info.value)
    assert conn.state.value == state


def test_accept_after_rejected_hello_raises() -> None:
    conn = Connection(Codec.JSON, LOOSE, 0.0)
    closing(conn, "garbage")
    with pytest.raises(RuntimeError, match="closing"):
        conn.accept(VISITOR)


def test_close_transitions() -> None:
    conn = Connection(Codec.JSON, LOOSE, 0.0)
    conn.close()
    assert conn.state is ConnState.CLOSING
    conn.close()  # idempotent
    assert conn.state is ConnState.CLOSING
    conn.closed()
    assert conn.state is ConnState.CLOSED
    conn.close()  # a closed connection does not go back to closing
    assert conn.state is ConnState.CLOSED

    conn = open_conn()
    conn.close()
    assert conn.state is ConnState.CLOSING


@pytest.mark.parametrize("finish", ["close", "closed"])
def test_receive_after_close_is_protocol_violation(finish: str) -> None:
    conn = open_conn()
    getattr(conn, finish)()
    exc = closing(conn, json.dumps({"t": "ping"}))
    assert exc.code is CloseCode.PROTOCOL_VIOLATION
    assert conn.state.value in exc.reason
    assert conn.errors == 0


# ---------------------------------------------------------------------------
# Connection: limits
# ---------------------------------------------------------------------------


def test_token_bucket() -> None:
    bucket = TokenBucket(rate=2.0, burst=3.0, now=10.0)
    assert [bucket.take(10.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.retry_after() == pytest.approx(0.5)
    assert not bucket.take(10.4)
    assert bucket.take(10.5)
    assert not bucket.take(10.5)
    # idle time refills up to the burst, never beyond
    assert [bucket.take(1000.0) for _ in range(4)] == [True, True, True, False]
    # a clock going backwards neither refills nor breaks anything
    assert not bucket.take(5.0)
    assert bucket.retry_after() > 0


@pytest.mark.parametrize("codec", CODECS)
def test_rate_limit_then_recovery(codec: str) -> None:
    limits = Limits(rate_per_second=2.0, rate_burst=3.0, max_errors=100)
    conn = Connection(CODEC_OF[codec], limits, now=50.0)
    conn.accept(VISITOR)
    ping = wire(codec, {"t": "ping", "id": 1})
    for _ in range(3):
        assert conn.receive(ping, 50.0).type == "ping"
    exc = frame_error(conn.receive, ping, 50.0)
    assert exc.code is ErrorCode.RATE_LIMITED
    assert exc.code.retryable
    assert "0.50s" in exc.message
    assert conn.errors == 1
    assert conn.state is ConnState.OPEN
    # half a second later one token is back, and only one
    assert conn.receive(ping, 50.5).type == "ping"
    assert frame_error(conn.receive, ping, 50.5).code is ErrorCode.RATE_LIMITED
    # a long pause refills the whole burst
    for _ in range(3):
        assert conn.receive(ping, 60.0).type == "ping"
    assert frame_error(conn.receive, ping, 60.0).code is ErrorCode.RATE_LIMITED


def test_rate_limit_counts_every_frame_even_bad_ones() -> None:
    conn = Connection(Codec.JSON, Limits(rate_per_second=1.0, rate_burst=2.0), now=0.0)
    conn.accept(AGENT)
    assert frame_error(conn.receive, "garbage", 0.0).code is ErrorCode.BAD_FRAME
    assert conn.receive('{"t":"ping"}', 0.0).type == "ping"
    assert frame_error(conn.receive, '{"t":"ping"}', 0.0).code is ErrorCode.RATE_LIMITED


def test_hello_is_not_rate_limited() -> None:
    conn = Connection(Codec.JSON, Limits(rate_per_second=1.0, rate_burst=1.0), now=0.0)
    for _ in range(5):
        conn.receive(json.dumps(hello_of(VISITOR)), 0.0)
    conn.accept(VISITOR)
    assert conn.receive('{"t":"ping"}', 0.0).type == "ping"


def _padded(codec: str, size: int) -> bytes | str:
    """A ping frame of exactly ``size`` bytes in ``codec``."""
    pad = 0
    for _ in range(10):
        data = wire(codec, {"t": "ping", "x": "p" * pad})
        if len(data) == size:
            return data
        pad = max(0, pad + size - len(data))
    raise AssertionError(f"cannot build a {size}-byte frame")


@pytest.mark.parametrize("codec", CODECS)
def test_frame_at_the_size_limit_is_accepted(codec: str) -> None:
    conn = open_conn(limits=Limits(max_frame_bytes=300, rate_burst=1e9), codec=codec)
    assert conn.receive(_padded(codec, 300), 0.0).type == "ping"


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("size", [301, 5000])
def test_frame_over_the_size_limit_is_too_large(codec: str, size: int) -> None:
    conn = open_conn(limits=Limits(max_frame_bytes=300, rate_burst=1e9), codec=codec)
    exc = frame_error(conn.receive, _padded(codec, size), 0.0)
    assert exc.code is ErrorCode.FRAME_TOO_LARGE
    assert "300" in exc.message
    assert conn.state is ConnState.OPEN
    assert conn.errors == 1


@pytest.mark.parametrize("codec", CODECS)
def test_default_frame_limit(codec: str) -> None:
    conn = open_conn(limits=Limits(rate_burst=1e9), codec=codec)
    exc = frame_error(conn.receive, _padded(codec, MAX_FRAME_BYTES + 1), 0.0)
    assert exc.code is ErrorCode.FRAME_TOO_LARGE


def test_text_frame_size_is_measured_in_utf8_bytes() -> None:
    conn = open_conn(limits=Limits(max_frame_bytes=1000, rate_burst=1e9))
    text = json.dumps({"t": "ping", "x": "😀" * 900}, ensure_ascii=False)
    assert len(text) <= 1000 < len(text.encode())
    exc = frame_error(conn.receive, text, 0.0)
    assert exc.code is ErrorCode.FRAME_TOO_LARGE


def test_too_many_errors_closes() -> None:
    conn = open_conn(limits=Limits(max_errors=3, rate_burst=1e9))
    for n in range(1, 4):
        assert frame_error(conn.receive, "bad", 0.0).code is ErrorCode.BAD_FRAME
        assert conn.errors == n
        # good frames in between do not reset the count
        assert conn.receive('{"t":"ping"}', 0.0).type == "ping"
    exc = closing(conn, '{"t":"nope"}')
    assert exc.code is CloseCode.TOO_MANY_ERRORS
    assert exc.code.reconnect
    assert conn.state is ConnState.CLOSING
    exc = closing(conn, '{"t":"ping"}')
    assert exc.code is CloseCode.PROTOCOL_VIOLATION


def test_every_kind_of_frame_error_counts() -> None:
    limits = Limits(max_errors=4, max_frame_bytes=100, rate_per_second=1.0, rate_burst=5.0)
    conn = open_conn(limits=limits)
    bad = [
        ("x" * 101, ErrorCode.FRAME_TOO_LARGE),
        ("[", ErrorCode.BAD_FRAME),
        ('{"t":"join","conv":"c"}', ErrorCode.UNKNOWN_TYPE),
        ('{"t":"read"}', ErrorCode.INVALID_FIELD),
        ('{"t":"ping"}', ErrorCode.RATE_LIMITED),
    ]
    for data, code in bad[:-1]:
        assert frame_error(conn.receive, data, 0.0).code is code
    assert conn.receive('{"t":"ping"}', 0.0).type == "ping"  # the 5th token
    assert closing(conn, bad[-1][0]).code is CloseCode.TOO_MANY_ERRORS


def test_count_error_is_available_to_the_hub() -> None:
    conn = open_conn(limits=Limits(max_errors=1))
    conn.count_error()
    with pytest.raises(ConnectionClosing) as info:
        conn.count_error()
    assert info.value.code is CloseCode.TOO_MANY_ERRORS
    assert conn.state is ConnState.CLOSING


# ---------------------------------------------------------------------------
# fuzzing: only FrameError or ConnectionClosing, ever
# ---------------------------------------------------------------------------

_FIELD_NAMES = sorted(
    {f.name for table in FRAMES.values() for fields in table.values() for f in fields}
    | {"t", "id", "kind", "v"}
)
_TYPES = sorted({t for table in FRAMES.values() for t in table})
_STRINGS = ["", " ", "x", "visitor", "agent", "online", "é", "😀", "\x00", "a" * 70, "b" * 4001]


def _scalar(rng: random.Random, msgpack_safe: bool) -> Any:
    choice = rng.randrange(9)
    if choice == 0:
        return None
    if choice == 1:
        return rng.random() < 0.5
    if choice == 2:
        return rng.choice([0, 1, -1, 2, 200, 201, 2**31 - 1, 2**31, 2**63 - 1, -(2**63)])
    if choice == 3:
        return rng.randint(-(2**40), 2**40)
    if choice == 4:
        return rng.choice([0.0, 1.0, -2.5, 1e300, float("inf")])
    if choice == 5:
        return rng.choice(_STRINGS)
    if choice == 6:
        return rng.choice(_TYPES)
    if choice == 7:
        return "".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(rng.randrange(20)))
    if not msgpack_safe:
        return rng.choice([2**64, -(2**70), 10**30])
    return b"raw" if rng.random() < 0.5 else rng.choice([0, 1])


def _value(rng: random.Random, depth: int, msgpack_safe: bool) -> Any:
    if depth <= 0 or rng.random() < 0.6:
        return _scalar(rng, msgpack_safe)
    if rng.random() < 0.5:
        return [_value(rng, depth - 1, msgpack_safe) for _ in range(rng.randrange(5))]
    return _frame_like(rng, depth - 1, msgpack_safe)


def _frame_like(rng: random.Random, depth: int, msgpack_safe: bool) -> dict[str, Any]:
    """A map that often looks like a frame: a real type and real field names."""
    frame: dict[str, Any] = {}
    if rng.random() < 0.8:
        frame["t"] = rng.choice(_TYPES)
    if rng.random() < 0.3:
        frame["v"] = PROTOCOL_VERSION
        frame["kind"] = rng.choice(["visitor", "agent"])
    for _ in range(rng.randrange(6)):
        key = rng.choice(_FIELD_NAMES) if rng.random() < 0.8 else rng.choice(_STRINGS)
        frame[key] = _value(rng, depth, msgpack_safe)
    return frame


def _random_message(rng: random.Random) -> bytes | str:
    mode = rng.randrange(6)
    if mode == 0:  # random bytes
        return rng.randbytes(rng.randrange(64))
    if mode == 1:  # random text
        return "".join(chr(rng.randrange(0x110000)) for _ in range(rng.randrange(32)))
    if mode == 2:  # a random structure as msgpack, sometimes mangled
        data = msgpack.packb(_frame_like(rng, 3, True), use_bin_type=True)
        if rng.random() < 0.5 and data:
            cut = rng.randrange(len(data))
            data = data[:cut] + rng.randbytes(rng.randrange(4)) + data[cut + 1 :]
        return data  # type: ignore[no-any-return]
    if mode == 3:  # a random structure as JSON, sometimes mangled
        text = json.dumps(_frame_like(rng, 3, False))
        if rng.random() < 0.5:
            cut = rng.randrange(len(text))
            text = text[:cut] + rng.choice(["", "{", "]", '"', "\\", "\\u", ","]) + text[cut + 1 :]
        return text
    if mode == 4:  # any structure, not necessarily a map
        value = _value(rng, 4, True)
        if rng.random() < 0.5:
            return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]
        return json.dumps(value, default=repr)
    # a valid example with one field replaced
    kind = rng.choice([VISITOR, AGENT])
    frame = dict(rng.choice(list(FULL_EXAMPLES[kind].values())))
    frame[rng.choice(_FIELD_NAMES)] = _value(rng, 2, True)
    if rng.random() < 0.5:
        return json.dumps(frame, default=repr)
    return msgpack.packb(frame, use_bin_type=True)  # type: ignore[no-any-return]


FUZZ_ROUNDS = 2000


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fuzz_open_connection_raises_only_protocol_errors(seed: int) -> None:
    rng = random.Random(seed)
    conns = {kind: open_conn(kind) for kind in (VISITOR, AGENT)}
    outcomes = {"frame": 0, "error": 0}
    for _ in range(FUZZ_ROUNDS):
        data = _random_message(rng)
        conn = conns[rng.choice([VISITOR, AGENT])]
        try:
            frame = conn.receive(data, 0.0)
        except FrameError as exc:
            assert isinstance(exc.code, ErrorCode)
            assert exc.rid is None or 0 <= exc.rid <= 2**31 - 1
            outcomes["error"] += 1
        else:
            assert isinstance(frame, Frame)
            assert frame.type in FRAMES[conn.kind]  # type: ignore[index]
            assert frame.type != "hello"
            outcomes["frame"] += 1
        assert conn.state is ConnState.OPEN
    # the generator reaches both outcomes (i.e. it is not all garbage)
    assert outcomes["frame"] > 50
    assert outcomes["error"] > 50


@pytest.mark.parametrize("seed", [4, 5])
def test_fuzz_first_frame_raises_only_connection_closing(seed: int) -> None:
    rng = random.Random(seed)
    hellos = 0
    for _ in range(FUZZ_ROUNDS):
        data = _random_message(rng) if rng.random() < 0.7 else None
        if data is None:  # a hello with one field replaced
            kind = rng.choice([VISITOR, AGENT])
            frame = hello_of(kind, **{rng.choice(_FIELD_NAMES): _value(rng, 2, True)})
            data = json.dumps(frame, default=repr) if rng.random() < 0.5 else wire("msgpack", frame)
        conn = Connection(Codec.MSGPACK, Limits(), 0.0)
        try:
            frame_ = conn.receive(data, 0.0)
        except ConnectionClosing as exc:
            assert isinstance(exc.code, CloseCode)
            assert exc.code in (CloseCode.PROTOCOL_VIOLATION, CloseCode.UNSUPPORTED_VERSION)
            assert conn.state is ConnState.CLOSING
        else:
            assert frame_.type == "hello"
            assert frame_.get("kind") in ("visitor", "agent")
            assert conn.state is ConnState.AWAITING_HELLO
            hellos += 1
    assert hellos > 10


# ---------------------------------------------------------------------------
# validate(): the widget features' frames
# ---------------------------------------------------------------------------

_OFFLINE = MINIMAL_EXAMPLES[V]["offline"]


@pytest.mark.parametrize(
    ("kind", "raw", "code"),
    [
        (V, {**_OFFLINE, "email": "no-at-sign"}, INVALID_FIELD),
        (V, {**_OFFLINE, "email": "a@b"}, INVALID_FIELD),
        (V, {**_OFFLINE, "email": "a@b."}, INVALID_FIELD),
        (V, {**_OFFLINE, "email": "a@@b.co"}, INVALID_FIELD),
        (V, {**_OFFLINE, "email": "a b@c.co"}, INVALID_FIELD),
        (V, {**_OFFLINE, "body": " \n "}, INVALID_FIELD),
        (V, {**_OFFLINE, "body": _LONG_BODY}, TOO_LONG),
        (V, {**_OFFLINE, "cid": _S}, INVALID_FIELD),
        (V, {"t": "rate", "conv": "c_1", "rating": "bad"}, INVALID_FIELD),
        (V, {"t": "rate", "conv": "c_1", "rating": "great", "comment": "c" * 1001}, INVALID_FIELD),
        (V, {"t": "rate", "rating": "great"}, INVALID_FIELD),
        (V, {"t": "transcript", "conv": "c_1", "email": "not an address"}, INVALID_FIELD),
        (V, {"t": "transcript", "conv": "c_1", "email": "a@b.c\r\nBcc: x@y.z"}, INVALID_FIELD),
        (V, {"t": "transcript", "conv": "c_1", "email": "<a@b.c>"}, INVALID_FIELD),
        (V, {"t": "transcript", "conv": "c_1", "email": "a@b.c", "lang": "fr"}, INVALID_FIELD),
        (V, {"t": "transcript", "email": "a@b.c"}, INVALID_FIELD),
        (V, {"t": "attach", "cid": "f1"}, INVALID_FIELD),
        (V, {"t": "attach", "cid": "f1", "attachment": _S}, INVALID_FIELD),
        (A, {"t": "attach", "cid": "f1", "attachment": "f_1"}, INVALID_FIELD),
        (V, {"t": "track", "name": ""}, INVALID_FIELD),
        (V, {"t": "track", "name": "n" * 65}, INVALID_FIELD),
        (V, {"t": "track", "name": "x", "props": {"a": [1]}}, INVALID_FIELD),
        (V, {"t": "track", "name": "x", "props": "no"}, INVALID_FIELD),
        (V, {"t": "identify", "user_id": ""}, INVALID_FIELD),
        (V, {"t": "identify", "user_id": "u" * 201}, INVALID_FIELD),
        (V, {"t": "identify", "user_id": "u", "hash": "h" * 129}, INVALID_FIELD),
        (A, {"t": "rate", "conv": "c_1", "rating": "great"}, UNKNOWN_TYPE),
        (A, {"t": "transcript", "conv": "c_1", "email": "a@b.c"}, UNKNOWN_TYPE),
        (A, {"t": "track", "name": "x"}, UNKNOWN_TYPE),
        (A, {"t": "offline", **{k: v for k, v in _OFFLINE.items() if k != "t"}}, UNKNOWN_TYPE),
    ],
)
def test_widget_feature_frames_refused(kind: ClientKind, raw: dict[str, Any], code: int) -> None:
    with pytest.raises(FrameError) as err:
        validate(kind, {**raw, "id": 7})
    assert err.value.code == code
    assert err.value.rid == 7


def test_offline_accepts_ordinary_addresses() -> None:
    for email in ("ann@example.com", "a.b+shop@mail.example.co.uk", " ann@example.com "):
        assert validate(V, {**_OFFLINE, "email": email}).get("email") == email
