"""Control events: admin changes every process applies at once.

The console's admin pages write sites and agents to the Store, then call
``site_saved`` or ``agent_saved`` here.  Those apply what the shared state
needs once (routing) and publish a control event on ``CONTROL_CHANNEL``,
which every process subscribes to when its hub starts; ``apply`` runs in each
process (the publisher's too) on what that process holds:

* ``{"op": "site", "site": id}``: the cached site record is dropped and read
  again, so the next connection and the next routing decision get the new
  one (typing preview on/off applies to live visitors at once: it is read
  from the cache per draft).
* ``{"op": "agent", "agent": id}``: the agent's record is read again and
  handed to its live sessions and the name cache; when the agent was
  disabled their sockets close with ``4105 account_disabled``, when they
  became an analyst (who takes no chats) with ``4102 unauthorized``.  Both
  changes also end the agent's sign-ins (``Store.save_agent`` raises the
  session generation), so a process that misses this event closes those
  sockets with the same codes on its next ``recheck_sessions``.
* ``{"op": "triggers", "site": id, "from": node}``: the site's trigger rules
  or business hours changed (the console's triggers pages): each process's
  trigger engine drops its cached copy and re-evaluates the site's visitors
  now, instead of within ``proactive.RULES_TTL``.  The publishing process
  (``from``, its ``hub.node``) did so before publishing and skips it.
* ``{"op": "visitor_stored", "visitor": id}``: a visitor got its Store row
  (``visitor_rows.ensure``): the page views this process held for it are
  written, and its connections here are marked as stored.  A missed event
  leaves those views held until they expire (``held.py``).
* ``{"op": "erased", "visitors": [id, ...], "from": node}``: the visitors were
  erased on request (``privacy/erase.py``): their sockets here close with
  ``4007 erased`` and what this process held of them is dropped.  A missed
  event leaves a socket open on an id the Store no longer knows: its writes
  fail, and its next reconnect gets a new id.
* ``{"op": "session", "agent": id, "session": sid}``: one sign-in ended
  (sign out, ``logins.py``): the agent's sockets opened with it close with
  ``4106 session_ended``.
* ``{"op": "sessions", "agent": id, "generation": n, "spare": sid}``: every
  sign-in of the agent before generation ``n`` ended (sign out everywhere, a
  password change): their sockets opened with an older one close with
  ``4106``, but those of session ``spare`` (optional: the browser that did it
  and stays signed in, whose page holds its cookie only once the response
  arrives).

Delivery is the broker's: at most once.  Nothing depends on it for safety:
a disabled agent's hello, token login and console session, and an ended
sign-in's, are refused from the Store anyway, and visitors' hellos read the site from the Store.  A
process that missed a site event (a Redis pub/sub outage) serves the old
settings to agents' hellos and routing until the next change or a restart,
and one that missed a triggers event applies the old rules for up to
``RULES_TTL`` (5 s) more.
A socket whose ``session``/``sessions`` event, or ``agent`` event taking
chat rights away, was missed is closed by the process's periodic
``recheck_sessions`` (every ``Hub.session_check``
seconds, one Store round trip for all its agent sockets).
When the broker tells the hub it lost the control channel and has it back
(a Redis pub/sub reconnect), ``resync`` does at once what any missed event
would have done: every cached site and trigger rule set is read again, every
live agent's record too, the sign-ins are re-checked, and the page views
held for visitors that got their row meanwhile are written.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from .conversations import CONTROL_CHANNEL
from .errors import ChatError, CloseCode, StoreError
from .logins import Grant
from .types import JSON, Agent, AgentId, ConvState, Role, SiteId
from .visitor_rows import write_held

if TYPE_CHECKING:
    from .node import Node

log = logging.getLogger("chatserver.control")


async def site_saved(node: Node, site_id: SiteId) -> None:
    """A site's record changed: every process forgets its copy; routing reruns.

    Switching routing from manual to auto assigns the waiting chats now.
    """
    node.hub.forget_site(site_id)
    await node.broker.publish(CONTROL_CHANNEL, {"op": "site", "site": site_id})
    await node.hub.agents_changed(await node.hub.site(site_id))


async def agent_saved(node: Node, agent: Agent) -> None:
    """An agent's record changed (already saved): routing and live sessions follow.

    Capacity and departments go to the router.  An agent who no longer takes
    chats (disabled, or now an analyst) loses their status in the router at
    once (``online`` again if re-enabled), so no chat is assigned to them from
    here on, their live sockets are closed in every process, and the chats
    they hold go back to the queue (or stay with the colleagues also in them)
    without a grace period.
    """
    await node.router.update_agent(agent)
    out = not agent.takes_chats
    if out:
        await node.router.set_status(agent.id, None)
    await node.broker.publish(CONTROL_CHANNEL, {"op": "agent", "agent": agent.id})
    site = await node.hub.site(agent.site_id)
    if out:
        for conv in await node.store.list_conversations(site.id, [ConvState.ACTIVE], limit=100_000):
            if agent.id in conv.agents:
                await node.convs.requeue(site, conv.id, [agent.id])
    await node.hub.agents_changed(site)


async def triggers_changed(node: Node, site_id: SiteId) -> None:
    """A site's trigger rules or business hours changed: every process reloads them now."""
    node.triggers.invalidate(site_id)
    await node.broker.publish(CONTROL_CHANNEL, {"op": "triggers", "site": site_id, "from": node.id})


async def session_ended(node: Node, grant: Grant) -> None:
    """One sign-in ended (sign out): revoked until it expires, its sockets closed everywhere."""
    await node.store.revoke_session(grant.session, grant.expiry)
    event = {"op": "session", "agent": grant.agent_id, "session": grant.session}
    await node.broker.publish(CONTROL_CHANNEL, event)


async def sessions_ended(node: Node, agent_id: AgentId, spare: str = "") -> int:
    """Every sign-in of the agent so far ended for good; their sockets closed everywhere.

    Sockets of the session id ``spare`` stay open (the caller signs that
    browser in again with it); their token is void all the same.  Returns the
    agent's new session generation (sign-ins made from now on get it).
    """
    generation = await node.store.end_sessions(agent_id)
    event = {"op": "sessions", "agent": agent_id, "generation": generation, "spare": spare}
    await node.broker.publish(CONTROL_CHANNEL, event)
    return generation


def apply(node: Node, event: JSON) -> None:
    """Apply a control event in this process (called by the broker's handler)."""
    op, agent_id = event.get("op"), event.get("agent")
    if op == "site" and isinstance(event.get("site"), str):
        node.hub.forget_site(event["site"])
        node.hub.spawn(_reload_site(node, event["site"]))
    elif op == "triggers" and isinstance(event.get("site"), str):
        if event.get("from") != node.id:  # the publisher invalidated already
            node.triggers.invalidate(event["site"])
    elif op == "visitor_stored" and isinstance(event.get("visitor"), str):
        node.hub.spawn(write_held(node, event["visitor"]))
    elif op == "erased" and isinstance(event.get("visitors"), list):
        if event.get("from") != node.id:  # the publisher did so already
            from .privacy.erase import forget_visitors

            forget_visitors(node, [v for v in event["visitors"] if isinstance(v, str)])
    elif op == "agent" and isinstance(agent_id, str):
        node.hub.spawn(_refresh_agent(node, agent_id))
    elif op == "session" and isinstance(agent_id, str) and isinstance(event.get("session"), str):
        sid = event["session"]
        _close_grants(node, agent_id, lambda grant: grant.session == sid)
    elif op == "sessions" and isinstance(agent_id, str) and type(event.get("generation")) is int:
        generation, spare = event["generation"], event.get("spare") or None
        _close_grants(
            node, agent_id, lambda grant: grant.generation < generation and grant.session != spare
        )
        # The spared browser goes on at the new generation (a new cookie, the
        # same session id): so do its sockets, for ``recheck_sessions``.
        for session in node.hub.agent_sessions(agent_id):
            grant = session.grant
            if grant is not None and grant.session == spare and grant.generation < generation:
                session.grant = replace(grant, generation=generation)
    else:
        log.warning("unknown control event %r", op)


def _close_grants(node: Node, agent_id: str, ended: Callable[[Grant], bool]) -> None:
    for session in node.hub.agent_sessions(agent_id):
        if session.grant is not None and ended(session.grant):
            session.close(CloseCode.SESSION_ENDED, "signed out: sign in again")


async def recheck_sessions(node: Node) -> int:
    """Close this process's agent sockets whose sign-in has ended; return how many.

    The safety net under the at-most-once ``session``/``sessions`` events:
    every open agent socket's grant is checked against the Store in one call
    (``Store.session_states``).  A revoked session or an older generation
    closes the socket with ``4106 session_ended``, or with the code the
    ``agent`` event would have used when the agent lost chat rights (read
    only for agents whose generation moved, which is rare): ``4105
    account_disabled`` when it is disabled (or gone), ``4102 unauthorized``
    when it is an analyst now.  Losing chat rights always moves the
    generation (``Store.save_agent``), so a missed ``agent`` event is caught
    here too.
    """
    grants = [
        (session, session.grant)
        for session in node.hub.all_agent_sessions()
        if session.grant is not None and session.close_code is None
    ]
    if not grants:
        return 0
    generations, revoked = await node.store.session_states(
        [grant.agent_id for _, grant in grants], [grant.session for _, grant in grants]
    )
    # agent -> why its sockets close, for agents with a newer generation
    moved: dict[AgentId, tuple[CloseCode, str]] = {}
    closed = 0
    for session, grant in grants:
        if session.grant is not grant:
            continue  # the control event renewed it meanwhile (the spared browser)
        if grant.session in revoked:
            session.close(CloseCode.SESSION_ENDED, "signed out: sign in again")
        elif grant.generation < generations.get(grant.agent_id, 0):
            if grant.agent_id not in moved:
                moved[grant.agent_id] = _ended_why(await node.store.get_agent(grant.agent_id))
            session.close(*moved[grant.agent_id])
        else:
            continue
        closed += 1
    if closed:
        log.info("closed %d agent socket(s) whose sign-in had ended", closed)
    return closed


async def resync(node: Node) -> None:
    """Apply whatever control events were lost while the channel was (``Hub._resubscribed``)."""
    try:
        for site_id in set(node.hub.sites) | set(node.triggers.cached_sites()):
            node.hub.forget_site(site_id)
            node.triggers.invalidate(site_id)
            await _reload_site(node, site_id)
        for agent_id in {s.agent.id for s in node.hub.all_agent_sessions() if s.agent is not None}:
            await _refresh_agent(node, agent_id)
        await recheck_sessions(node)
        for visitor_id in node.held.visitors():  # a missed ``visitor_stored``
            if await node.store.get_visitor(visitor_id) is not None:
                await write_held(node, visitor_id)
    except ChatError as exc:  # the periodic checks and TTLs catch up later
        log.warning("re-syncing control state failed: %s", exc)


def _ended_why(agent: Agent | None) -> tuple[CloseCode, str]:
    """The close code and reason of a socket whose agent's sign-ins all ended."""
    if agent is None or agent.disabled:
        return CloseCode.ACCOUNT_DISABLED, "agent account is disabled"
    if agent.role is Role.ANALYST:
        return CloseCode.UNAUTHORIZED, "analysts take no chats"
    return CloseCode.SESSION_ENDED, "signed out: sign in again"


async def _reload_site(node: Node, site_id: SiteId) -> None:
    """Cache the new record at once: live visitors' drafts read it (no await there)."""
    try:
        await node.hub.site(site_id)
    except ChatError as exc:
        log.warning("reloading site %s failed: %s", site_id, exc)


async def _refresh_agent(node: Node, agent_id: str) -> None:
    agent = await node.store.get_agent(agent_id)
    if agent is None:
        return
    node.convs.remember(agent)
    for session in node.hub.agent_sessions(agent_id):
        session.agent = agent
        if agent.disabled:
            session.close(CloseCode.ACCOUNT_DISABLED, "agent account is disabled")
        elif agent.role is Role.ANALYST:
            session.close(CloseCode.UNAUTHORIZED, "analysts take no chats")


async def recheck_loop(node: Node) -> None:
    """Every ``hub.session_check`` seconds (jittered by a quarter), ``recheck_sessions``."""
    while True:
        await asyncio.sleep(node.session_check * random.uniform(0.75, 1.25))
        try:
            await recheck_sessions(node)
        except StoreError as exc:  # the next check tries again
            log.warning("re-checking agent sessions failed: %s", exc)
        except Exception:
            log.exception("re-checking agent sessions failed")
