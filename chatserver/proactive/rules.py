"""Proactive trigger rules: their model, validation and evaluation (pure code).

A rule says *when* (conditions on what the server knows of a visitor: the
page, time, visits, attributes, device, language, business hours, agents
online, an open chat, a frustration or failure signal from the session
recording) and *what* (actions: a message, open the widget, a department, a
tag).  Everything here is pure: ``parse_rule`` checks what an
admin saved and either returns a ``Rule`` or raises ``RuleError`` with one
message per bad field (``"conditions.1.value"``); ``matches`` evaluates a rule
against ``Facts`` (a visitor at an instant); ``wake_at`` tells the scheduler
the next instant a time condition could turn a rule true.  Nothing that was
accepted at save time can fail at run time: values are typed, regular
expressions compiled and checked for the safety rule (``check_regex``).

This module is the rules' public face: it validates (``parse_rule``) and
re-exports the rest, which lives in ``model.py`` (the dataclasses, limits,
kinds and operators), ``regex.py`` (the regular expression safety rule) and
``conditions.py`` (``Facts``, compiled conditions, ``Plan``, ``matches``,
``wake_at``, ``ordered``).

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

import math
import re
from typing import Any

from .conditions import Facts, Plan, Test, compile_condition, holds, matches, ordered, plan, wake_at
from .model import (
    ACTIONS,
    ATTRIBUTE_OPS,
    ATTRIBUTE_OPS_ALL,
    DEVICES,
    IS_OPS,
    KINDS,
    MAX_ACTIONS,
    MAX_BODY_CHARS,
    MAX_CONDITIONS,
    MAX_COUNT,
    MAX_GAP,
    MAX_NAME_CHARS,
    MAX_NUMBER,
    MAX_RULES,
    MAX_SECONDS,
    MAX_TAG_CHARS,
    MAX_TEXT_CHARS,
    NUMERIC_OPS,
    SHOP,
    SIGNALS,
    TEXT_OPS,
    TIME_KINDS,
    TIME_OPS,
    Action,
    Condition,
    Frequency,
    Match,
    Rule,
    RuleContext,
    RuleError,
)
from .regex import MAX_REGEX_CHARS, REGEX_INPUT_CHARS, check_regex

__all__ = [
    "ACTIONS",
    "ATTRIBUTE_OPS",
    "ATTRIBUTE_OPS_ALL",
    "DEVICES",
    "IS_OPS",
    "KINDS",
    "MAX_ACTIONS",
    "MAX_BODY_CHARS",
    "MAX_CONDITIONS",
    "MAX_COUNT",
    "MAX_GAP",
    "MAX_NAME_CHARS",
    "MAX_NUMBER",
    "MAX_REGEX_CHARS",
    "MAX_RULES",
    "MAX_SECONDS",
    "MAX_TAG_CHARS",
    "MAX_TEXT_CHARS",
    "NUMERIC_OPS",
    "REGEX_INPUT_CHARS",
    "SHOP",
    "TEXT_OPS",
    "TIME_KINDS",
    "TIME_OPS",
    "Action",
    "Condition",
    "Facts",
    "Frequency",
    "Match",
    "Plan",
    "Rule",
    "RuleContext",
    "RuleError",
    "Test",
    "check_regex",
    "compile_condition",
    "holds",
    "matches",
    "ordered",
    "parse_rule",
    "plan",
    "wake_at",
]

_TAG = re.compile(r"^[a-z0-9][a-z0-9_.:-]*$")
_LANG = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")
_KEY = re.compile(r"^[^.]{1,64}$")


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
    elif kind == "signal":
        if value not in SIGNALS:
            raise bad(f"must be one of {', '.join(SIGNALS)}")
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
