"""A trigger rule's model: limits, the condition kinds and operators, the rule itself.

Pure data, made and checked by ``rules.parse_rule``; evaluated by ``conditions``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from ..types import JSON

if TYPE_CHECKING:
    from .conditions import Plan

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

DEVICES = ("mobile", "tablet", "desktop", "bot")


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
    "signal": IS_OPS,
}
# What a "signal" condition names: one of the recordings' signals (recordings/signals.py),
# or any of them, on the current page.
SIGNALS = ("rage", "dead", "error", "request", "abandon", "any")
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
