"""The audit log's records, query and contract (``AuditLog``), whatever the backend."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..types import JSON, SiteId, now

MAX_TEXT = 500  # characters kept of an actor, action, target or address


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One thing someone did: who (``actor``: ``agent:<id>``, ``cli`` or ``system``,
    with ``actor_name`` as it was then), what (``action``, a dotted name such as
    ``conversation.read``), to what (``target``: an id or a path), from where
    (``address``), when (``at``, Unix seconds) and anything more (``detail``)."""

    id: str  # ordered: newer entries of a site have larger ids (compare with ``order``)
    site_id: SiteId
    at: float
    actor: str
    actor_name: str
    action: str
    target: str = ""
    address: str = ""
    detail: JSON = field(default_factory=dict)

    def to_json(self) -> JSON:
        return {
            "id": self.id,
            "at": self.at,
            "actor": self.actor,
            "actor_name": self.actor_name,
            "action": self.action,
            "target": self.target,
            "address": self.address,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Which entries of a site to read, newest first.

    ``actor``: an actor (``agent:<id>``) or a name, matched case-insensitively
    as a substring of the name; ``action``: an action or a prefix ending in
    ``.`` (``admin.``); ``target``: exactly; ``since``/``until``: Unix times,
    ``until`` excluded.
    """

    site_id: SiteId
    actor: str = ""
    action: str = ""
    target: str = ""
    since: float | None = None
    until: float | None = None

    def matches(self, e: AuditEntry) -> bool:
        """The filters, for backends that check them in Python."""
        if self.actor and self.actor != e.actor and self.actor.lower() not in e.actor_name.lower():
            return False
        if self.action and not (
            e.action == self.action
            or (self.action.endswith(".") and e.action.startswith(self.action))
        ):
            return False
        if self.target and e.target != self.target:
            return False
        if self.since is not None and e.at < self.since:
            return False
        return not (self.until is not None and e.at >= self.until)


def new_row(
    site_id: SiteId,
    actor: str,
    actor_name: str,
    action: str,
    target: str,
    address: str,
    detail: JSON | None,
    at: float | None,
) -> tuple[SiteId, float, str, str, str, str, str, str]:
    """The stored values of a new entry, in ``COLUMNS`` order after the id (texts cut)."""
    return (
        site_id,
        now() if at is None else at,
        actor[:MAX_TEXT],
        actor_name[:MAX_TEXT],
        action[:MAX_TEXT],
        target[:MAX_TEXT],
        address[:MAX_TEXT],
        json.dumps(detail or {}),
    )


COLUMNS = "id, site_id, at, actor, actor_name, action, target, address, detail"


def entry_of(row: Sequence[Any]) -> AuditEntry:
    """An entry from its stored values (``COLUMNS`` order; the id as any type)."""
    site, at, actor, name, action, target, address = row[1:8]
    return AuditEntry(
        str(row[0]), site, at, actor, name, action, target, address, json.loads(row[8])
    )


class AuditLog(Protocol):
    """The append-only log of who did what (docs/privacy.md, "Audit trail").

    * **Append only.**  ``add`` writes an entry, durable when it returns;
      nothing changes an entry afterwards.  ``purge`` removes a site's
      entries older than a time (the log's retention), nothing else does.
    * **Newest first, keyset pages.**  ``entries`` returns at most ``limit``
      entries passing the query with an id below ``before`` ("" for the
      newest), newest first; following the last id visits each entry once.
    * **Per site.**  A site's queries never see another site's entries.
    """

    async def add(
        self,
        site_id: SiteId,
        actor: str,
        actor_name: str,
        action: str,
        target: str = "",
        address: str = "",
        detail: JSON | None = None,
        at: float | None = None,
    ) -> AuditEntry: ...

    async def entries(
        self, query: AuditQuery, before: str = "", limit: int = 100
    ) -> list[AuditEntry]: ...

    async def purge(self, site_id: SiteId, before: float) -> int:
        """Delete the site's entries with ``at < before``; how many."""
