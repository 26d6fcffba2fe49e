"""The agents domain of the Store: accounts and password hashes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..types import (
    Agent,
    AgentId,
    DepartmentId,
    Role,
    SiteId,
)


class AgentStore(Protocol):
    """Agent accounts.

    * An email is unique case-insensitively (``create_agent`` and
      ``save_agent`` raise ``StoreError`` on a taken one).
    * **Session generation on save.** ``save_agent`` that takes the agent's
      chat rights away raises the agent's session generation (``LoginStore``)
      by one in the same atomic step as the save.
    * **Password upgrade.** ``set_password_hash`` replaces an agent's hash only
      while it is still the one the caller read (compare and set), so a rehash
      after a login never undoes a password change made meanwhile.
    """

    async def create_agent(
        self,
        site_id: SiteId,
        email: str,
        name: str,
        password_hash: str,
        role: Role = Role.AGENT,
        capacity: int = 5,
        departments: Sequence[DepartmentId] = (),
    ) -> Agent:
        """Raises ``StoreError`` when the email (case-insensitive) is taken."""

    async def get_agent(self, agent_id: AgentId) -> Agent | None: ...

    async def agent_by_email(self, email: str) -> Agent | None: ...

    async def save_agent(self, agent: Agent) -> None:
        """Overwrite every field of ``agent.id`` but its id and site.

        A save that takes the agent's chat rights away (``Agent.takes_chats``
        was true of the stored record and is false of ``agent``: disabled, or
        made an analyst) also raises the session generation by one, in the
        same atomic step, as ``end_sessions`` would: every sign-in of the
        agent ends even when no control event reaches a process.
        """

    async def set_password_hash(self, agent_id: AgentId, old: str, new: str) -> bool:
        """Replace the agent's password hash by ``new`` if it is still ``old``, atomically.

        Answers whether it did: ``False`` when the hash changed meanwhile or the
        agent does not exist (nothing is written then).
        """

    async def list_agents(self, site_id: SiteId) -> list[Agent]: ...
