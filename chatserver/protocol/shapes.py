"""The shapes nested in server frames (pure code, no I/O).

The conversation object, an entry and its ``from``, an agent's public
record ``{id, name}``, a read marker, the welcome's site, settings and
limits, a visitor's record and presence: each a ``TypedDict`` that
``wire.py`` 's frames use, keys exactly as sent.
"""

from typing import Any, NotRequired, TypedDict


class AgentRef(TypedDict):
    """An agent's public record (``Agent.public``): what visitors and colleagues see."""

    id: str
    name: str


class Author(TypedDict):
    """``from`` of an entry or a ``typing`` frame: ``kind`` visitor, agent or system."""

    kind: str
    id: str
    name: str


class Reader(TypedDict):
    """``by`` of a read marker: ``kind`` visitor or agent."""

    kind: str
    id: str


class ReadMarker(TypedDict):
    """One reader's marker: a ``read`` frame without ``t`` and ``conv``."""

    by: Reader
    offset: int


class Rating(TypedDict):
    value: str
    comment: str
    ts: float | None


class ConversationObject(TypedDict):
    """``conv`` of a ``conv`` frame; ``welcome.conversations`` (docs §5.3)."""

    id: str
    visitor: str
    state: str
    epoch: str
    offset: int
    department: str | None
    agents: list[AgentRef]
    created_at: float
    offline: bool
    tags: NotRequired[list[str]]  # agents only
    position: NotRequired[int]  # only while queued, when known
    rating: Rating | None


# ``from`` is a Python keyword: the shapes holding it use the functional syntax.
Entry = TypedDict(
    "Entry",
    {
        "conv": str,
        "offset": int,
        "kind": str,
        "from": Author,
        "body": str,
        "ts": float,
        "cid": NotRequired[str],  # text and notes
        "data": NotRequired[dict[str, Any]],  # events; attachments, offline, auto
    },
)
"""One conversation entry: a ``msg`` frame without ``t``, ``history.messages``."""


class SiteSettings(TypedDict):
    """``welcome.site.settings`` (``SiteSettings.to_json``)."""

    typing_preview: bool
    routing: str
    greeting: str
    language: str
    color: str
    require_identity: bool
    recording: bool
    recording_sample: float
    recording_consent: bool
    recording_retention_days: int
    rewind_seconds: int
    redact_patterns: list[str]
    audit_retention_days: int
    conversation_retention_days: int
    attachment_retention_days: int
    visitor_retention_days: int
    activity_retention_days: int
    cobrowse: bool


class WireLimits(TypedDict):
    """``welcome.limits`` (``Hub.limits_json``)."""

    max_frame_bytes: int
    max_message_chars: int
    max_preview_chars: int
    preview_interval: float
    rate_per_second: float
    rate_burst: float


class VisitorSite(TypedDict):
    name: str
    settings: SiteSettings


class AgentSite(TypedDict):
    id: str
    name: str
    departments: list[str]
    settings: SiteSettings


class AgentSelf(TypedDict):
    """``welcome.agent``: the signed-in agent's own record."""

    id: str
    name: str
    email: str
    role: str
    capacity: int
    departments: list[str]


class PresenceInfo(TypedDict):
    """What presence shows of a connected visitor (``visitor.online``)."""

    since: float
    url: NotRequired[str]
    title: NotRequired[str]
    tz: NotRequired[str]
    browser: NotRequired[str]
    os: NotRequired[str]
    device: NotRequired[str]
    lang: NotRequired[str]


class OnlineVisitor(PresenceInfo):
    """One element of ``visitors.visitors``."""

    id: str


class PageView(TypedDict):
    url: str
    title: str
    referrer: str
    ts: float
    visit: int


class TrackedEvent(TypedDict):
    name: str
    props: dict[str, Any]
    ts: float


class VisitorRecord(TypedDict):
    """``visitor.visitor``: a visitor as agents see it, with its newest page view."""

    id: str
    name: str
    email: str
    attributes: dict[str, Any]
    visits: int
    user_id: str
    verified: bool
    page: PageView | None


class Viewer(TypedDict):
    id: str
    name: str
    typing: bool
