"""Typed ``msgspec`` structs for the client frames: decode and validate in one step.

For every frame type of a client kind whose fields are all scalars (strings,
integers, booleans, numbers: ``send``, ``typing``, ``read``, ``join``, and
``rec`` and ``cobrowse_events`` when their events come as text in ``data``) this
module derives a ``msgspec.Struct`` from the frame tables in ``frames.py``
(lengths, ranges, choices and the request id's range as constraints, unknown
fields refused), and one decoder per kind and codec over the union of them,
tagged by ``t``.  ``Connection.receive`` tries it first: a well-formed
frame comes out checked, without a ``dict`` of the wire map and without the
per-field Python checks (a ``send`` frame's decode and validation took
about a fifth of the time, docs/performance.md).

The fast path only ever *accepts*: anything it does not accept (a
malformed frame, a field out of range, an unknown field, a frame type with
maps, an array given, ``hello``, a typing draft to cut) goes to ``codec.decode``
and ``frames.validate`` as before, which decide and word the error.  So the
errors clients see are exactly those of the tables, and a frame accepted
here is one ``validate`` accepts with the same data (the property
``tests/unit/test_frame_structs.py`` checks on the protocol's valid and
invalid frames).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import to_builtins

from ..types import ClientKind
from .frames import FRAMES, MAX_INT, Field, Frame, finish

_MAX_RID = 2**31 - 1
_RID = Annotated[int, msgspec.Meta(ge=0, le=_MAX_RID)] | None
# NaN and the infinities are bad frames wherever they are (codec.decode): not accepted here.
_FINITE = Annotated[float, msgspec.Meta(ge=-1.7976931348623157e308, le=1.7976931348623157e308)]


def _annotation(spec: Field) -> Any:
    """The type of one field for msgspec, or ``None`` if it is not a scalar."""
    if spec.item is not None:
        return None
    if spec.kind is str:
        if spec.choices is not None:
            return Literal[tuple(sorted(spec.choices))]
        if spec.max_len is not None:
            return Annotated[str, msgspec.Meta(max_length=spec.max_len)]
        return str
    if spec.kind is int:
        upper = MAX_INT if spec.max is None else spec.max
        if spec.min is not None:
            return Annotated[int, msgspec.Meta(ge=spec.min, le=upper)]
        return Annotated[int, msgspec.Meta(le=upper)]
    if spec.kind is bool:
        return bool
    if spec.kind == (int, float):  # an integer in range, or a finite float (``now`` of ``rec``)
        return Annotated[int, msgspec.Meta(le=MAX_INT)] | _FINITE
    if spec.kind is list:
        # An array of anything (``events`` of ``rec`` and ``cobrowse_events``):
        # decoded, then handed to the tables' path when present (``Fast.decode``),
        # so the frames that carry their events as JSON text in ``data``, as the
        # widget sends them, take the typed path.
        return list
    return None  # maps: frames.validate alone


def _struct(kind: ClientKind, ftype: str, fields: tuple[Field, ...]) -> type | None:
    specs: list[tuple[str, Any, Any] | tuple[str, Any]] = [("id", _RID, None)]
    for spec in fields:
        hint = _annotation(spec)
        if hint is None:
            return None
        specs.append((spec.name, hint) if spec.required else (spec.name, hint | None, None))
    return msgspec.defstruct(
        f"{kind.value.title()}{ftype.title().replace('_', '')}",
        specs,
        tag_field="t",
        tag=ftype,
        forbid_unknown_fields=True,
        omit_defaults=True,
        kw_only=True,
        frozen=True,
    )


class Fast:
    """The typed decoders of one client kind (msgpack bytes and JSON text)."""

    __slots__ = ("_arrays", "_json", "kind", "msgpack", "types")

    def __init__(self, kind: ClientKind) -> None:
        self.kind = kind
        structs: list[type] = []
        types: set[str] = set()
        self._arrays: dict[str, frozenset[str]] = {}  # the frame types' untyped array fields
        for ftype, fields in FRAMES[kind].items():
            if ftype == "hello":  # answered by Connection (not allowed once open)
                continue
            made = _struct(kind, ftype, fields)
            if made is not None:
                structs.append(made)
                types.add(ftype)
                arrays = frozenset(f.name for f in fields if f.kind is list)
                if arrays:
                    self._arrays[ftype] = arrays
        self.types = frozenset(types)
        union: Any = structs[0]
        for more in structs[1:]:
            union = union | more
        self.msgpack = msgspec.msgpack.Decoder(union)
        self._json = msgspec.json.Decoder(union)

    def decode(self, data: bytes | str) -> tuple[str, int | None, dict[str, Any]] | None:
        """``(type, request id, fields)`` of a frame whose every field passed its
        checks, or ``None`` when the tables' own path must decide.

        The checks across fields (``frames.finish``) come after: the caller
        takes the frame's rate-limit token first, as for every frame.
        """
        try:
            if isinstance(data, bytes):
                struct = self.msgpack.decode(data)
            else:
                struct = self._json.decode(data)
        except (msgspec.DecodeError, UnicodeEncodeError):  # ValidationError too; lone surrogates
            return None
        # The fields set, as a dict (``omit_defaults``: the absent and null
        # ones left out, as ``validate`` leaves them), with the tag ``t``.
        values: dict[str, Any] = to_builtins(struct)
        ftype: str = values.pop("t")
        if ftype in self._arrays and not self._arrays[ftype].isdisjoint(values):
            return None  # an array's elements: whatever they are, the tables' path decides
        return ftype, values.pop("id", None), values

    def frame(self, data: bytes | str) -> Frame | None:
        """``decode``, then ``frames.finish``: the validated frame, or ``None``.

        Raises ``FrameError`` only for the checks across fields that
        ``finish`` makes (an empty ``send`` body, ...), which the tables'
        path makes the same way on the same data.
        """
        decoded = self.decode(data)
        if decoded is None:
            return None
        return finish(self.kind, *decoded)


FAST: dict[ClientKind, Fast] = {kind: Fast(kind) for kind in FRAMES}
