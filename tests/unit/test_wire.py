"""``chatserver.protocol.wire``: the server frames' declarations and their check.

``problems`` is what the test clients run on every frame they receive
(tests/wire_check.py), so it must find each kind of difference: unknown
type, missing key, undeclared key, wrong value type, and the same in nested
shapes and arrays; and the builders must make frames it finds right.
"""

from __future__ import annotations

from typing import Any, Literal, get_args, get_type_hints

import pytest

from chatserver.errors import ErrorCode
from chatserver.protocol import wire
from chatserver.protocol.codec import error_frame

from .. import wire_check

CONV: dict[str, Any] = {
    "id": "c_1",
    "visitor": "v_1",
    "state": "active",
    "epoch": "e1",
    "offset": 3,
    "department": None,
    "agents": [{"id": "a_1", "name": "Anna"}],
    "created_at": 1795379118.2,
    "offline": False,
    "tags": ["vip"],
    "rating": None,
}
MSG: dict[str, Any] = {
    "t": "msg",
    "conv": "c_1",
    "offset": 4,
    "kind": "text",
    "from": {"kind": "visitor", "id": "v_1", "name": ""},
    "body": "hi",
    "ts": 1795379118.2,
    "cid": "k1",
}
LIMITS = {
    "max_frame_bytes": 65536,
    "max_message_chars": 4000,
    "max_preview_chars": 2000,
    "preview_interval": 0.1,
    "rate_per_second": 20.0,
    "rate_burst": 60,
}
SETTINGS = {
    "typing_preview": True,
    "routing": "auto",
    "greeting": "",
    "language": "en",
    "color": "#2563eb",
    "require_identity": False,
    "recording": False,
    "recording_sample": 1.0,
    "recording_consent": False,
    "recording_retention_days": 30,
    "rewind_seconds": 60,
    "redact_patterns": [],
    "audit_retention_days": 365,
    "conversation_retention_days": 0,
    "attachment_retention_days": 0,
    "visitor_retention_days": 0,
    "activity_retention_days": 0,
    "cobrowse": True,
}
VISITOR_WELCOME: dict[str, Any] = {
    "t": "welcome",
    "v": 1,
    "re": None,
    "visitor": "v_1",
    "token": "tok",
    "site": {"name": "Shop", "settings": SETTINGS},
    "agents_online": 0,
    "conv": None,
    "limits": LIMITS,
}


def test_right_frames_have_no_problems() -> None:
    assert wire.problems(MSG) == []
    assert wire.problems({"t": "conv", "conv": CONV, "follow": True, "reads": []}) == []
    assert wire.problems({"t": "conv", "conv": {**CONV, "position": 2}}) == []
    assert wire.problems(VISITOR_WELCOME) == []
    agent_welcome = {
        "t": "welcome",
        "v": 1,
        "re": 5,
        "agent": {
            "id": "a_1",
            "name": "Anna",
            "email": "a@example.com",
            "role": "agent",
            "capacity": 5,
            "departments": [],
        },
        "status": "online",
        "site": {"id": "s_1", "name": "Shop", "departments": ["sales"], "settings": SETTINGS},
        "conversations": [CONV],
        "queue": [],
        "limits": LIMITS,
    }
    assert wire.problems(agent_welcome) == []


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        ({"t": "nope"}, "unknown server frame type 'nope'"),
        ({"re": 1}, "unknown server frame type None"),
        ([1, 2], "a frame must be a map, not list"),
        ({"t": "ok"}, "ok: missing key 're'"),
        ({"t": "ok", "re": 1, "extra": 2}, "ok: undeclared key 'extra'"),
        ({"t": "ok", "re": True}, "ok.re: expected int, got bool"),
        ({"t": "ok", "re": "1"}, "ok.re: expected int, got str"),
        ({"t": "agents", "online": 1.5}, "agents.online: expected int, got float"),
        ({**MSG, "from": {"kind": "agent", "id": "a"}}, "msg.from: missing key 'name'"),
        ({**MSG, "from": "a_1"}, "msg.from: expected a map, got str"),
        ({**MSG, "cid": None}, "msg.cid: expected str, got NoneType"),
        (
            {"t": "conv", "conv": {**CONV, "agents": [{"id": "a_1"}]}},
            "conv.conv.agents[0]: missing key 'name'",
        ),
        ({"t": "conv", "conv": {**CONV, "agents": "a_1"}}, "conv.conv.agents: expected an array"),
        (
            {
                "t": "history",
                "re": 1,
                "conv": "c",
                "epoch": "e",
                "complete": True,
                "more": False,
                "messages": [MSG],
            },
            "history.messages[0]: undeclared key 't'",
        ),
        ({**VISITOR_WELCOME, "limits": {}}, "welcome.limits: missing key 'max_frame_bytes'"),
        ({**VISITOR_WELCOME, "agent": {}}, "welcome: undeclared key 'agent'"),
    ],
)
def test_each_difference_is_found(frame: Any, problem: str) -> None:
    found = wire.problems(frame)
    assert any(p.startswith(problem) for p in found), found


def test_builders_make_declared_frames() -> None:
    assert wire.ok(3) == {"t": "ok", "re": 3}
    assert wire.pong(None) == {"t": "pong", "re": None}
    assert wire.error(203, "bad") == {"t": "error", "code": 203, "message": "bad"}
    assert error_frame(ErrorCode.INVALID_FIELD, "x", 4)["re"] == 4
    ack = wire.ack(1, "k1", "c_1", 4, 1795379118.2, False)
    built: list[Any] = [wire.ok(3), wire.pong(None), wire.error(203, "bad", 7), ack]
    for frame in built:
        assert wire.problems(frame) == [], frame


@pytest.mark.parametrize("ftype", sorted(wire.SERVER_FRAMES))
def test_each_shape_names_its_type(ftype: str) -> None:
    for shape in wire.SERVER_FRAMES[ftype]:
        hint = get_type_hints(shape)["t"]
        assert hint == Literal[ftype] and get_args(hint) == (ftype,), shape.__name__
        assert "t" in wire.required(shape)


def test_the_test_clients_note_wrong_frames() -> None:
    wire_check.check({"t": "ok", "re": 1})
    assert wire_check.take() == []
    wire_check.check({"t": "ok", "re": 1, "oops": True})
    found = wire_check.take()
    assert len(found) == 1 and "undeclared key 'oops'" in found[0]
    assert wire_check.take() == []
