"""The names the trigger engine stores under (site documents, the tag, the counters)."""

from __future__ import annotations

TRIGGER_KIND = "trigger"  # site documents holding the rules (one per rule, id = rule id)
WAIT_KIND = "trigger-wait"  # site documents marking unrouted proactive conversations
PROACTIVE_TAG = "proactive"  # the tag of a conversation a trigger opened
COUNTERS = "triggers"  # the store counter group: "<rule id>.fired", "<rule id>.chats"


def dated(day: str, rule_id: str, what: str) -> tuple[str, str]:
    """The counter group and name of one rule's ``what`` ("fired", "chats") on a
    local day (YYYY-MM-DD): one group a month, ``triggers@YYYY-MM``, named
    ``<rule id>.<what>.<DD>``, so a report reads one group per month it covers."""
    return f"{COUNTERS}@{day[:7]}", f"{rule_id}.{what}.{day[8:10]}"


def parse_dated(group: str, name: str) -> tuple[str, str, str] | None:
    """``(day, rule id, what)`` of a name in a ``dated`` group, or ``None``."""
    rule_id, _, rest = name.rpartition(".")
    rule_id, _, what = rule_id.rpartition(".")
    if not rule_id or len(rest) != 2 or not rest.isdigit() or "@" not in group:
        return None
    return f"{group.split('@', 1)[1]}-{rest}", rule_id, what
