"""Time-ordered ids (``types.sorted_id``): format, order, and every place that reads ids."""

from __future__ import annotations

import base64
import re

import msgpack

from chatserver.mail import reference
from chatserver.protocol import frames
from chatserver.protocol.structs import FAST
from chatserver.security import Signer
from chatserver.types import (
    RANDOM_BITS,
    SORTABLE_DIGITS,
    TIME_CHARS,
    ClientKind,
    new_id,
    sorted_id,
)

URL_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")


def test_the_digits_are_url_safe_and_in_ascii_order() -> None:
    assert len(SORTABLE_DIGITS) == len(set(SORTABLE_DIGITS)) == 64
    assert list(SORTABLE_DIGITS) == sorted(SORTABLE_DIGITS)
    assert URL_SAFE.match(SORTABLE_DIGITS)


def test_an_id_is_the_prefix_the_millisecond_and_72_random_bits() -> None:
    at = 1_780_000_000.123
    made = sorted_id("c", at)
    prefix, _, rest = made.partition("_")
    assert prefix == "c" and URL_SAFE.match(rest)
    stamp, random_part = rest[:TIME_CHARS], rest[TIME_CHARS:]
    ms = 0
    for ch in stamp:
        ms = ms * 64 + SORTABLE_DIGITS.index(ch)
    assert ms == int(at * 1000)
    assert RANDOM_BITS >= 72
    assert len(base64.urlsafe_b64decode(random_part)) * 8 == RANDOM_BITS
    # Two ids of the same millisecond share the stamp and nothing else.
    other = sorted_id("c", at)
    assert other[: 2 + TIME_CHARS] == made[: 2 + TIME_CHARS] and other != made


def test_ids_sort_in_the_order_they_were_made() -> None:
    # Across digit carries (63 -> 64 ms, 4095 -> 4096 ...) and decades apart.
    base = 1_780_000_000.0
    moments = [base + k / 1000 for k in (0, 1, 62, 63, 64, 65, 4095, 4096, 262_144)]
    moments += [0.0, 1.0, 1e9, 4.3e9]  # 1970 to 2106
    moments.sort()
    ids = [sorted_id("c", t) for t in moments]
    assert ids == sorted(ids)
    assert sorted(ids, key=lambda s: s.encode()) == ids  # byte order too (SQLite BINARY)
    assert len({len(i) for i in ids}) == 1  # fixed width: "c_" + 7 + 12


def test_now_ids_sort_after_earlier_ones() -> None:
    earlier = sorted_id("v", 1_700_000_000.0)
    assert sorted_id("v") > earlier


def test_new_ids_pass_where_old_ones_did() -> None:
    conv, old = sorted_id("c"), new_id("c")
    for conv_id in (conv, old):
        assert len(conv_id) <= frames.MAX_ID_CHARS
        # Frame validation, both decoders: the typed one and the general one.
        raw = {"t": "close", "conv": conv_id, "id": 1}
        typed = FAST[ClientKind.AGENT].frame(msgpack.packb(raw))
        assert typed is not None and typed.get("conv") == conv_id
        assert frames.validate(ClientKind.AGENT, raw).get("conv") == conv_id
        # The e-mail reference (signed conversation id) is found again in a text.
        signer = Signer(b"k" * 32)
        ref = reference.sign(signer, conv_id)
        assert reference.find(signer, f"Re: your chat [{ref}] thanks") == (conv_id, True)
