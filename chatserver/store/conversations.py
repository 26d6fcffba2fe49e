"""The conversations domain of the Store: conversations, their entries and read markers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..types import (
    JSON,
    KEEP,
    AgentId,
    AuthorKind,
    Conversation,
    ConversationId,
    ConvState,
    DepartmentId,
    Entry,
    EntryKind,
    Keep,
    SiteId,
    VisitorId,
)


class ConversationStore(Protocol):
    """Conversations with their entries (the durable log) and read markers.

    One domain, not two: ``open_conversation``, ``append`` and the markers
    share the conversation (``last_offset``, state, agents) and several
    writes check one against the other in one atomic step (``append`` with
    ``open_only`` or ``member``).  ``last_offset`` is a column of the row on
    PostgreSQL and a field of the hash on Redis; on SQLite it is read from
    the newest entry, so an append writes no page of the row (schema step 9).

    * **Atomicity.** ``open_conversation`` returns the visitor's open (queued
      or active) conversation, or creates one; two concurrent calls for one
      visitor never create two.
    * **Ordering.** Entries of one conversation get offsets 1, 2, 3... with no
      gap, in the order ``append`` calls complete.  Offsets are never reused.
    * **Idempotency.** ``append`` with a ``cid`` already used by the same
      author in the same conversation stores nothing and returns the first
      entry with ``duplicate=True``, at least while that entry is among the
      conversation's newest ``CID_WINDOW`` (64) entries (``common.py``;
      SQLite looks there only, the others at every entry).
    * **Tags.** ``set_tags`` adds and removes atomically; concurrent calls for
      different tags all land.
    * **Read markers.** ``set_read`` keeps one marker per (conversation,
      reader) that only moves forward, atomically (of concurrent calls the
      highest offset stays); ``read_markers`` returns every marker of a
      conversation as it is after the writes that returned before the call.
    """

    async def open_conversation(
        self,
        site_id: SiteId,
        visitor_id: VisitorId,
        department: DepartmentId | None = None,
        offline: bool = False,
    ) -> tuple[Conversation, bool]:
        """The visitor's open conversation, or a new queued one; ``True`` if new."""

    async def current_conversation(self, visitor_id: VisitorId) -> Conversation | None:
        """The visitor's open (queued or active) conversation, if any."""

    async def get_conversation(self, conv_id: ConversationId) -> Conversation | None: ...

    async def update_conversation(
        self,
        conv_id: ConversationId,
        *,
        state: ConvState | None = None,
        agents: Sequence[AgentId] | None = None,
        department: DepartmentId | Keep | None = KEEP,
        queued_at: float | None = None,
    ) -> Conversation:
        """Change the given fields (``department=None`` clears it); return the row.

        Closing sets ``closed_at``.  Raises ``NotFound`` for an unknown id.
        """

    async def list_conversations(
        self, site_id: SiteId, states: Sequence[ConvState], limit: int = 500
    ) -> list[Conversation]:
        """Conversations of a site in the given states, oldest ``queued_at`` first."""

    async def visitor_conversations(
        self, visitor_id: VisitorId, limit: int = 20
    ) -> list[Conversation]:
        """A visitor's conversations, newest first."""

    async def set_tags(
        self,
        conv_id: ConversationId,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
    ) -> Conversation:
        """Add and remove tags of a conversation atomically; return the row.

        Tags are kept sorted and unique; concurrent calls for different tags
        all land.  Raises ``NotFound`` for an unknown id.
        """

    async def rate_conversation(
        self, conv_id: ConversationId, rating: str, comment: str = ""
    ) -> Conversation:
        """Store the visitor's rating (replacing an earlier one) with ``rated_at`` now.

        The caller checks who may rate and when.  Raises ``NotFound`` for an
        unknown conversation.
        """

    async def append(
        self,
        conv_id: ConversationId,
        kind: EntryKind,
        author_kind: AuthorKind,
        author_id: str,
        author_name: str,
        body: str,
        cid: str | None = None,
        data: JSON | None = None,
        open_only: bool = False,
        member: str | None = None,
    ) -> tuple[Entry, bool]:
        """Store an entry at the next offset; ``(entry, duplicate)``.

        Raises ``NotFound`` for an unknown conversation.  With ``member`` (an
        agent id), raises ``NotMember`` unless that agent is one of the
        conversation's agents, checked first and in the same atomic step as
        the write.  With ``open_only``, raises ``Closed`` when the
        conversation is closed, also atomically (a used ``cid`` still returns
        its first entry).
        """

    async def entries(
        self,
        conv_id: ConversationId,
        *,
        after: int | None = None,
        before: int | None = None,
        limit: int = 100,
        include_notes: bool = True,
    ) -> list[Entry]:
        """Entries in offset order.

        ``after``: the first ``limit`` entries with a larger offset.  Otherwise
        the last ``limit`` entries below ``before`` (or the newest).  With
        ``include_notes=False`` notes are left out (what visitors get).
        """

    async def set_read(self, conv_id: ConversationId, reader: str, offset: int) -> int:
        """Raise the reader's read marker to ``offset``; return the marker."""

    async def read_markers(self, conv_id: ConversationId) -> dict[str, int]:
        """Every read marker of the conversation: reader -> offset (as ``set_read`` left it).

        Readers are the strings given to ``set_read``; a conversation nobody
        has read yet, or an unknown id, has none (``{}``).
        """
