"""Card numbers are removed before anything is stored (chatserver/cards.py)."""

from __future__ import annotations

import random
import re

import pytest

from chatserver import cards
from chatserver.cards import MARK, luhn, redact, redact_draft

VISA = "4242424242424242"  # a test card: passes the Luhn check


@pytest.mark.parametrize(
    ("digits", "valid"),
    [(VISA, True), ("4242424242424241", False), ("378282246310005", True), ("0", True)],
)
def test_luhn(digits: str, valid: bool) -> None:
    assert luhn(digits) is valid


@pytest.mark.parametrize(
    ("text", "want"),
    [
        (f"my card is {VISA} thanks", f"my card is {MARK} thanks"),
        ("4242 4242 4242 4242", MARK),
        ("4242-4242-4242-4242, exp 12/29", f"{MARK}, exp 12/29"),
        ("amex 3782 822463 10005", f"amex {MARK}"),
        ("order 4242424242424241", "order 4242424242424241"),  # fails Luhn: an order number
        ("call 600 123 456", "call 600 123 456"),  # too short
        (f"{VISA} and {VISA}", f"{MARK} and {MARK}"),
        (f"x{VISA}9", f"x{VISA}9"),  # 17 digits: not Luhn-valid as a whole
    ],
)
def test_redact(text: str, want: str) -> None:
    assert redact(text) == want


def test_a_draft_previews_no_run_of_seven_digits() -> None:
    assert redact_draft("card 424242") == "card 424242"  # six: a card's first six at most
    assert redact_draft("card 4242 424") == f"card {MARK}"
    assert redact_draft("order 12345678, phone 600 12") == f"order {MARK}, phone 600 12"


def test_the_digit_first_patterns_match_what_the_plain_ones_do() -> None:
    """The patterns look behind after their first digit (faster, cards.py); on random
    strings of digits, spaces, dashes and letters they find the same runs as the
    plain ``(?<!\\d)\\d...`` forms."""
    plain_run = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")
    plain_long = re.compile(r"(?<!\d)\d(?:[ -]?\d){6,}(?!\d)")
    rnd = random.Random(22)
    for _ in range(20_000):
        text = "".join(rnd.choice("0123456789 -a") for _ in range(rnd.randint(0, 48)))
        assert [m.span() for m in cards._RUN.finditer(text)] == [
            m.span() for m in plain_run.finditer(text)
        ], text
        assert [m.span() for m in cards._LONG.finditer(text)] == [
            m.span() for m in plain_long.finditer(text)
        ], text
