"""Firing a rule: claim it in the store (once per visitor, across processes), count it,
and run its actions (a greeting that opens an unrouted conversation, open the
widget, a department, tags).

A greeting's conversation is tagged ``proactive`` and marked by a site
document ``(WAIT_KIND, <conversation id>)`` before anyone can see it, so no
process routes it until the visitor answers (``waits.py``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..conversations import frame_event, visitor_channel
from ..errors import Closed, FrameError, StoreError
from ..types import AuthorKind, Conversation, EntryKind, Firing
from ..visitor_rows import ensure as ensure_visitor
from .model import SHOP, Frequency, Rule
from .names import PROACTIVE_TAG, WAIT_KIND
from .watch import Watch

if TYPE_CHECKING:
    from .engine import Proactive

log = logging.getLogger("chatserver.proactive")


async def fire(engine: Proactive, w: Watch, rule: Rule, now: float) -> None:
    """Fire ``rule`` for ``w`` at ``now`` if the store lets this process claim it."""
    store = engine.node.store
    # A firing is remembered in the Store, and a greeting opens a
    # conversation: either makes a visitor without a row worth storing.
    try:
        for session in list(w.sessions):
            await ensure_visitor(engine.node, session)
    except FrameError as exc:  # the site's new-visitor quota
        log.warning("trigger %s not fired for %s: %s", rule.id, w.visitor_id, exc.message)
        return
    won = await store.claim_firing(
        w.visitor_id,
        rule.id,
        visit=w.visit,
        frequency=rule.frequency.value,
        gap=float(rule.gap),
        now=now,
    )
    if rule.frequency is Frequency.ALWAYS:
        w.page_fired.add(rule.id)
    if not won:  # fired already (another process, another tab): learn when
        w.fired.update(await store.trigger_firings(w.visitor_id))
        w.fired.setdefault(rule.id, Firing(w.visit, now))
        return
    w.fired[rule.id] = Firing(w.visit, now)
    engine.stats.fired += 1
    await engine.count(w.site_id, rule.id, "fired", now)
    try:
        await act(engine, w, rule, now)
    except Closed:
        log.info("trigger %s: the conversation closed meanwhile", rule.id)
    except StoreError:
        log.exception("trigger %s fired but its actions failed", rule.id)


async def act(engine: Proactive, w: Watch, rule: Rule, now: float) -> None:
    """Run the actions of a rule that fired for ``w``."""
    node = engine.node
    store = node.store
    site = await node.hub.site(w.site_id)
    dept = next((a.dept for a in rule.actions if a.type == "route"), None)
    tags = [a.tag for a in rule.actions if a.type == "tag"]
    message = next((a for a in rule.actions if a.type == "message"), None)
    conv: Conversation | None = None
    if message is not None:
        conv = await store.current_conversation(w.visitor_id)
        if conv is None:
            online = await node.router.available_agents(site.id)
            conv, created = await store.open_conversation(
                site.id, w.visitor_id, dept, offline=online == 0
            )
            if created:
                node.convs.opened(conv)
                # Marked before anyone can see it, so no process routes it.
                await store.put_doc(
                    site.id, WAIT_KIND, conv.id, {"visitor": w.visitor_id, "at": now}
                )
                engine._waiting.add(conv.id)
                conv = await store.set_tags(conv.id, add=[PROACTIVE_TAG, *tags])
                tags = []
                # Every tab of the visitor follows it (recovering the message
                # below from the store if it is published before they follow).
                await node.broker.publish(
                    visitor_channel(w.visitor_id), {"op": "follow", "conv": conv.id}
                )
        kind, author_id, name = AuthorKind.SYSTEM, "", site.name
        if message.sender != SHOP:
            agent = await node.convs.agent(message.sender)
            if agent is not None and agent.site_id == site.id and not agent.disabled:
                kind, author_id, name = AuthorKind.AGENT, agent.id, agent.name
        entry, duplicate = await store.append(
            conv.id,
            EntryKind.TEXT,
            kind,
            author_id,
            name,
            message.body,
            f"trigger:{rule.id}:{now!r}",
            data={"auto": {"trigger": rule.id, "name": rule.name}},
            open_only=True,
        )
        if not duplicate:
            await node.convs.publish_entry(site.id, entry)
    elif dept is not None:
        for session in w.sessions:
            session.dept = dept  # the visitor's next conversation goes there
    if tags:
        conv = conv or await store.current_conversation(w.visitor_id)
        if conv is not None:
            conv = await store.set_tags(conv.id, add=tags)
    if conv is not None:
        await node.convs.publish_settled(conv.id)  # not under the lock: a join may overtake
    if any(a.type == "open" for a in rule.actions):
        frame = {"t": "open", "trigger": rule.id}
        await node.broker.publish(visitor_channel(w.visitor_id), frame_event(frame, "visitors"))
