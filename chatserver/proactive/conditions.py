"""Evaluating rules: ``Facts`` (a visitor at an instant), each condition compiled to a
test once, a rule's ``Plan``, and ``wake_at`` for the scheduler.  Pure.

``matches`` evaluates a rule against ``Facts``; ``wake_at`` tells the
scheduler the next instant a time condition could turn a rule true.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..types import JSON
from .model import Action, Condition, Match, Rule
from .regex import REGEX_INPUT_CHARS, check_regex


@dataclass(slots=True)
class Facts:
    """What the server knows of one visitor, for evaluating rules at ``now``.

    Times are Unix seconds.  ``page_since`` is when the current page view
    began, ``visit_since`` when the visit began; ``pages`` counts the page
    views of this visit.  ``online`` maps a department (``""``: any) to
    whether an agent serving it is online; ``open`` says whether the site is
    within business hours.  Both are filled by the caller for the rules that
    ask (``Plan.departments``, ``Plan.hours``).
    """

    now: float = 0.0
    url: str = ""
    title: str = ""
    referrer: str = ""
    page_since: float = 0.0
    visit_since: float = 0.0
    visits: int = 0
    pages: int = 0
    attributes: JSON = field(default_factory=dict)
    device: str = "desktop"
    lang: str = ""
    has_chat: bool = False
    open: bool = True
    online: Mapping[str, bool] = field(default_factory=dict)
    # the recordings' signals seen on the current page (recordings/signals.py)
    signals: frozenset[str] = frozenset()
    # The texts case-folded once per evaluation, not once per condition.
    url_cf: str = field(default="", init=False)
    title_cf: str = field(default="", init=False)
    referrer_cf: str = field(default="", init=False)

    def __post_init__(self) -> None:
        self.url_cf = self.url.casefold()
        self.title_cf = self.title.casefold()
        self.referrer_cf = self.referrer.casefold()


_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}

Test = Callable[[Facts], bool]


def _text_test(cond: Condition, raw: str, folded: str) -> Test:
    """A URL, title or referrer condition; ``raw``/``folded`` name the Facts fields."""
    if cond.op == "regex":
        pattern = cond.pattern or check_regex(str(cond.value))
        search = pattern.search
        return lambda f: search(getattr(f, raw)[:REGEX_INPUT_CHARS]) is not None
    want = str(cond.value).casefold()
    if cond.op == "contains":
        return lambda f: want in getattr(f, folded)
    if cond.op == "not_contains":
        return lambda f: want not in getattr(f, folded)
    if cond.op == "equals":
        return lambda f: getattr(f, folded) == want
    return lambda f: getattr(f, folded).startswith(want)  # "starts_with"


def _string_op(cond: Condition, text: str) -> bool:
    if cond.op == "regex":
        pattern = cond.pattern or check_regex(str(cond.value))
        return pattern.search(text[:REGEX_INPUT_CHARS]) is not None
    text, want = text.casefold(), str(cond.value).casefold()
    if cond.op == "contains":
        return want in text
    return text.startswith(want)  # "starts_with"


def _number(value: Any) -> float | None:
    """A visitor's attribute as a number: numbers, and texts that spell one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and len(value) <= 32:
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


_MISSING = object()


def _attribute(cond: Condition, attributes: JSON) -> bool:
    value: Any = attributes.get(cond.path[0], _MISSING)
    if len(cond.path) == 2:
        value = value.get(cond.path[1], _MISSING) if isinstance(value, dict) else _MISSING
    op = cond.op
    if op == "exists":
        return value is not _MISSING
    if op == "not_exists":
        return value is _MISSING
    if value is _MISSING or isinstance(value, dict):
        return op == "not_equals"
    if op in _COMPARE:
        number = _number(value)
        return number is not None and _COMPARE[op](number, float(cond.value))
    if op in ("equals", "not_equals"):
        want = cond.value
        if isinstance(want, bool) or isinstance(value, bool):
            same = value is want
        elif isinstance(want, str):
            same = isinstance(value, str) and value.casefold() == want.casefold()
        else:
            number = _number(value) if not isinstance(value, str) else None
            same = number is not None and number == float(want)
        return same if op == "equals" else not same
    return _string_op(cond, value if isinstance(value, str) else str(value))


def compile_condition(cond: Condition) -> Test:
    """The condition as a function of ``Facts`` (the dispatch on kind and op done once)."""
    kind, op, value = cond.kind, cond.op, cond.value
    if kind in ("time_on_page", "time_on_site"):
        limit = float(value)
        if kind == "time_on_page":
            return (
                (lambda f: f.now - f.page_since >= limit)
                if op == ">="
                else (lambda f: f.now - f.page_since < limit)
            )
        return (
            (lambda f: f.now - f.visit_since >= limit)
            if op == ">="
            else (lambda f: f.now - f.visit_since < limit)
        )
    if kind in ("url", "title", "referrer"):
        return _text_test(cond, kind, f"{kind}_cf")
    if kind in ("visits", "pages"):
        compare, number = _COMPARE[op], float(value)
        if kind == "visits":
            return lambda f: compare(f.visits, number)
        return lambda f: compare(f.pages, number)
    if kind == "attribute":
        return lambda f: _attribute(cond, f.attributes)
    wanted = op == "is"
    if kind == "device":
        return lambda f: (f.device == value) is wanted
    if kind == "language":
        prefix = f"{value}-"
        return lambda f: (f.lang == value or f.lang.startswith(prefix)) is wanted
    if kind == "business_hours":
        return lambda f: f.open is value
    if kind == "agent_online":
        dept = str(value)
        return lambda f: f.online.get(dept, False) is wanted
    if kind == "has_chat":
        return lambda f: f.has_chat is value
    if kind == "signal":
        if value == "any":
            return lambda f: bool(f.signals) is wanted
        return lambda f: (value in f.signals) is wanted
    return lambda f: False


def holds(cond: Condition, facts: Facts) -> bool:
    """Whether one condition is true of ``facts``."""
    return compile_condition(cond)(facts)


def _cost(cond: Condition) -> int:
    """Cheap checks first: evaluation order does not change an all/any result."""
    if cond.op == "regex":
        return 3
    if cond.kind in ("url", "title", "referrer"):
        return 2
    if cond.kind == "attribute":
        return 1
    return 0


class Plan:
    """A rule made ready to evaluate many times: conditions compiled, cheap ones
    first, and what the engine asks of a rule computed once."""

    __slots__ = (
        "departments",
        "hours",
        "match_all",
        "page_waits",
        "referrer",
        "sends",
        "site_waits",
        "tests",
        "timed",
    )

    def __init__(
        self, conditions: Sequence[Condition], match: Match, actions: Sequence[Action]
    ) -> None:
        self.tests = tuple(compile_condition(c) for c in sorted(conditions, key=_cost))
        self.match_all = match is Match.ALL
        self.page_waits = tuple(
            float(c.value) for c in conditions if c.kind == "time_on_page" and c.op == ">="
        )
        self.site_waits = tuple(
            float(c.value) for c in conditions if c.kind == "time_on_site" and c.op == ">="
        )
        self.timed = bool(self.page_waits or self.site_waits)
        self.hours = any(c.kind == "business_hours" for c in conditions)
        self.referrer = any(c.kind == "referrer" for c in conditions)
        self.departments = frozenset(str(c.value) for c in conditions if c.kind == "agent_online")
        self.sends = any(a.type == "message" for a in actions)

    def matches(self, facts: Facts) -> bool:
        # Plain loops rather than all()/any(): no generator per call on the hot path.
        if self.match_all:
            for test in self.tests:  # noqa: SIM110
                if not test(facts):
                    return False
            return True
        for test in self.tests:  # noqa: SIM110
            if test(facts):
                return True
        return False

    def wake_at(self, facts: Facts) -> float | None:
        best: float | None = None
        now = facts.now
        for wait in self.page_waits:
            at = facts.page_since + wait
            if at > now and (best is None or at < best):
                best = at
        for wait in self.site_waits:
            at = facts.visit_since + wait
            if at > now and (best is None or at < best):
                best = at
        return best


def plan(rule: Rule) -> Plan:
    """The rule's evaluation plan (made by ``parse_rule``; built here for other rules)."""
    return rule.plan or Plan(rule.conditions, rule.match, rule.actions)


def matches(rule: Rule, facts: Facts) -> bool:
    """Whether the rule's conditions hold (all of them, or any, per ``rule.match``)."""
    return plan(rule).matches(facts)


def wake_at(rule: Rule, facts: Facts) -> float | None:
    """The next instant after ``facts.now`` at which a time condition of ``rule`` turns true.

    Only ``>=`` time conditions turn true as time passes (``<`` ones only turn
    false), so the answer is the earliest future threshold among them;
    ``None`` when there is none.  Between events a rule's truth can change
    only at such an instant (or at a business-hours boundary, which the
    caller adds), so waking the visitor then is enough.
    """
    return plan(rule).wake_at(facts)


def ordered(rules: Sequence[Rule]) -> list[Rule]:
    """Rules in evaluation order: ``order``, then id (stable across processes)."""
    return sorted(rules, key=lambda r: (r.order, r.id))
