"""The names the trigger engine stores under (site documents, the tag, the counters)."""

from __future__ import annotations

TRIGGER_KIND = "trigger"  # site documents holding the rules (one per rule, id = rule id)
WAIT_KIND = "trigger-wait"  # site documents marking unrouted proactive conversations
PROACTIVE_TAG = "proactive"  # the tag of a conversation a trigger opened
COUNTERS = "triggers"  # the store counter group: "<rule id>.fired", "<rule id>.chats"
