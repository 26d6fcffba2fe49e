"""The regular expression safety rule: an admin's pattern is accepted only when its
worst case stays small (``check_regex``).  Pure."""

from __future__ import annotations

import importlib
import re
from typing import Any

# The regular expression safety rule (check_regex).
MAX_REGEX_CHARS = 200
REGEX_INPUT_CHARS = 512  # a regex sees at most this much of the text
_REGEX_BUDGET = 8 * REGEX_INPUT_CHARS  # product of quantifier widths (see check_regex)


_parser: Any = importlib.import_module("re._parser")  # the stdlib's own regex parser
_consts: Any = importlib.import_module("re._constants")
_REPEATS = {_consts.MAX_REPEAT, _consts.MIN_REPEAT}
if hasattr(_consts, "POSSESSIVE_REPEAT"):
    _REPEATS.add(_consts.POSSESSIVE_REPEAT)
_MAXREPEAT = _consts.MAXREPEAT


def check_regex(source: str) -> re.Pattern[str]:
    """Compile an admin's regular expression, or raise ``ValueError`` saying why not.

    Python's ``re`` backtracks, so a pattern can take exponential (``(a+)+``)
    or high polynomial (``\\d*\\d*\\d*x``) time on a crafted input, and the
    input (a URL, a title, an attribute) comes from the visitor's browser.
    A pattern is accepted only when its worst case stays small:

    * at most ``MAX_REGEX_CHARS`` characters, and it compiles;
    * no backreferences (``\\1``, ``(?P=name)``) and no conditionals;
    * no quantifier applied to something that contains a quantifier or an
      alternation (``(a+)+``, ``(a|ab)*``): the exponential cases;
    * the product of the quantifiers' widths is at most 8 x 512: an
      unbounded one (``*``, ``+``, ``{n,}``) counts as 512, ``{m,n}`` as
      ``n - m + 1``, ``?`` as 2.  So one unbounded quantifier with a little
      optional text (``https?://shop/p/\\d+``) passes, two unbounded ones
      (``/c/.+/p/.+``) do not: use ``contains`` or ``starts with``, or one
      wildcard;
    * at run time the pattern searches at most the first
      ``REGEX_INPUT_CHARS`` (512) characters of the text, case-insensitively.

    Together these bound a search to a few million steps (milliseconds).
    """
    if len(source) > MAX_REGEX_CHARS:
        raise ValueError(f"longer than {MAX_REGEX_CHARS} characters")
    try:
        compiled = re.compile(source, re.IGNORECASE)
        tree = _parser.parse(source, re.IGNORECASE)
    except (re.error, RecursionError, OverflowError) as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None
    width = _walk(tree, inside_repeat=False)
    if width > _REGEX_BUDGET:
        raise ValueError(
            "too much backtracking possible: use at most one unbounded quantifier "
            "(*, +, {n,}) and few optional parts"
        )
    return compiled


def _walk(items: Any, inside_repeat: bool) -> int:
    """The product of quantifier widths under ``items``; raises for refused shapes."""
    total = 1
    for op, arg in items:
        if op in (_consts.GROUPREF, _consts.GROUPREF_EXISTS):
            raise ValueError("backreferences and conditionals are not allowed")
        if op in _REPEATS:
            low, high, sub = arg
            if inside_repeat and high != 1:
                raise ValueError("a quantifier inside a quantified group is not allowed")
            if high != 1 and _has_branch(sub):
                raise ValueError("a quantifier on a group with alternatives (a|b) is not allowed")
            if high == _MAXREPEAT:
                span = REGEX_INPUT_CHARS
            else:
                span = min(REGEX_INPUT_CHARS, high - low + 1)
            total *= span * _walk(sub, inside_repeat=inside_repeat or high != 1)
        elif op == _consts.SUBPATTERN:
            total *= _walk(arg[-1], inside_repeat)
        elif op == _consts.BRANCH:
            total *= max((_walk(branch, inside_repeat) for branch in arg[1]), default=1)
        elif op in (_consts.ASSERT, _consts.ASSERT_NOT):
            total *= _walk(arg[1], inside_repeat)
        total = min(total, _REGEX_BUDGET * REGEX_INPUT_CHARS)  # keep the number small
    return total


def _has_branch(items: Any) -> bool:
    for op, arg in items:
        if op == _consts.BRANCH:
            return True
        if op == _consts.SUBPATTERN and _has_branch(arg[-1]):
            return True
        if op in (_consts.ASSERT, _consts.ASSERT_NOT) and _has_branch(arg[1]):
            return True
    return False
