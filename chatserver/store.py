"""The Store seam: durable state of sites, agents, visitors and conversations.

Contract every implementation keeps (the contract tests in
``tests/test_store_contract.py`` check it for each backend):

* **Durability.** When an awaited method that writes returns, the write is
  durable: it survives a kill -9 of the server process, and with the default
  settings a power cut too.  Nothing is acknowledged to a client before that.
* **Ordering.** Entries of one conversation get offsets 1, 2, 3... with no
  gap, in the order ``append`` calls complete.  Offsets are never reused.
* **Idempotency.** ``append`` with a ``cid`` already used by the same author in
  the same conversation stores nothing and returns the first entry with
  ``duplicate=True``.
* **Atomicity.** ``open_conversation`` returns the visitor's open
  (queued or active) conversation, or creates one; two concurrent calls for
  one visitor never create two.
* **Page history.** ``add_page_view`` numbers visits: a view more than
  ``VISIT_GAP`` seconds after the visitor's previous one (or the first view)
  starts a new visit and raises ``Visitor.visits`` by one.  At most
  ``MAX_PAGE_VIEWS`` views are kept per visitor; older ones are dropped.
* **Recordings** (``claim_recording`` ...): a recording belongs to the site
  and visitor that claimed it first; ``add_recording_batch`` applies a batch
  once (a ``seq`` at or below ``last_seq`` changes nothing and reports a
  duplicate), atomically with its marks.
* **Site documents.** ``put_doc`` creates or replaces one document of a
  site's ``kind`` (keeping its ``created_at``); ``list_docs`` returns a
  kind's documents oldest first.  Kinds and ids are ids (at most 64
  characters); what a document means is the caller's business.
* **Attachments.** ``create_attachment``, ``bind_attachment`` and
  ``delete_unposted_attachment`` keep each site's ``attachment_bytes`` in
  step atomically; ``delete_unposted_attachment`` never deletes a bound
  attachment, and of concurrent calls for one id at most one deletes.
* **Widget features.** ``add_visitor_event`` keeps the newest
  ``MAX_VISITOR_EVENTS`` events per visitor.  ``set_identity`` with
  ``verified=True`` claims the site's ``(site, user_id)`` identity for the
  visitor only when no other visitor holds it (first verified visitor wins,
  atomically); ``visitor_by_identity`` answers the holder.
  ``identity_secret`` creates a site's secret on first use, atomically (two
  concurrent first calls return the same secret).
* **Trigger firings.** ``claim_firing`` decides and records in one atomic
  step whether a trigger may fire for a visitor (its frequency against the
  last firing), so that processes racing for one visitor fire it once;
  ``claim_follow`` marks a firing as followed by a chat exactly once;
  ``add_counter`` adds atomically.
* **Read markers.** ``set_read`` keeps one marker per (conversation,
  reader) that only moves forward, atomically (of concurrent calls the
  highest offset stays); ``read_markers`` returns every marker of a
  conversation as it is after the writes that returned before the call.
* **Agent sessions** (``end_sessions`` ...): an agent's session generation
  starts at 0 and only grows, by one per ``end_sessions``, atomically (two
  concurrent calls return two different numbers), and by one per
  ``save_agent`` that takes the agent's chat rights away.  ``revoke_session`` marks
  one session id as revoked until a time; ``session_revoked`` answers it
  until then (afterwards the record may be gone: the session has expired).
  ``session_states`` answers both for many agents and sessions in one call
  (the periodic re-check of open agent sockets).
* **Throttle** (``throttle_reserve`` ...): attempts per key, shared by every
  process of a deployment (login attempts).  ``throttle_reserve`` checks and
  records in one atomic step: while every key has fewer than ``limit``
  records in the ``window`` before ``now`` it records one attempt (a named
  slot) for each key and answers 0, else it records nothing and answers the
  wait; of any number of concurrent calls, from any process, no more succeed
  than the limit leaves room for.  ``throttle_release`` drops one slot (an
  attempt that did not fail), ``throttle_wait`` answers how long until every
  key has fewer than ``limit`` records, ``throttle_clear`` forgets keys.
  Records older than the window may be dropped.
* **Password upgrade**: ``set_password_hash`` replaces an agent's hash only
  while it is still the one the caller read (compare and set), so a rehash
  after a login never undoes a password change made meanwhile.
* Records are returned as frozen dataclasses from ``types``; ``None`` means
  "no such row".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Protocol

from .types import (
    JSON,
    KEEP,
    Agent,
    AgentId,
    Attachment,
    AuthorKind,
    Conversation,
    ConversationId,
    ConvState,
    DepartmentId,
    Doc,
    Entry,
    EntryKind,
    Firing,
    Keep,
    PageView,
    Recording,
    RecordingBatch,
    RecordingId,
    RecordingMark,
    Role,
    Site,
    SiteId,
    SiteSettings,
    Visitor,
    VisitorEvent,
    VisitorId,
)

VISIT_GAP = 30 * 60  # seconds between page views that start a new visit
MAX_PAGE_VIEWS = 200  # page views kept per visitor
ATTACHMENT_BYTES = "attachment-bytes"  # counter group of attachment_bytes
MAX_VISITOR_EVENTS = 200  # tracked custom events kept per visitor


def merge_attributes(current: JSON, patch: JSON) -> JSON:
    """``current`` with ``patch`` merged in: a ``None`` value deletes its key."""
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def throttle_delay(stamps: Iterable[float], limit: int, window: float, now: float) -> float:
    """Seconds until fewer than ``limit`` of ``stamps`` lie in the ``window`` before
    ``now``; 0 when fewer do already (the backends share this arithmetic)."""
    recent = sorted(t for t in stamps if now - t < window)
    if len(recent) < limit:
        return 0.0
    return window - (now - recent[-limit])


def apply_batch(rec: Recording, batch: RecordingBatch) -> Recording:
    """``rec`` after ``batch`` (the backends share this arithmetic).

    The first batch with events fixes ``first_ts``; ``started`` and ``ended``
    follow the event times shifted by the recording's clock skew.
    """
    empty = rec.events == 0
    first = batch.first_ts if empty else min(rec.first_ts, batch.first_ts)
    last = batch.last_ts if empty else max(rec.last_ts, batch.last_ts)
    pages = sum(1 for m in batch.marks if m.kind == "page")
    return replace(
        rec,
        first_ts=first,
        last_ts=last,
        started=(first + rec.skew_ms) / 1000.0,
        ended=(last + rec.skew_ms) / 1000.0,
        last_seq=batch.seq,
        events=rec.events + batch.events,
        bytes=rec.bytes + batch.bytes,
        raw_bytes=rec.raw_bytes + batch.raw_bytes,
        clicks=rec.clicks + batch.clicks,
        inputs=rec.inputs + batch.inputs,
        pages=rec.pages + pages,
        marks=rec.marks + len(batch.marks),
        conv_id=rec.conv_id or batch.conv_id,
    )


class Store(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    # -- sites -----------------------------------------------------------
    async def create_site(
        self,
        name: str,
        allowed_origins: Sequence[str] = (),
        settings: SiteSettings | None = None,
        departments: Sequence[DepartmentId] = (),
    ) -> Site: ...

    async def get_site(self, site_id: SiteId) -> Site | None: ...

    async def site_by_key(self, key: str) -> Site | None: ...

    async def save_site(self, site: Site) -> None:
        """Overwrite name, origins, settings and departments of ``site.id``."""

    async def list_sites(self) -> list[Site]: ...

    # -- agents ----------------------------------------------------------
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

    # -- visitors --------------------------------------------------------
    async def create_visitor(self, site_id: SiteId, visitor_id: VisitorId | None = None) -> Visitor:
        """Store a visitor row: a new id, or ``visitor_id`` (a visitor that was
        handed a token before it had a row, docs/protocol.md §3).

        With ``visitor_id`` the call is idempotent: an existing row is
        returned unchanged (concurrent calls store one row).
        """

    async def get_visitor(self, visitor_id: VisitorId) -> Visitor | None: ...

    async def set_last_agent(self, visitor_id: VisitorId, agent_id: AgentId) -> None: ...

    async def update_visitor(
        self,
        visitor_id: VisitorId,
        *,
        name: str | None = None,
        email: str | None = None,
        attributes: JSON | None = None,
    ) -> Visitor:
        """Set the given name/email; merge ``attributes`` (``None`` values delete keys).

        A merge is atomic: concurrent merges of different keys all land.
        Returns the updated row; raises ``NotFound`` for an unknown visitor.
        """

    async def add_page_view(
        self,
        visitor_id: VisitorId,
        url: str,
        title: str = "",
        referrer: str = "",
        *,
        ts: float | None = None,
    ) -> PageView:
        """Record a page view (at ``ts``, default now) and count visits.

        The view belongs to the current visit unless it comes more than
        ``VISIT_GAP`` seconds after the previous view (or is the first), which
        starts a new one.  Keeps the newest ``MAX_PAGE_VIEWS`` views.  Raises
        ``NotFound`` for an unknown visitor.
        """

    async def page_views(self, visitor_id: VisitorId, limit: int = 50) -> list[PageView]:
        """The visitor's newest ``limit`` page views, newest first."""

    # -- conversations ---------------------------------------------------
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

    # -- entries ---------------------------------------------------------
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

    # -- site documents (canned responses, triggers, ...) ---------------------
    async def put_doc(self, site_id: SiteId, kind: str, doc_id: str, data: JSON) -> Doc:
        """Create or replace a document; ``created_at`` survives a replace."""

    async def get_doc(self, site_id: SiteId, kind: str, doc_id: str) -> Doc | None: ...

    async def list_docs(self, site_id: SiteId, kind: str) -> list[Doc]:
        """The site's documents of ``kind``, oldest ``created_at`` first."""

    async def delete_doc(self, site_id: SiteId, kind: str, doc_id: str) -> bool:
        """Remove a document; ``True`` if it existed."""

    # -- recordings --------------------------------------------------------
    async def claim_recording(
        self,
        rec_id: RecordingId,
        site_id: SiteId,
        visitor_id: VisitorId,
        blob: str,
        skew_ms: float,
    ) -> Recording:
        """The recording ``rec_id``, created empty (``last_seq`` -1) if new.

        Atomic: of concurrent claims one creates the row and all return it.
        An existing row is returned as it is, whoever owns it: the caller
        compares ``site_id`` and ``visitor_id`` before writing anything.
        """

    async def get_recording(self, rec_id: RecordingId) -> Recording | None: ...

    async def add_recording_batch(
        self, rec_id: RecordingId, batch: RecordingBatch
    ) -> tuple[Recording, bool]:
        """Apply a stored batch (``apply_batch``) and append its marks; ``(row, duplicate)``.

        A ``batch.seq`` at or below ``last_seq`` changes nothing and returns
        the row with ``True``.  Raises ``NotFound`` when the row is gone.
        """

    async def recording_marks(
        self, rec_id: RecordingId, kinds: Sequence[str] | None = None
    ) -> list[RecordingMark]:
        """The recording's marks (of ``kinds``, default all) in the order they were added."""

    async def list_recordings(
        self,
        site_id: SiteId,
        *,
        since: float | None = None,
        until: float | None = None,
        url: str | None = None,
        min_duration: float | None = None,
        had_chat: bool | None = None,
        visitor_id: VisitorId | None = None,
        before: tuple[float, RecordingId] | None = None,
        limit: int = 50,
    ) -> list[Recording]:
        """A site's recordings with at least one event, newest ``started`` first.

        Filters: ``since <= started < until``; ``url`` is a substring of a
        page the recording visited; ``duration >= min_duration``;
        ``had_chat`` whether a conversation is linked; one visitor.  Paging:
        ``before`` is the ``(started, id)`` of the last row of the previous
        page; rows come in ``(started, id)`` descending order.
        """

    async def expired_recordings(
        self, site_id: SiteId, ended_before: float, limit: int = 500
    ) -> list[Recording]:
        """Recordings of a site (empty ones too) that ended before ``ended_before``."""

    async def visitor_recordings(self, visitor_id: VisitorId) -> list[Recording]:
        """Every recording of a visitor, empty ones too, newest first."""

    async def delete_recordings(self, rec_ids: Sequence[RecordingId]) -> int:
        """Delete the index rows and marks; how many rows existed."""

    # -- widget features: ratings, attachments, events, identity ---------
    async def rate_conversation(
        self, conv_id: ConversationId, rating: str, comment: str = ""
    ) -> Conversation:
        """Store the visitor's rating (replacing an earlier one) with ``rated_at`` now.

        The caller checks who may rate and when.  Raises ``NotFound`` for an
        unknown conversation.
        """

    async def create_attachment(
        self, site_id: SiteId, uploader: str, name: str, content_type: str, size: int
    ) -> Attachment:
        """Record an uploaded file (its bytes are already in the BlobStore)."""

    async def get_attachment(self, attachment_id: str) -> Attachment | None: ...

    async def bind_attachment(self, attachment_id: str, conv_id: ConversationId) -> Attachment:
        """Set the attachment's conversation if it has none; return the record.

        An attachment already bound keeps its conversation (compare the
        returned ``conv_id``).  Raises ``NotFound`` for an unknown id.
        """

    async def attachment_bytes(self, site_id: SiteId) -> tuple[int, int]:
        """The site's attachment bytes: ``(unposted, total)``.

        ``unposted`` counts the files no entry holds yet (``bind_attachment``
        not called), ``total`` every stored file; both move in the same
        atomic step as the write that changes them.
        """

    async def unposted_attachments(self, before: float, limit: int = 100) -> list[Attachment]:
        """Attachments never bound, created before ``before`` (Unix time), oldest first."""

    async def delete_unposted_attachment(self, attachment_id: str) -> Attachment | None:
        """Delete the attachment's record if it is still unbound, atomically.

        Returns the deleted record (the caller deletes its blob), or ``None``
        when it is bound or gone (so a concurrent sweep, or a post that won
        the race, makes this a no-op).
        """

    async def add_visitor_event(
        self, visitor_id: VisitorId, name: str, props: JSON, *, ts: float | None = None
    ) -> VisitorEvent:
        """Record a tracked event (at ``ts``, default now); keep the newest
        ``MAX_VISITOR_EVENTS``.  Raises ``NotFound`` for an unknown visitor."""

    async def visitor_events(self, visitor_id: VisitorId, limit: int = 50) -> list[VisitorEvent]:
        """The visitor's newest ``limit`` events, newest first."""

    async def identity_secret(self, site_id: SiteId, *, rotate: bool = False) -> str:
        """The site's identity secret (hex), created on first use or replaced
        with ``rotate``.  Raises ``NotFound`` for an unknown site."""

    async def set_identity(self, visitor_id: VisitorId, user_id: str, verified: bool) -> Visitor:
        """Set the visitor's ``user_id`` and ``verified``; a verified id also
        claims the site's identity index when it is free.  Raises ``NotFound``
        for an unknown visitor."""

    async def visitor_by_identity(self, site_id: SiteId, user_id: str) -> Visitor | None:
        """The visitor holding the verified identity ``user_id`` on the site."""

    # -- proactive triggers: firings and counters --------------------------------
    async def claim_firing(
        self,
        visitor_id: VisitorId,
        trigger_id: str,
        *,
        visit: int,
        frequency: str,
        gap: float,
        now: float,
    ) -> bool:
        """Record that ``trigger_id`` fires for the visitor now, if its frequency allows.

        Allowed when the trigger never fired for the visitor, or, by
        ``frequency``: ``"visit"`` when it last fired in a visit numbered below
        ``visit``; ``"always"`` when it last fired at least ``gap`` seconds
        before ``now``; ``"visitor"`` never again.  On success the firing
        ``(visit, now, followed=False)`` replaces the previous one and the
        answer is ``True``; otherwise nothing changes.  The check and the
        write are one atomic step: of concurrent claims that the rule allows
        only once, exactly one succeeds.
        """

    async def trigger_firings(self, visitor_id: VisitorId) -> dict[str, Firing]:
        """The visitor's last firing of every trigger that fired for it, by trigger id."""

    async def claim_follow(self, visitor_id: VisitorId, trigger_id: str, fired_at: float) -> bool:
        """Mark the visitor's firing of ``trigger_id`` at ``fired_at`` as followed by a chat.

        ``True`` only the first time for that firing (atomically); ``False``
        when it was marked already, or the trigger's last firing is another.
        """

    async def add_counter(self, site_id: SiteId, group: str, name: str, by: int = 1) -> int:
        """Add ``by`` to the site's counter ``name`` of ``group`` (from 0); return the new value."""

    async def counters(self, site_id: SiteId, group: str) -> dict[str, int]:
        """Every counter of the site's ``group``, by name."""

    # -- agent sessions: revocation (docs/console.md, "Sessions") ---------------
    async def session_generation(self, agent_id: AgentId) -> int:
        """The agent's session generation: 0 until ``end_sessions`` first raises it.

        Any string is accepted (an unknown agent has generation 0).
        """

    async def end_sessions(self, agent_id: AgentId) -> int:
        """Raise the agent's session generation by one and return the new value.

        Atomic: concurrent calls each get a different, higher number.  The
        generation survives everything else done to the agent (``save_agent``
        only ever raises it, when chat rights go), so sessions signed with an
        older one stay void.
        """

    async def revoke_session(self, session_id: str, until: float) -> None:
        """Record ``session_id`` (at most 64 characters) as revoked until ``until``.

        ``until`` is a Unix time, the session's own expiry: after it the
        record may be dropped.  Revoking again keeps the later of the two times.
        """

    async def session_revoked(self, session_id: str) -> bool:
        """Whether ``session_id`` was revoked and its ``until`` is still ahead."""

    # -- login throttle and session re-checks (docs/console.md) -------------------
    async def throttle_wait(
        self, keys: Sequence[str], limit: int, window: float, now: float
    ) -> float:
        """Seconds until each of ``keys`` has fewer than ``limit`` records in the
        ``window`` seconds before ``now`` (Unix time); 0 when each has already.

        Keys are at most 64 characters; an unknown key has no records.  The
        answer is ``throttle_delay`` of the key with the longest wait.
        """

    async def throttle_reserve(
        self, keys: Sequence[str], limit: int, window: float, now: float, slot: str
    ) -> float:
        """Reserve an attempt named ``slot`` at ``now`` on each of ``keys``, if all have room.

        When each key has fewer than ``limit`` records in the ``window`` seconds
        before ``now``, records ``slot`` at ``now`` for every key and answers 0;
        otherwise records nothing and answers what ``throttle_wait`` would (> 0).
        The check and the records are one atomic step over all the keys and every
        process: of concurrent calls on a key with ``n`` records, at most
        ``limit - n`` answer 0.  ``slot`` is new for each attempt (at most 64
        characters); a key keeps at most ``limit`` records.
        """

    async def throttle_release(self, keys: Sequence[str], slot: str) -> None:
        """Drop the record ``slot`` from each of ``keys`` (an attempt that did not
        fail); a key or slot unknown is no error."""

    async def throttle_clear(self, keys: Sequence[str]) -> None:
        """Forget every record of ``keys``."""

    async def session_states(
        self, agent_ids: Sequence[AgentId], session_ids: Sequence[str]
    ) -> tuple[dict[AgentId, int], set[str]]:
        """``session_generation`` of each of ``agent_ids`` and which of
        ``session_ids`` are ``session_revoked``, in one call (one round trip).

        Empty sequences are allowed.  Answers the same as the single calls
        would at some moment during the call.
        """

    # -- read markers: restored on (re)join (docs/read-receipts.md) ---------------
    async def read_markers(self, conv_id: ConversationId) -> dict[str, int]:
        """Every read marker of the conversation: reader -> offset (as ``set_read`` left it).

        Readers are the strings given to ``set_read``; a conversation nobody
        has read yet, or an unknown id, has none (``{}``).
        """

    # -- operations: readiness (docs/operations.md) ----------------------------
    async def ping(self) -> None:
        """Return once the store can serve requests; raise ``StoreError`` if not.

        Cheap (one round trip, no data read): ``/readyz`` calls it on every
        probe, under a short timeout of its own.  On SQLite it passes
        through the writer thread, so a stopped or wedged writer fails it.
        """
