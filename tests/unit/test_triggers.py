"""Trigger rules as pure code: validation (refused rules), the condition evaluator,
the regular-expression safety rule and ``wake_at`` (``chatserver/proactive/rules.py``)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from chatserver.proactive.rules import (
    REGEX_INPUT_CHARS,
    Facts,
    Frequency,
    Match,
    Rule,
    RuleContext,
    RuleError,
    check_regex,
    holds,
    matches,
    ordered,
    parse_rule,
    wake_at,
)

CTX = RuleContext(departments=frozenset({"sales", "support"}), agents={"a_anna": "Anna"})
NOW = 1_800_000_000.0


def rule(*conditions: dict[str, Any], **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "r",
        "conditions": list(conditions),
        "actions": [{"type": "message", "body": "Hello!"}],
    }
    data.update(extra)
    return data


def facts(**kw: Any) -> Facts:
    base: dict[str, Any] = {
        "now": NOW,
        "url": "https://shop.example/checkout?step=2",
        "title": "Your cart — Demo shop",
        "referrer": "https://www.google.com/",
        "page_since": NOW - 10,
        "visit_since": NOW - 100,
        "visits": 3,
        "pages": 4,
        "attributes": {"cart": {"items": 2, "total": 60, "currency": "EUR"}, "plan": "Pro"},
        "device": "mobile",
        "lang": "es-es",
        "has_chat": False,
        "open": True,
        "online": {"": True, "sales": True, "support": False},
    }
    base.update(kw)
    return Facts(**base)


def cond(kind: str, op: str, value: Any = None, path: str | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"kind": kind, "op": op}
    if value is not None:
        c["value"] = value
    if path is not None:
        c["path"] = path
    return c


# (condition, facts overrides, expected)
CASES: list[tuple[dict[str, Any], dict[str, Any], bool]] = [
    (cond("time_on_page", ">=", 10), {}, True),
    (cond("time_on_page", ">=", 10.5), {}, False),
    (cond("time_on_page", "<", 30), {}, True),
    (cond("time_on_site", ">=", 100), {}, True),
    (cond("time_on_site", ">=", 101), {}, False),
    (cond("url", "contains", "/CHECKOUT"), {}, True),  # case-insensitive
    (cond("url", "not_contains", "/checkout"), {}, False),
    (cond("url", "equals", "https://shop.example/checkout?step=2"), {}, True),
    (cond("url", "equals", "https://shop.example/checkout"), {}, False),
    (cond("url", "starts_with", "https://shop.example/"), {}, True),
    (cond("url", "starts_with", "/checkout"), {}, False),
    (cond("url", "regex", r"/checkout\?step=\d+$"), {}, True),
    (cond("url", "regex", r"^/checkout"), {}, False),
    (cond("title", "contains", "cart"), {}, True),
    (cond("referrer", "contains", "google."), {}, True),
    (cond("referrer", "equals", "x"), {"referrer": ""}, False),
    (cond("visits", ">=", 3), {}, True),
    (cond("visits", ">", 3), {}, False),
    (cond("visits", "==", 1), {"visits": 1}, True),
    (cond("visits", "!=", 1), {}, True),
    (cond("pages", "<=", 4), {}, True),
    (cond("pages", "<", 4), {}, False),
    (cond("attribute", ">=", 50, "cart.total"), {}, True),
    (cond("attribute", ">=", 50, "cart.total"), {"attributes": {"cart": {"total": 40}}}, False),
    (cond("attribute", ">=", 1, "cart.items"), {}, True),
    (cond("attribute", ">=", 1, "cart.items"), {"attributes": {}}, False),
    (cond("attribute", ">=", 50, "cart.total"), {"attributes": {"cart": {"total": "59.90"}}}, True),
    (cond("attribute", ">=", 50, "cart.total"), {"attributes": {"cart": {"total": "lots"}}}, False),
    (cond("attribute", ">=", 50, "cart.total"), {"attributes": {"cart": {"total": True}}}, False),
    (cond("attribute", ">=", 50, "cart"), {}, False),  # a map is not a number
    (cond("attribute", "equals", "pro", "plan"), {}, True),
    (cond("attribute", "equals", 60, "cart.total"), {}, True),
    (cond("attribute", "equals", "60", "cart.total"), {}, False),  # a text is not a number
    (cond("attribute", "equals", True, "vip"), {"attributes": {"vip": True}}, True),
    (cond("attribute", "equals", True, "vip"), {"attributes": {"vip": 1}}, False),
    (cond("attribute", "not_equals", "pro", "plan"), {"attributes": {}}, True),
    (cond("attribute", "contains", "EU", "cart.currency"), {}, True),
    (cond("attribute", "starts_with", "p", "plan"), {}, True),
    (cond("attribute", "regex", "^p.o$", "plan"), {}, True),
    (cond("attribute", "exists", path="cart.total"), {}, True),
    (cond("attribute", "exists", path="cart.coupon"), {}, False),
    (cond("attribute", "not_exists", path="coupon"), {}, True),
    (cond("device", "is", "mobile"), {}, True),
    (cond("device", "is_not", "mobile"), {}, False),
    (cond("device", "is", "bot"), {"device": "bot"}, True),
    (cond("language", "is", "es"), {}, True),  # es matches es-es
    (cond("language", "is", "es-ES"), {}, True),
    (cond("language", "is", "es"), {"lang": "est"}, False),  # whole subtags only
    (cond("language", "is_not", "en"), {}, True),
    (cond("business_hours", "is", True), {}, True),
    (cond("business_hours", "is", True), {"open": False}, False),
    (cond("business_hours", "is", False), {"open": False}, True),
    (cond("agent_online", "is", ""), {}, True),
    (cond("agent_online", "is", "support"), {}, False),
    (cond("agent_online", "is_not", "support"), {}, True),
    (cond("agent_online", "is", "sales"), {"online": {}}, False),
    (cond("has_chat", "is", False), {}, True),
    (cond("has_chat", "is", False), {"has_chat": True}, False),
]


@pytest.mark.parametrize(("condition", "overrides", "expected"), CASES)
def test_condition(condition: dict[str, Any], overrides: dict[str, Any], expected: bool) -> None:
    parsed = parse_rule(rule(condition), CTX)
    assert holds(parsed.conditions[0], facts(**overrides)) is expected


# (rule fields, field path of the error)
REFUSED: list[tuple[dict[str, Any], str]] = [
    ({"name": ""}, "name"),
    ({"name": "x" * 101}, "name"),
    ({"enabled": "yes"}, "enabled"),
    ({"match": "most"}, "match"),
    ({"frequency": "daily"}, "frequency"),
    ({"gap": -1}, "gap"),
    ({"gap": 1.5}, "gap"),
    ({"stop": 1}, "stop"),
    ({"conditions": []}, "conditions"),
    ({"conditions": [cond("url", "contains", "x")] * 21}, "conditions"),
    ({"conditions": ["url"]}, "conditions.0.kind"),
    ({"conditions": [cond("weather", "is", "sunny")]}, "conditions.0.kind"),
    ({"conditions": [cond("url", ">=", 3)]}, "conditions.0.op"),
    ({"conditions": [cond("time_on_page", "==", 3)]}, "conditions.0.op"),
    ({"conditions": [cond("time_on_page", ">=", "3")]}, "conditions.0.value"),
    ({"conditions": [cond("time_on_page", ">=", -1)]}, "conditions.0.value"),
    ({"conditions": [cond("time_on_page", ">=", True)]}, "conditions.0.value"),
    ({"conditions": [cond("url", "contains", "")]}, "conditions.0.value"),
    ({"conditions": [cond("url", "contains", 5)]}, "conditions.0.value"),
    ({"conditions": [cond("title", "contains", "x" * 501)]}, "conditions.0.value"),
    ({"conditions": [cond("url", "regex", "(unclosed")]}, "conditions.0.value"),
    ({"conditions": [cond("url", "regex", "(a+)+$")]}, "conditions.0.value"),
    ({"conditions": [cond("url", "regex", "(a|ab)*c")]}, "conditions.0.value"),
    ({"conditions": [cond("url", "regex", r"(\w)\1")]}, "conditions.0.value"),
    ({"conditions": [cond("url", "regex", r"\d*\d*x")]}, "conditions.0.value"),
    ({"conditions": [cond("url", "regex", "/c/.+/p/.+")]}, "conditions.0.value"),
    ({"conditions": [cond("url", "regex", "a" * 201)]}, "conditions.0.value"),
    ({"conditions": [cond("visits", ">=", 1.5)]}, "conditions.0.value"),
    ({"conditions": [cond("pages", ">=", "2")]}, "conditions.0.value"),
    ({"conditions": [cond("attribute", ">=", 50)]}, "conditions.0.path"),
    ({"conditions": [cond("attribute", ">=", 50, "cart.total.eur")]}, "conditions.0.path"),
    ({"conditions": [cond("attribute", ">=", 50, "cart..total")]}, "conditions.0.path"),
    ({"conditions": [cond("attribute", ">=", "50", "cart.total")]}, "conditions.0.value"),
    ({"conditions": [cond("attribute", ">=", True, "cart.total")]}, "conditions.0.value"),
    ({"conditions": [cond("attribute", "contains", 5, "plan")]}, "conditions.0.value"),
    ({"conditions": [cond("attribute", "equals", [1], "plan")]}, "conditions.0.value"),
    ({"conditions": [cond("attribute", "regex", "(x+)*", "plan")]}, "conditions.0.value"),
    ({"conditions": [cond("device", "is", "phone")]}, "conditions.0.value"),
    ({"conditions": [cond("language", "is", "spanish please")]}, "conditions.0.value"),
    ({"conditions": [cond("business_hours", "is", "yes")]}, "conditions.0.value"),
    ({"conditions": [cond("business_hours", "is_not", True)]}, "conditions.0.op"),
    ({"conditions": [cond("agent_online", "is", "billing")]}, "conditions.0.value"),
    ({"conditions": [cond("has_chat", "is", None)]}, "conditions.0.value"),
    ({"actions": []}, "actions"),
    ({"actions": [{"type": "dance"}]}, "actions.0.type"),
    ({"actions": [{"type": "message", "body": "  "}]}, "actions.0.body"),
    ({"actions": [{"type": "message", "body": "x" * 4001}]}, "actions.0.body"),
    ({"actions": [{"type": "message", "body": "hi", "as": "a_nobody"}]}, "actions.0.as"),
    ({"actions": [{"type": "route", "dept": "billing"}]}, "actions.0.dept"),
    ({"actions": [{"type": "tag", "tag": "has space"}]}, "actions.0.tag"),
    ({"actions": [{"type": "tag", "tag": ""}]}, "actions.0.tag"),
    ({"actions": [{"type": "open"}, {"type": "open"}]}, "actions"),
    ({"actions": [{"type": "open"}] * 7}, "actions"),
]


@pytest.mark.parametrize(("fields", "where"), REFUSED)
def test_refused_rules(fields: dict[str, Any], where: str) -> None:
    data = rule(cond("url", "contains", "/checkout"))
    data.update(fields)
    with pytest.raises(RuleError) as err:
        parse_rule(data, CTX)
    assert where in err.value.errors, err.value.errors
    assert err.value.errors[where]  # a reason for the form


def test_every_problem_is_reported_at_once() -> None:
    data = {
        "name": "",
        "conditions": [cond("url", "regex", "(a+)+"), cond("visits", ">=", "x")],
        "actions": [{"type": "route", "dept": "nope"}],
    }
    with pytest.raises(RuleError) as err:
        parse_rule(data, CTX)
    assert set(err.value.errors) == {
        "name",
        "conditions.0.value",
        "conditions.1.value",
        "actions.0.dept",
    }


def test_a_valid_rule_round_trips() -> None:
    data = {
        "name": " Checkout help ",
        "enabled": False,
        "order": 3,
        "match": "any",
        "frequency": "always",
        "gap": 60,
        "stop": True,
        "conditions": [
            cond("url", "contains", "/checkout"),
            cond("attribute", ">=", 50, "cart.total"),
            cond("attribute", "exists", path="coupon"),
            cond("language", "is", "PT-br"),
        ],
        "actions": [
            {"type": "message", "body": "Hi!", "as": "a_anna"},
            {"type": "open"},
            {"type": "route", "dept": "sales"},
            {"type": "tag", "tag": "Checkout"},
        ],
    }
    parsed = parse_rule(data, CTX, "t_1")
    assert parsed.name == "Checkout help" and parsed.id == "t_1"
    assert parsed.match is Match.ANY and parsed.frequency is Frequency.ALWAYS
    assert parsed.actions[3].tag == "checkout"
    stored = parsed.to_json()
    assert stored["conditions"][3] == {"kind": "language", "op": "is", "value": "pt-br"}
    assert stored["conditions"][2] == {"kind": "attribute", "op": "exists", "path": "coupon"}
    again = parse_rule(stored, CTX, "t_1")
    assert again == parsed
    assert parse_rule(stored, None, "t_1") == parsed  # stored rules load without a context


def test_references_are_not_checked_without_a_context() -> None:
    data = rule(cond("agent_online", "is", "gone"), actions=[{"type": "route", "dept": "gone"}])
    assert parse_rule(data, None).actions[0].dept == "gone"
    with pytest.raises(RuleError):
        parse_rule(data, CTX)


def test_match_all_and_any() -> None:
    yes, no = cond("device", "is", "mobile"), cond("device", "is", "desktop")
    assert matches(parse_rule(rule(yes, yes), CTX), facts())
    assert not matches(parse_rule(rule(yes, no), CTX), facts())
    assert matches(parse_rule(rule(yes, no, match="any"), CTX), facts())
    assert not matches(parse_rule(rule(no, no, match="any"), CTX), facts())


def test_wake_at_is_the_next_time_threshold() -> None:
    r = parse_rule(
        rule(
            cond("time_on_page", ">=", 30),
            cond("time_on_site", ">=", 120),
            cond("time_on_page", "<", 600),
            cond("url", "contains", "/checkout"),
        ),
        CTX,
    )
    f = facts()  # 10 s on the page, 100 s on the site
    assert wake_at(r, f) == NOW + 20  # the page threshold comes first
    assert wake_at(r, facts(page_since=NOW - 40)) == NOW + 20  # then the site's
    assert wake_at(r, facts(page_since=NOW - 40, visit_since=NOW - 200)) is None  # all passed
    untimed = parse_rule(rule(cond("url", "contains", "x")), CTX)
    assert wake_at(untimed, f) is None


def test_rules_are_ordered_by_order_then_id() -> None:
    rules = [Rule("b", "b", order=2), Rule("c", "c", order=1), Rule("a", "a", order=2)]
    assert [r.id for r in ordered(rules)] == ["c", "a", "b"]


# -- the regular-expression safety rule ----------------------------------------------

ACCEPTED = [
    r"/checkout",
    r"^https?://shop\.example/p/\d+$",
    r"/(shirts|bags)/",
    r"(?:/en|/es)?/cart",
    r"[a-z0-9-]+\.html$",
    r"^/order/\d{1,8}/done",
    r"(?i)CART",
]
REFUSED_PATTERNS = [
    r"(a+)+$",
    r"(a*)*b",
    r"(a|aa)+b",
    r"(x+x+)+y",
    r"(\w)\1",
    r"(?P<n>a)(?P=n)",
    r"(a)?(?(1)b|c)",
    r"\d*\d*x",
    r".*a.*b",
    r"\d{0,16}\d{0,16}\d{0,16}x",
]


@pytest.mark.parametrize("pattern", ACCEPTED)
def test_safe_patterns_are_accepted(pattern: str) -> None:
    check_regex(pattern)


@pytest.mark.parametrize("pattern", REFUSED_PATTERNS)
def test_dangerous_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(ValueError):
        check_regex(pattern)


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        (r"^https?://x/p/\d+!", "https://x/p/" + "1" * 5000),
        (r"a.*b", "a" * 5000),
        (r"[a-z]+!", "a" * 5000),
        (r"^/order/\d{1,8}/\d+z", "/order/1/" + "2" * 5000),
    ],
)
def test_accepted_patterns_stay_fast_on_hostile_input(pattern: str, text: str) -> None:
    """A visitor controls the text: the worst case of an accepted pattern is bounded."""
    r = parse_rule(rule(cond("url", "regex", pattern)), CTX)
    started = time.perf_counter()
    assert not holds(r.conditions[0], facts(url=text))
    assert time.perf_counter() - started < 0.5  # measured: a few milliseconds
    assert len(text) > REGEX_INPUT_CHARS
