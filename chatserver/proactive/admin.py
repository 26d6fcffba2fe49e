"""The admin's trigger writes, each one service call: the store written, then every process told.

A site's rules (site documents of kind ``TRIGGER_KIND``, one per rule, named
by the rule's id) and its business hours (``HOURS_DOC``) are written here and
nowhere else; the console's triggers pages keep the forms, the validation
messages and the rendering.  Each call writes to the Store first and then
calls ``control.triggers_changed``: this process's engine reloads the site's
rules and re-evaluates its connected visitors at once, and a control event
makes every other process do the same.

Rules arrive validated (``rules.parse_rule``); ``toggle_rule`` and
``reorder`` change one field of documents as stored, as the console always has.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .. import control
from ..types import Doc, SiteId, new_id
from .hours import HOURS_DOC, BusinessHours
from .model import Rule
from .names import TRIGGER_KIND

if TYPE_CHECKING:
    from ..node import Node


async def save_rule(node: Node, site_id: SiteId, rule: Rule) -> None:
    """Save ``rule`` under its id (a new rule or an edit); every process reloads the rules."""
    await node.store.put_doc(site_id, TRIGGER_KIND, rule.id, rule.to_json())
    await control.triggers_changed(node, site_id)


async def toggle_rule(node: Node, site_id: SiteId, rule_id: str) -> bool:
    """Enable a disabled rule or disable an enabled one; ``False`` when there is no such rule."""
    doc = await node.store.get_doc(site_id, TRIGGER_KIND, rule_id)
    if doc is None:
        return False
    data = {**doc.data, "enabled": not doc.data.get("enabled")}
    await node.store.put_doc(site_id, TRIGGER_KIND, doc.id, data)
    await control.triggers_changed(node, site_id)
    return True


async def reorder(node: Node, site_id: SiteId, docs: Sequence[Doc]) -> None:
    """Number the rule documents ``docs`` 1..n in this order (the evaluation order).

    Only the documents whose ``order`` changes are written.
    """
    for order, doc in enumerate(docs, 1):
        if doc.data.get("order") != order:
            await node.store.put_doc(site_id, TRIGGER_KIND, doc.id, {**doc.data, "order": order})
    await control.triggers_changed(node, site_id)


async def delete_rule(node: Node, site_id: SiteId, rule_id: str) -> bool:
    """Delete a rule (its firings and counters stay); ``False`` when there was none."""
    deleted = await node.store.delete_doc(site_id, TRIGGER_KIND, rule_id)
    await control.triggers_changed(node, site_id)
    return deleted


async def import_rules(node: Node, site_id: SiteId, rules: Sequence[Rule], replace: bool) -> None:
    """Add ``rules`` after the site's rules, in their order, each under a new id.

    With ``replace`` the site's rules are deleted first.  The caller checks
    the count against ``MAX_RULES``; every process reloads the rules once.
    """
    store = node.store
    existing = await store.list_docs(site_id, TRIGGER_KIND)
    if replace:
        for doc in existing:
            await store.delete_doc(site_id, TRIGGER_KIND, doc.id)
        start = 0
    else:
        start = max((d.data.get("order", 0) for d in existing), default=0)
    for n, rule in enumerate(rules, start + 1):
        await store.put_doc(site_id, TRIGGER_KIND, new_id("t"), {**rule.to_json(), "order": n})
    await control.triggers_changed(node, site_id)


async def save_hours(node: Node, site_id: SiteId, hours: BusinessHours) -> None:
    """Save the site's business hours; every process re-evaluates against them."""
    await node.store.put_doc(site_id, *HOURS_DOC, hours.to_json())
    await control.triggers_changed(node, site_id)


async def clear_hours(node: Node, site_id: SiteId) -> None:
    """Remove the site's business hours: it counts as open all the time."""
    await node.store.delete_doc(site_id, *HOURS_DOC)
    await control.triggers_changed(node, site_id)
