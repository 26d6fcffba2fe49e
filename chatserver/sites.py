"""Admin writes to a site, each one service call: the record saved, then every process told.

A site's settings and its departments are written here and nowhere else;
the console's admin pages keep the forms and the rendering.  Each call saves
to the Store first and then publishes its control event (``control.py``), so
every process applies the change at once; a department rename or removal also
moves the agents who serve it and the conversations open in it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from . import accounts, control
from .types import ConvState, Site

if TYPE_CHECKING:
    from .node import Node


async def save(node: Node, site: Site) -> None:
    """Save the site's record (settings, origins, departments); every process reloads it."""
    await node.store.save_site(site)
    await control.site_saved(node, site.id)


async def add_department(node: Node, site: Site, name: str) -> None:
    await save(node, replace(site, departments=(*site.departments, name)))


async def rename_department(node: Node, site: Site, old: str, new: str) -> int:
    """Rename ``old`` to ``new``: the site, who serves it, its open conversations.

    The site first (new visitors may pick the new name), then the agents, then
    the conversations already in it; each step routes what it can.  Returns
    how many open conversations moved.
    """
    await save(
        node, replace(site, departments=tuple(new if d == old else d for d in site.departments))
    )
    await _agents_departments(node, site, old, new)
    moved = await _move_conversations(node, site, old, new)
    await node.hub.agents_changed(await node.hub.site(site.id))
    return moved


async def open_in_department(node: Node, site: Site, name: str) -> int:
    """How many open (queued or active) conversations are in department ``name``."""
    convs = await node.store.list_conversations(
        site.id, [ConvState.QUEUED, ConvState.ACTIVE], limit=100_000
    )
    return sum(1 for c in convs if c.department == name)


async def remove_department(node: Node, site: Site, name: str) -> None:
    """Remove ``name``: agents stop serving it; a chat opened in it meanwhile goes to anyone."""
    await save(node, replace(site, departments=tuple(d for d in site.departments if d != name)))
    await _agents_departments(node, site, name, None)
    if await _move_conversations(node, site, name, None):
        await node.hub.agents_changed(await node.hub.site(site.id))


async def _agents_departments(node: Node, site: Site, old: str, new: str | None) -> None:
    """Every agent serving ``old`` serves ``new`` instead (or nothing, with ``None``)."""
    for agent in await node.store.list_agents(site.id):
        if old in agent.departments:
            renamed = (new if d == old else d for d in agent.departments)
            depts = tuple(dict.fromkeys(d for d in renamed if d is not None))
            await accounts.save(node, replace(agent, departments=depts))


async def _move_conversations(node: Node, site: Site, old: str, new: str | None) -> int:
    """Open conversations of ``old`` move to ``new``; the router learns of waiting ones.

    A waiting conversation's department is also held by the router (it picks
    who may take it), so it changes there too, and only it: the chat keeps
    its place in the queue, the agents it excludes (who left or transferred
    it: it is not given back to them) and its preferred agent.
    """
    moved = 0
    for conv in await node.store.list_conversations(
        site.id, [ConvState.QUEUED, ConvState.ACTIVE], limit=100_000
    ):
        if conv.department != old:
            continue
        moved += 1
        async with node.convs.locked(conv.id):
            conv = await node.store.update_conversation(conv.id, department=new)
            if conv.state is ConvState.QUEUED:
                await node.router.change_department(conv)
    return moved
