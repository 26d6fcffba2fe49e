"""Proactive trigger rules: their model, validation and evaluation (pure code).

A rule says *when* (conditions on what the server knows of a visitor: the
page, time, visits, attributes, device, language, business hours, agents
online, an open chat) and *what* (actions: a message, open the widget, a
department, a tag).  Everything here is pure: ``parse_rule`` checks what an
admin saved and either returns a ``Rule`` or raises ``RuleError`` with one
message per bad field (``"conditions.1.value"``); ``matches`` evaluates a rule
against ``Facts`` (a visitor at an instant); ``wake_at`` tells the scheduler
the next instant a time condition could turn a rule true.  Nothing that was
accepted at save time can fail at run time: values are typed, regular
expressions compiled and checked for the safety rule (``check_regex``).

The rule format (also the export format, docs/triggers.md)::

    {"name": "Checkout help", "enabled": true, "match": "all",
     "frequency": "visit", "gap": 600, "stop": false,
     "conditions": [{"kind": "url", "op": "contains", "value": "/checkout"},
                    {"kind": "time_on_page", "op": ">=", "value": 3},
                    {"kind": "attribute", "path": "cart.total", "op": ">=", "value": 50}],
     "actions": [{"type": "message", "body": "Free shipping over 50!", "as": "shop"},
                 {"type": "open"}]}
"""

from __future__ import annotations

import importlib
import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ..types import JSON

# -- limits -------------------------------------------------------------------

MAX_RULES = 100  # per site
MAX_NAME_CHARS = 100
MAX_CONDITIONS = 20
MAX_ACTIONS = 6
MAX_TEXT_CHARS = 500  # a text condition's value
MAX_BODY_CHARS = 4000  # a message action's body (the protocol's message limit)
MAX_TAG_CHARS = 32
MAX_GAP = 30 * 86400  # seconds
MAX_SECONDS = 86400  # time conditions
MAX_COUNT = 1_000_000
MAX_NUMBER = 2**53 - 1

# The regular expression safety rule (check_regex).
MAX_REGEX_CHARS = 200
REGEX_INPUT_CHARS = 512  # a regex sees at most this much of the text
_REGEX_BUDGET = 8 * REGEX_INPUT_CHARS  # product of quantifier widths (see check_regex)

DEVICES = ("mobile", "tablet", "desktop", "bot")
_TAG = re.compile(r"^[a-z0-9][a-z0-9_.:-]*$")
_LANG = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")
_KEY = re.compile(r"^[^.]{1,64}$")


class Match(Enum):
    ALL = "all"
    ANY = "any"


class Frequency(Enum):
    """How often a rule may fire for one visitor.

    ``visit``: once per visit; ``visitor``: once ever; ``always``: at most
    once per page view and at least ``gap`` seconds after its last firing.
    """

    VISIT = "visit"
    VISITOR = "visitor"
    ALWAYS = "always"


NUMERIC_OPS = (">=", ">", "<=", "<", "==", "!=")
TEXT_OPS = ("contains", "not_contains", "equals", "starts_with", "regex")
TIME_OPS = (">=", "<")
IS_OPS = ("is", "is_not")
ATTRIBUTE_OPS = (*NUMERIC_OPS, "equals", "not_equals", "contains", "starts_with", "regex")
ATTRIBUTE_OPS_ALL = (*ATTRIBUTE_OPS, "exists", "not_exists")

# kind -> the operators it takes
KINDS: dict[str, tuple[str, ...]] = {
    "time_on_page": TIME_OPS,
    "time_on_site": TIME_OPS,
    "url": TEXT_OPS,
    "title": TEXT_OPS,
    "referrer": TEXT_OPS,
    "visits": NUMERIC_OPS,
    "pages": NUMERIC_OPS,
    "attribute": ATTRIBUTE_OPS_ALL,
    "device": IS_OPS,
    "language": IS_OPS,
    "business_hours": ("is",),
    "agent_online": IS_OPS,
    "has_chat": ("is",),
}
TIME_KINDS = frozenset({"time_on_page", "time_on_site"})
ACTIONS = ("message", "open", "route", "tag")
SHOP = "shop"  # a message's sender when it is not an agent


class RuleError(ValueError):
    """A rule that cannot be saved; ``errors`` maps field paths to reasons."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


# -- the model ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Condition:
    kind: str
    op: str
    value: Any = None
    path: tuple[str, ...] = ()  # attribute: ("cart", "total")
    pattern: re.Pattern[str] | None = field(default=None, compare=False)

    def to_json(self) -> JSON:
        data: JSON = {"kind": self.kind, "op": self.op}
        if self.path:
            data["path"] = ".".join(self.path)
        if self.op not in ("exists", "not_exists"):
            data["value"] = self.value
        return data


@dataclass(frozen=True, slots=True)
class Action:
    type: str
    body: str = ""
    sender: str = SHOP  # "shop" or an agent id
    dept: str = ""
    tag: str = ""

    def to_json(self) -> JSON:
        if self.type == "message":
            return {"type": "message", "body": self.body, "as": self.sender}
        if self.type == "route":
            return {"type": "route", "dept": self.dept}
        if self.type == "tag":
            return {"type": "tag", "tag": self.tag}
        return {"type": self.type}


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    name: str
    enabled: bool = True
    order: int = 0
    match: Match = Match.ALL
    frequency: Frequency = Frequency.VISIT
    gap: int = 600
    stop: bool = False
    conditions: tuple[Condition, ...] = ()
    actions: tuple[Action, ...] = ()
    plan: Plan | None = field(default=None, compare=False, repr=False)

    def to_json(self) -> JSON:
        """The stored and exported form (without the id, which names the document)."""
        return {
            "name": self.name,
            "enabled": self.enabled,
            "order": self.order,
            "match": self.match.value,
            "frequency": self.frequency.value,
            "gap": self.gap,
            "stop": self.stop,
            "conditions": [c.to_json() for c in self.conditions],
            "actions": [a.to_json() for a in self.actions],
        }


@dataclass(frozen=True, slots=True)
class RuleContext:
    """What validation checks references against: the site's departments and agents."""

    departments: frozenset[str] = frozenset()
    agents: Mapping[str, str] = field(default_factory=dict)  # id -> name


# -- the regular expression safety rule ------------------------------------------------

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


# -- validation ---------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and abs(value) <= MAX_NUMBER
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(value: Any, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty text")
    if len(value) > limit:
        raise ValueError(f"longer than {limit} characters")
    return value


def _condition(raw: Any, ctx: RuleContext | None) -> Condition:
    """One condition, or ``ValueError`` naming the bad field as ``"field: reason"``."""
    if not isinstance(raw, dict):
        raise ValueError("kind: a condition must be a map")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise ValueError(f"kind: must be one of {', '.join(KINDS)}")
    op = raw.get("op")
    ops = KINDS[kind]
    if op not in ops:
        raise ValueError(f"op: {kind} takes {', '.join(ops)}")
    value: Any = raw.get("value")
    path: tuple[str, ...] = ()
    pattern: re.Pattern[str] | None = None

    def bad(why: str) -> ValueError:
        return ValueError(f"value: {why}")

    if kind in TIME_KINDS:
        if not _is_number(value) or not 0 <= float(value) <= MAX_SECONDS:
            raise bad(f"must be a number of seconds from 0 to {MAX_SECONDS}")
    elif kind in ("url", "title", "referrer"):
        try:
            value = _text(value, MAX_TEXT_CHARS)
            if op == "regex":
                pattern = check_regex(value)
        except ValueError as exc:
            raise bad(str(exc)) from None
    elif kind in ("visits", "pages"):
        if not _is_int(value) or not 0 <= int(value) <= MAX_COUNT:
            raise bad(f"must be a whole number from 0 to {MAX_COUNT}")
    elif kind == "attribute":
        raw_path = raw.get("path")
        parts = raw_path.split(".") if isinstance(raw_path, str) else []
        if not 1 <= len(parts) <= 2 or not all(_KEY.match(p) for p in parts):
            raise ValueError("path: an attribute name, or map.key (such as cart.total)")
        path = tuple(parts)
        if op in NUMERIC_OPS:
            if not _is_number(value):
                raise bad(f"{op} compares numbers: the value must be a number")
        elif op in ("equals", "not_equals"):
            if not (_is_number(value) or isinstance(value, bool | str)):
                raise bad("must be a text, a number or true/false")
            if isinstance(value, str) and len(value) > MAX_TEXT_CHARS:
                raise bad(f"longer than {MAX_TEXT_CHARS} characters")
        elif op in ("contains", "starts_with", "regex"):
            try:
                value = _text(value, MAX_TEXT_CHARS)
                if op == "regex":
                    pattern = check_regex(value)
            except ValueError as exc:
                raise bad(str(exc)) from None
        else:
            value = None
    elif kind == "device":
        if value not in DEVICES:
            raise bad(f"must be one of {', '.join(DEVICES)}")
    elif kind == "language":
        if not isinstance(value, str) or not _LANG.match(value.lower()):
            raise bad("must be a language tag such as es or pt-br")
        value = value.lower()
    elif kind in ("business_hours", "has_chat"):
        if not isinstance(value, bool):
            raise bad("must be true or false")
    elif kind == "agent_online":
        if not isinstance(value, str) or len(value) > 64:
            raise bad("must be a department of the site, or empty for any agent")
        if value and ctx is not None and value not in ctx.departments:
            raise bad("must be a department of the site, or empty for any agent")
    return Condition(kind, op, value, path, pattern)


def _action(raw: Any, ctx: RuleContext | None) -> Action:
    if not isinstance(raw, dict):
        raise ValueError("type: an action must be a map")
    kind = raw.get("type")
    if kind not in ACTIONS:
        raise ValueError(f"type: must be one of {', '.join(ACTIONS)}")
    if kind == "message":
        try:
            body = _text(raw.get("body"), MAX_BODY_CHARS).strip()
        except ValueError as exc:
            raise ValueError(f"body: {exc}") from None
        sender = raw.get("as", SHOP)
        if not isinstance(sender, str) or not sender or len(sender) > 64:
            raise ValueError("as: must be 'shop' or an agent of the site")
        if sender != SHOP and ctx is not None and sender not in ctx.agents:
            raise ValueError("as: must be 'shop' or an agent of the site")
        return Action("message", body=body, sender=str(sender))
    if kind == "route":
        dept = raw.get("dept")
        if not isinstance(dept, str) or not dept or len(dept) > 64:
            raise ValueError("dept: must be a department of the site")
        if ctx is not None and dept not in ctx.departments:
            raise ValueError("dept: must be a department of the site")
        return Action("route", dept=dept)
    if kind == "tag":
        tag = raw.get("tag")
        if not isinstance(tag, str) or not tag.strip():
            raise ValueError("tag: must be a non-empty text")
        tag = tag.strip().lower()
        if len(tag) > MAX_TAG_CHARS or not _TAG.match(tag):
            raise ValueError(
                f"tag: up to {MAX_TAG_CHARS} letters, digits and - _ . : (starting with "
                "a letter or digit)"
            )
        return Action("tag", tag=tag)
    return Action("open")


def parse_rule(data: Any, ctx: RuleContext | None, rule_id: str = "") -> Rule:
    """Check a rule as stored, imported or submitted; raise ``RuleError`` with every problem.

    ``ctx`` names the site's departments and agents that references must
    point to; ``None`` skips those checks (rules read back from the store were
    checked when saved; a department removed since then simply has no agents).
    """
    errors: dict[str, str] = {}
    if not isinstance(data, dict):
        raise RuleError({"rule": "a rule must be a map"})
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        errors["name"] = "give the rule a name"
    elif len(name.strip()) > MAX_NAME_CHARS:
        errors["name"] = f"longer than {MAX_NAME_CHARS} characters"
    flags: dict[str, bool] = {}
    for key, default in (("enabled", True), ("stop", False)):
        value = data.get(key, default)
        if not isinstance(value, bool):
            errors[key] = "must be true or false"
        flags[key] = bool(value)
    order = data.get("order", 0)
    if not _is_int(order) or abs(order) > MAX_COUNT:
        errors["order"] = "must be a whole number"
        order = 0
    match = Match.ALL
    try:
        match = Match(data.get("match", "all"))
    except ValueError:
        errors["match"] = "must be all or any"
    frequency = Frequency.VISIT
    try:
        frequency = Frequency(data.get("frequency", "visit"))
    except ValueError:
        errors["frequency"] = "must be visit, visitor or always"
    gap = data.get("gap", 600)
    if not _is_int(gap) or not 0 <= gap <= MAX_GAP:
        errors["gap"] = f"must be a whole number of seconds from 0 to {MAX_GAP}"
        gap = 0
    conditions: list[Condition] = []
    raw_conditions = data.get("conditions")
    if not isinstance(raw_conditions, list) or not raw_conditions:
        errors["conditions"] = "give at least one condition"
    elif len(raw_conditions) > MAX_CONDITIONS:
        errors["conditions"] = f"at most {MAX_CONDITIONS} conditions"
    else:
        for i, raw in enumerate(raw_conditions):
            try:
                conditions.append(_condition(raw, ctx))
            except ValueError as exc:
                where, _, why = str(exc).partition(": ")
                errors[f"conditions.{i}.{where}"] = why
    actions: list[Action] = []
    raw_actions = data.get("actions")
    if not isinstance(raw_actions, list) or not raw_actions:
        errors["actions"] = "give at least one action"
    elif len(raw_actions) > MAX_ACTIONS:
        errors["actions"] = f"at most {MAX_ACTIONS} actions"
    else:
        for i, raw in enumerate(raw_actions):
            try:
                actions.append(_action(raw, ctx))
            except ValueError as exc:
                where, _, why = str(exc).partition(": ")
                errors[f"actions.{i}.{where}"] = why
        for kind in ("message", "open", "route"):
            if sum(a.type == kind for a in actions) > 1:
                errors["actions"] = f"at most one {kind} action"
    if errors:
        raise RuleError(errors)
    return Rule(
        id=rule_id,
        name=str(name).strip(),
        enabled=flags["enabled"],
        order=int(order),
        match=match,
        frequency=frequency,
        gap=int(gap),
        stop=flags["stop"],
        conditions=tuple(conditions),
        actions=tuple(actions),
        plan=Plan(conditions, match, actions),
    )


# -- evaluation ---------------------------------------------------------------


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
