"""Card numbers are never stored or relayed: the server's side of the widget's redaction.

The widget removes card numbers (and the site's own patterns) from messages,
drafts and the offline form before they leave the page (``widget/src/redact.js``,
docs/privacy.md).  A client that is not the widget (an old one, a script)
gets the same treatment here for card numbers: a run of 13 to 19 digits,
single spaces or dashes allowed between them, that passes the Luhn check, is
replaced by ``MARK`` before anything is stored, previewed or logged; a
draft (the typing preview) loses every run of 7 or more digits, as a card
number being typed is not one yet.  The
site's own patterns are applied in the widget only (they are JavaScript
regular expressions, and an admin's pattern must not cost the server's loop).
"""

from __future__ import annotations

import re

MARK = "[redacted]"
# Each pattern starts with the digit and only then looks back (``(?<!\d\d)``: the
# digit before it is not one), not ``(?<!\d)\d``: a leading look-behind keeps
# ``re`` from skipping ahead to the next digit, so it was tried at every
# character (a typing preview: 3.2 -> 1.4 us for 58 characters, 121 -> 21 us
# for 2,000).  The same matches (tests/unit/test_cards.py).
_RUN = re.compile(r"\d(?<!\d\d)(?:[ -]?\d){12,18}(?!\d)")
# A draft holds a card number still being typed: no run of 7 or more digits is
# previewed (at most a card's first six, which are not secret).
_LONG = re.compile(r"\d(?<!\d\d)(?:[ -]?\d){6,}(?!\d)")


def luhn(digits: str) -> bool:
    """Whether a string of digits passes the Luhn check (the last digit checks the rest)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _mark(match: re.Match[str]) -> str:
    run = match.group()
    return MARK if luhn(run.replace(" ", "").replace("-", "")) else run


def redact(text: str) -> str:
    """``text`` with every card number replaced by ``MARK``."""
    if len(text) < 13:
        return text
    return _RUN.sub(_mark, text)


def redact_draft(text: str) -> str:
    """A typing preview's ``text`` with every run of 7 or more digits replaced by ``MARK``."""
    if len(text) < 7:
        return text
    return _LONG.sub(MARK, text)
