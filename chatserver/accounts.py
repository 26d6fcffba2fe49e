"""Admin writes to agents, each one service call: the record saved, then every process told.

Creating an agent, saving one (name, role, capacity, departments), setting a
password, disabling or enabling, and ending an agent's sign-ins happen here
and nowhere else; the console's admin pages and the CLI keep the forms.
Each call writes the Store first and then publishes its control event
(``control.py``): every process updates routing and closes the sockets a
change ends (``4105`` when disabled, ``4102`` when made an analyst,
``4106`` when signed out).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from . import control
from .security import hash_password_off_loop
from .types import Agent, AgentId, Role, SiteId

if TYPE_CHECKING:
    from .node import Node


async def create(
    node: Node,
    site_id: SiteId,
    email: str,
    name: str,
    password: str,
    role: Role,
    capacity: int,
    departments: Sequence[str],
) -> Agent:
    """A new agent (the password hashed off the event loop); ``StoreError`` if the
    e-mail is taken.  Nothing to tell other processes: nobody is signed in as it."""
    password_hash = await hash_password_off_loop(password)
    return await node.store.create_agent(
        site_id, email, name, password_hash, role, capacity, tuple(departments)
    )


async def save(node: Node, agent: Agent) -> None:
    """Save the agent's record; routing and live sockets follow in every process."""
    await node.store.save_agent(agent)
    await control.agent_saved(node, agent)


async def set_password(node: Node, agent: Agent, password: str) -> Agent:
    """A new password; the caller ends the agent's other sign-ins (``end_sessions``)."""
    saved = replace(agent, password_hash=await hash_password_off_loop(password))
    await node.store.save_agent(saved)
    return saved


async def set_disabled(node: Node, agent: Agent, disabled: bool) -> Agent:
    """Disable (signed out everywhere, chats back to the queue) or enable an agent."""
    if agent.disabled == disabled:
        return agent
    agent = replace(agent, disabled=disabled)
    await node.store.save_agent(agent)
    # Sessions end for good (re-enabling does not revive them), after the save
    # so no sign-in slips between; enabling ends any sign-in that raced the
    # disable.  Sockets close in agent_saved (4105 when disabled).
    await node.store.end_sessions(agent.id)
    await control.agent_saved(node, agent)
    return agent


async def end_sessions(node: Node, agent_id: AgentId, spare: str = "") -> None:
    """Sign the agent out everywhere (but the session ``spare``); sockets close with 4106."""
    await control.sessions_ended(node, agent_id, spare=spare)
