"""The shared vocabulary: identifiers, lifecycle enums and the durable records.

Every other module speaks in these names.  Records are frozen dataclasses;
changing one means building a new one (``dataclasses.replace``), so a record
handed to another task can never change under it.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

SiteId = str
AgentId = str
VisitorId = str
ConversationId = str
DepartmentId = str

JSON = dict[str, Any]


class Keep(Enum):
    """Sentinel for "leave this field as it is" where ``None`` is a value."""

    KEEP = "keep"


KEEP = Keep.KEEP


def new_id(prefix: str) -> str:
    """A random, URL-safe identifier with a readable prefix (``c_9fQ...``)."""
    return f"{prefix}_{secrets.token_urlsafe(12)}"


# 64 URL-safe characters in ascending ASCII order, so that fixed-width numbers
# written with them sort as byte strings (SQLite's BINARY collation, Redis, a
# PostgreSQL column under the "C" collation) in the order of the numbers.  A
# linguistic collation (en_US.UTF-8) weighs case and "-"/"_" only after the
# letters, so there they sort by time only roughly.
SORTABLE_DIGITS = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
TIME_CHARS = 7  # 42 bits of milliseconds since 1970: until the year 2109
RANDOM_BITS = 72


def sorted_id(prefix: str, at: float | None = None) -> str:
    """A random identifier that sorts by creation time (``c_-Y4rWe3...``).

    The millisecond of ``at`` (default: now), in ``TIME_CHARS`` characters of
    ``SORTABLE_DIGITS``, then ``RANDOM_BITS`` random bits (URL-safe base64).
    Ids made later sort after earlier ones (within a millisecond, at random),
    so the rows of the conversations active at one moment sit together at the
    right edge of every B-tree keyed by them instead of all over it
    (docs/performance.md, "Time-ordered ids").  Still opaque and unguessable:
    nothing parses them, and ids made by ``new_id`` before stay valid.
    """
    ms = int((time.time() if at is None else at) * 1000)
    digits = []
    for _ in range(TIME_CHARS):
        ms, d = divmod(ms, 64)
        digits.append(SORTABLE_DIGITS[d])
    stamp = "".join(reversed(digits))
    return f"{prefix}_{stamp}{secrets.token_urlsafe(RANDOM_BITS // 8)}"


def now() -> float:
    """Wall-clock seconds; the one clock that ends up in stored rows."""
    return time.time()


class ConnState(Enum):
    """Lifecycle of one client connection (see ``protocol.Connection``)."""

    AWAITING_HELLO = "awaiting_hello"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class ClientKind(Enum):
    VISITOR = "visitor"
    AGENT = "agent"


class ConvState(Enum):
    """Lifecycle of a conversation: queued -> active -> closed (active <-> queued)."""

    QUEUED = "queued"
    ACTIVE = "active"
    CLOSED = "closed"


class AgentStatus(Enum):
    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"


class Role(Enum):
    """What a console user may do: ``agent`` chats; ``admin`` chats and runs the
    site; ``analyst`` reads recordings and reports and takes no chats."""

    AGENT = "agent"
    ADMIN = "admin"
    ANALYST = "analyst"


class EntryKind(Enum):
    """What a conversation entry is.

    ``text`` is a chat message, ``note`` an internal note that only agents
    receive, ``event`` a lifecycle change (assigned, joined, transferred...).
    """

    TEXT = "text"
    NOTE = "note"
    EVENT = "event"


class AuthorKind(Enum):
    VISITOR = "visitor"
    AGENT = "agent"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class SiteSettings:
    """Per-site behaviour switches; new ones get a default so old rows load."""

    typing_preview: bool = True
    routing: str = "auto"  # "auto": least-loaded assignment; "manual": agents take chats
    greeting: str = ""
    language: str = "en"
    color: str = "#2563eb"
    # an ``identify`` with an ``id`` must carry a valid ``hash`` (docs/widget.md)
    require_identity: bool = False
    # Session recording (recordings/, docs/recordings.md): off unless enabled;
    # ``recording_sample`` is the share of visits recorded (0..1);
    # ``recording_consent`` waits for the page's ``$chat.push(["consent", true])``;
    # recordings older than ``recording_retention_days`` are deleted.
    recording: bool = False
    recording_sample: float = 1.0
    recording_consent: bool = False
    recording_retention_days: int = 30
    # the last seconds of a chatting visitor's recording its agents may watch
    # in the chat (recordings/rewind.py; 0: no rewind)
    rewind_seconds: int = 60
    # What the widget removes from messages, drafts and the offline form before
    # they leave the page, besides card numbers (JavaScript regular expressions;
    # docs/privacy.md).
    redact_patterns: tuple[str, ...] = ()
    # the audit trail's entries older than this are deleted (0: kept; docs/privacy.md)
    audit_retention_days: int = 365
    # Retention of everything else, in days (0: kept; chatserver/privacy/retention.py):
    # closed conversations, files posted, visitors who never chatted, page views and events.
    conversation_retention_days: int = 0
    attachment_retention_days: int = 0
    visitor_retention_days: int = 0
    activity_retention_days: int = 0
    # agents may ask to see the visitor's page (co-browsing, docs/cobrowse.md)
    cobrowse: bool = True

    def to_json(self) -> JSON:
        return {
            "typing_preview": self.typing_preview,
            "routing": self.routing,
            "greeting": self.greeting,
            "language": self.language,
            "color": self.color,
            "require_identity": self.require_identity,
            "recording": self.recording,
            "recording_sample": self.recording_sample,
            "recording_consent": self.recording_consent,
            "recording_retention_days": self.recording_retention_days,
            "rewind_seconds": self.rewind_seconds,
            "redact_patterns": list(self.redact_patterns),
            "audit_retention_days": self.audit_retention_days,
            "conversation_retention_days": self.conversation_retention_days,
            "attachment_retention_days": self.attachment_retention_days,
            "visitor_retention_days": self.visitor_retention_days,
            "activity_retention_days": self.activity_retention_days,
            "cobrowse": self.cobrowse,
        }

    @classmethod
    def from_json(cls, data: JSON) -> SiteSettings:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "redact_patterns" in known:
            known["redact_patterns"] = tuple(known["redact_patterns"] or ())
        return cls(**known)


@dataclass(frozen=True, slots=True)
class Site:
    id: SiteId
    key: str
    name: str
    allowed_origins: tuple[str, ...] = ()
    settings: SiteSettings = field(default_factory=SiteSettings)
    departments: tuple[DepartmentId, ...] = ()
    created_at: float = 0.0

    def origin_allowed(self, origin: str | None) -> bool:
        """True when a browser page at ``origin`` may open a visitor socket.

        An empty list allows every origin (handy on a first install; the
        admin page says so); ``*`` does the same explicitly.  A missing
        Origin header (a non-browser client) is allowed: origins protect
        browsers' users, not the server.
        """
        if not self.allowed_origins or origin is None:
            return True
        origin = origin.rstrip("/").lower()
        return any(o == "*" or o.rstrip("/").lower() == origin for o in self.allowed_origins)


@dataclass(frozen=True, slots=True)
class Agent:
    id: AgentId
    site_id: SiteId
    email: str
    name: str
    password_hash: str
    role: Role = Role.AGENT
    capacity: int = 5
    departments: tuple[DepartmentId, ...] = ()
    disabled: bool = False
    created_at: float = 0.0

    @property
    def takes_chats(self) -> bool:
        """Whether the agent has chat rights: enabled, and an agent or an admin.

        Losing them (disabled, or made an analyst) ends every sign-in of the
        agent: ``Store.save_agent`` raises the session generation.
        """
        return not self.disabled and self.role is not Role.ANALYST

    def public(self) -> JSON:
        """What visitors and colleagues may see of an agent."""
        return {"id": self.id, "name": self.name}


@dataclass(frozen=True, slots=True)
class Visitor:
    id: VisitorId
    site_id: SiteId
    created_at: float
    name: str = ""
    email: str = ""
    attributes: JSON = field(default_factory=dict)
    last_agent_id: AgentId | None = None
    visits: int = 0
    user_id: str = ""  # the shop's customer id from ``identify`` ("" = none)
    verified: bool = False  # ``user_id`` came with a valid identity hash

    def to_wire(self) -> JSON:
        """What agents see of a visitor record."""
        return {
            "id": self.id,
            "name": self.name,
            "email": self.email,
            "attributes": self.attributes,
            "visits": self.visits,
            "user_id": self.user_id,
            "verified": self.verified,
        }


@dataclass(frozen=True, slots=True)
class PageView:
    """One page a visitor saw; ``visit`` numbers the visit it belongs to (1, 2, ...)."""

    visitor_id: VisitorId
    url: str
    title: str
    referrer: str
    ts: float
    visit: int

    def to_wire(self) -> JSON:
        return {
            "url": self.url,
            "title": self.title,
            "referrer": self.referrer,
            "ts": self.ts,
            "visit": self.visit,
        }


@dataclass(frozen=True, slots=True)
class VisitorEvent:
    """A custom event the shop tracked for a visitor (``track``)."""

    visitor_id: VisitorId
    name: str
    props: JSON
    ts: float

    def to_wire(self) -> JSON:
        return {"name": self.name, "props": self.props, "ts": self.ts}


RATINGS = ("great", "okay", "poor")  # satisfaction ratings, best first


@dataclass(frozen=True, slots=True)
class Attachment:
    """An uploaded file: the bytes are in the BlobStore under ``blob_key``.

    ``uploader`` is ``visitor:<id>`` or ``agent:<id>``; ``conv_id`` is the
    conversation it was first posted into (``None`` until then).
    """

    id: str
    site_id: SiteId
    uploader: str
    name: str
    content_type: str
    size: int
    created_at: float
    conv_id: ConversationId | None = None

    @property
    def blob_key(self) -> str:
        return f"attachments/{self.site_id}/{self.id}"

    def to_wire(self) -> JSON:
        """``data.attachment`` of an entry (the URL is added on delivery)."""
        return {"id": self.id, "name": self.name, "type": self.content_type, "size": self.size}


@dataclass(frozen=True, slots=True)
class Conversation:
    id: ConversationId
    site_id: SiteId
    visitor_id: VisitorId
    epoch: str
    state: ConvState
    created_at: float
    queued_at: float
    department: DepartmentId | None = None
    agents: tuple[AgentId, ...] = ()
    last_offset: int = 0
    offline: bool = False
    closed_at: float | None = None
    tags: tuple[str, ...] = ()
    rating: str | None = None  # the visitor's satisfaction rating (``RATINGS``)
    rating_comment: str = ""
    rated_at: float | None = None

    def summary(self) -> JSON:
        return {
            "id": self.id,
            "visitor": self.visitor_id,
            "state": self.state.value,
            "epoch": self.epoch,
            "offset": self.last_offset,
            "department": self.department,
            "agents": list(self.agents),
            "created_at": self.created_at,
            "offline": self.offline,
            "tags": list(self.tags),
            "rating": (
                None
                if self.rating is None
                else {"value": self.rating, "comment": self.rating_comment, "ts": self.rated_at}
            ),
        }


@dataclass(frozen=True, slots=True)
class Entry:
    """One item of a conversation's history, numbered by ``offset`` (1, 2, ...)."""

    conversation_id: ConversationId
    offset: int
    kind: EntryKind
    author_kind: AuthorKind
    author_id: str
    author_name: str
    body: str
    ts: float
    cid: str | None = None
    data: JSON = field(default_factory=dict)

    @property
    def agents_only(self) -> bool:
        return self.kind is EntryKind.NOTE

    def to_wire(self) -> JSON:
        frame: JSON = {
            "conv": self.conversation_id,
            "offset": self.offset,
            "kind": self.kind.value,
            "from": {
                "kind": self.author_kind.value,
                "id": self.author_id,
                "name": self.author_name,
            },
            "body": self.body,
            "ts": self.ts,
        }
        if self.cid is not None:
            frame["cid"] = self.cid
        if self.data:
            frame["data"] = self.data
        return frame


@dataclass(frozen=True, slots=True)
class Doc:
    """A small JSON document a site keeps of one ``kind``: a canned response,
    a trigger rule...  The store keeps them; their meaning is the feature's."""

    site_id: SiteId
    kind: str
    id: str
    data: JSON
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class Firing:
    """The last time a trigger fired for a visitor: in which visit, when, and
    whether a chat followed it (counted once, see ``Store.claim_follow``)."""

    visit: int
    at: float
    followed: bool = False


# -- session recordings (recordings/, docs/recordings.md) -------------------------

RecordingId = str


@dataclass(frozen=True, slots=True)
class RecordingMark:
    """A point on a recording's timeline that the index keeps.

    ``kind`` is ``page`` (``data``: ``url``, ``title``), ``click``
    (``selector``, ``text``), ``snapshot`` (a full snapshot: ``offset`` of its
    frame in the segment, ``seq`` of the batch, ``index`` of the first event
    to replay from in that batch) or ``gap`` (``dropped`` events the recorder
    could not keep).  ``ts`` is in milliseconds on the recording's own clock
    (the browser's, like every rrweb event timestamp).
    """

    kind: str
    ts: float
    data: JSON = field(default_factory=dict)

    def to_wire(self) -> JSON:
        return {"kind": self.kind, "ts": self.ts, **self.data}


@dataclass(frozen=True, slots=True)
class RecordingBatch:
    """What one stored batch adds to its recording's index."""

    seq: int
    first_ts: float  # ms, the batch's earliest event
    last_ts: float  # ms, its latest event
    events: int
    bytes: int  # stored bytes (the compressed frame, header included)
    raw_bytes: int  # the batch as compact JSON
    clicks: int = 0
    inputs: int = 0
    marks: tuple[RecordingMark, ...] = ()
    conv_id: ConversationId | None = None


@dataclass(frozen=True, slots=True)
class Recording:
    """The index row of one recorded session (one browser tab's visit).

    ``started``/``ended`` are server seconds (the browser clock shifted by
    ``skew_ms``, measured when the recording began); ``first_ts``/``last_ts``
    are the browser's milliseconds, the clock of the events and marks.
    ``last_seq`` is the highest batch stored (``-1``: none yet).
    """

    id: RecordingId
    site_id: SiteId
    visitor_id: VisitorId
    blob: str  # the segment's BlobStore key
    created_at: float
    skew_ms: float
    started: float = 0.0
    ended: float = 0.0
    first_ts: float = 0.0
    last_ts: float = 0.0
    last_seq: int = -1
    events: int = 0
    bytes: int = 0
    raw_bytes: int = 0
    clicks: int = 0
    inputs: int = 0
    pages: int = 0
    marks: int = 0
    conv_id: ConversationId | None = None

    @property
    def duration(self) -> float:
        """Seconds between the first and the last event."""
        return max(0.0, (self.last_ts - self.first_ts) / 1000.0)

    def to_wire(self) -> JSON:
        return {
            "id": self.id,
            "site": self.site_id,
            "visitor": self.visitor_id,
            "started": self.started,
            "ended": self.ended,
            "duration": round(self.duration, 3),
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "events": self.events,
            "bytes": self.bytes,
            "raw_bytes": self.raw_bytes,
            "clicks": self.clicks,
            "inputs": self.inputs,
            "pages": self.pages,
            "conv": self.conv_id,
        }
