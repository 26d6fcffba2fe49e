"""The typed frame decoders (``chatserver/protocol/structs.py``) against the tables.

The fast path may only *accept*, and only what ``frames.validate`` accepts
with the same data; everything else it hands back (``None``) for the tables
to decide.  These tests check that property on every example frame of the
protocol tests, on every invalid case, on each field's limits and on
random and mutated frames in both codecs, and that the common frames do
take the fast path (else it would be dead code that still passed).
"""

from __future__ import annotations

import contextlib
import json
import random
from typing import Any

import msgpack
import pytest

from chatserver.errors import ErrorCode, FrameError
from chatserver.protocol.codec import decode
from chatserver.protocol.frames import FRAMES, MAX_INT, Frame, Limits, validate
from chatserver.protocol.structs import FAST
from chatserver.types import ClientKind

from .test_protocol import (
    FULL_EXAMPLES,
    INVALID_CASES,
    MINIMAL_EXAMPLES,
    _random_message,
    _value,
    open_conn,
)

KINDS = (ClientKind.VISITOR, ClientKind.AGENT)


def slow(kind: ClientKind, data: bytes | str) -> Frame | FrameError:
    try:
        return validate(kind, decode(data))
    except FrameError as exc:
        return exc


def fast(kind: ClientKind, data: bytes | str) -> Frame | FrameError | None:
    try:
        return FAST[kind].frame(data)
    except FrameError as exc:
        return exc


def same(a: Frame | FrameError, b: Frame | FrameError) -> bool:
    if isinstance(a, FrameError) and isinstance(b, FrameError):
        return (a.code, a.message, a.rid) == (b.code, b.message, b.rid)
    return a == b


def both(obj: Any) -> list[bytes | str]:
    """``obj`` in each codec that can carry it (msgpack has no integer past 64 bits)."""
    out: list[bytes | str] = [json.dumps(obj, ensure_ascii=False)]
    with contextlib.suppress(OverflowError):
        out.append(msgpack.packb(obj, use_bin_type=True))
    return out


def agrees(kind: ClientKind, data: bytes | str) -> Frame | FrameError | None:
    """The fast result, asserted to be nothing or exactly the tables' result."""
    got = fast(kind, data)
    if got is not None:
        want = slow(kind, data)
        assert same(got, want), (kind, data, got, want)
    return got


def examples(arrays: bool = False) -> list[Any]:
    """The protocol's examples of the typed frame types: those without an array
    (``arrays=False``), or those with one (``arrays=True``: ``rec`` and
    ``cobrowse_events`` with their ``events``)."""
    out = []
    for table in (FULL_EXAMPLES, MINIMAL_EXAMPLES):
        for kind in KINDS:
            for ftype, raw in table[kind].items():
                has_array = any(isinstance(v, list) for v in raw.values())
                if ftype in FAST[kind].types and has_array == arrays:
                    out.append(pytest.param(kind, raw, id=f"{kind.value}-{ftype}-{len(raw)}"))
    return out


@pytest.mark.parametrize(("kind", "raw"), examples())
def test_every_scalar_frame_example_takes_the_fast_path(kind: ClientKind, raw: Any) -> None:
    for data in both(raw):
        assert isinstance(agrees(kind, data), Frame)
    with_id = {**raw, "id": 2**31 - 1}
    for data in both(with_id):
        got = agrees(kind, data)
        assert isinstance(got, Frame) and got.rid == 2**31 - 1


@pytest.mark.parametrize(("kind", "raw"), examples(arrays=True))
def test_a_typed_frame_with_an_array_is_left_to_the_tables(kind: ClientKind, raw: Any) -> None:
    for data in both(raw):
        assert FAST[kind].decode(data) is None
        assert isinstance(slow(kind, data), Frame)  # which accept it
    # without the array (its events as text in ``data``, as the widget sends them): typed
    bare = {k: v for k, v in raw.items() if not isinstance(v, list)}
    bare.setdefault("data", "[]")
    for data in both(bare):
        assert FAST[kind].decode(data) is not None
        assert isinstance(agrees(kind, data), Frame)


def test_the_hot_frames_are_typed() -> None:
    hot = {"send", "typing", "read", "ping", "history", "rec", "cobrowse_events"}
    assert hot <= FAST[ClientKind.VISITOR].types
    assert {"send", "typing", "read", "join", "cobrowse_pointer"} <= FAST[ClientKind.AGENT].types
    # hello and the frames with maps or typed arrays stay with the tables
    untyped = {"hello", "attrs", "track"}
    assert not untyped & FAST[ClientKind.VISITOR].types
    assert not {"hello", "tag"} & FAST[ClientKind.AGENT].types


@pytest.mark.parametrize(("kind", "raw", "code"), INVALID_CASES)
def test_invalid_frames_are_left_to_the_tables(kind: ClientKind, raw: Any, code: Any) -> None:
    for data in both(raw):
        got = agrees(kind, data)
        assert got is None or isinstance(got, FrameError)


def test_limits_and_oddities_agree() -> None:
    """Each field of each typed frame at and past its limits, null, and of the wrong type."""
    taken = 0
    for kind in KINDS:
        for ftype in sorted(FAST[kind].types):
            base = FULL_EXAMPLES[kind][ftype]
            for spec in FRAMES[kind][ftype]:
                values: list[Any] = [None, True, 1.5, -1, "", [], {}]
                if spec.max_len is not None:
                    values += ["x" * spec.max_len, "x" * (spec.max_len + 1), "é" * spec.max_len]
                if spec.kind is int:
                    low = 0 if spec.min is None else spec.min
                    high = MAX_INT if spec.max is None else spec.max
                    values += [low, low - 1, high, high + 1, 2**63, 2**64]
                for value in values:
                    for data in both({**base, spec.name: value}):
                        taken += isinstance(agrees(kind, data), Frame)
                for data in both({k: v for k, v in base.items() if k != spec.name}):
                    agrees(kind, data)
            for extra in ({"x": 1}, {"id": -1}, {"id": True}, {"t": "ping"}):
                for data in both({**base, **extra}):
                    agrees(kind, data)
    assert taken > 100


def test_duplicate_keys_are_read_alike() -> None:
    body_twice = b"\x84\xa1t\xa4send\xa3cid\xa1a\xa4body\xa1x\xa4body\xa1y"
    got = agrees(ClientKind.VISITOR, body_twice)
    assert isinstance(got, Frame) and got.data["body"] == "y"
    text = '{"t":"send","cid":"a","body":"x","body":"y"}'
    got = agrees(ClientKind.VISITOR, text)
    assert isinstance(got, Frame) and got.data["body"] == "y"
    for data in ('{"t":"ping","t":"send","cid":"a","body":"x"}', '{"t":"send","t":"ping"}'):
        for kind in KINDS:
            agrees(kind, data)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_fuzz_fast_path_agrees_with_the_tables(seed: int) -> None:
    rng = random.Random(seed)
    taken = 0
    for _ in range(3000):
        if rng.random() < 0.5:
            data = _random_message(rng)
        else:  # a typed frame's example with one field replaced
            kind = rng.choice(KINDS)
            ftype = rng.choice(sorted(FAST[kind].types))
            frame = dict(FULL_EXAMPLES[kind][ftype])
            name = rng.choice([*frame, "id"])
            frame[name] = _value(rng, 1, True)
            packed = msgpack.packb(frame, use_bin_type=True)
            data = rng.choice([packed, json.dumps(frame)]) if _jsonable(frame) else packed
        for kind in KINDS:
            taken += isinstance(agrees(kind, data), Frame)
    assert taken > 200


def _jsonable(obj: Any) -> bool:
    try:
        json.dumps(obj, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


@pytest.mark.parametrize("extra", [{}, {"x": 1}], ids=["typed", "tables"])
def test_a_frame_refused_across_fields_still_takes_a_token(extra: dict[str, Any]) -> None:
    """The same rate limit and the same answers on both paths (an unknown field
    sends the frame through the tables): a ``send`` with a blank body takes a
    token before it is refused, and once the tokens are gone it is rate limited."""
    conn = open_conn(ClientKind.VISITOR, Limits(rate_per_second=0.001, rate_burst=2.0))
    blank = msgpack.packb({"t": "send", "cid": "a", "body": "  ", **extra})
    ping = msgpack.packb({"t": "ping", **extra})
    codes = []
    for data in (blank, ping, blank, ping):
        try:
            conn.receive(data, 0.0)
            codes.append(None)
        except FrameError as exc:
            codes.append(exc.code)
    assert codes == [ErrorCode.INVALID_FIELD, None, ErrorCode.RATE_LIMITED, ErrorCode.RATE_LIMITED]
