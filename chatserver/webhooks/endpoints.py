"""Webhook endpoints: site documents of kind ``webhook`` (``store.put_doc``).

One document per endpoint, its data::

    url            str    where deliveries are POSTed (http:// or https://)
    events         [str]  the event types it receives (``EVENTS``)
    allow_private  bool   it may reach private and loopback addresses
    secret         str    the signing secret (shown to the admin once, never logged)
    enabled        bool   switched on; off by the admin or after failures
    failures       int    consecutive failed attempts (0 after a success)
    errors         [obj]  the last ``ERRORS_KEPT`` failures: {"at", "delivery", "error"}
    disabled       obj    why it was switched off: {"at", "reason"}, or null
    from_seq       int    the change feed's head when it was made: its first change

An endpoint receives what happens after it was made (entries stamped at or
after its ``created_at``); switched off, it receives nothing, and switched
on again it catches up from where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..types import JSON, Doc, SiteId

KIND = "webhook"  # the site documents' kind
MAX_ENDPOINTS = 20  # per site
ERRORS_KEPT = 10

# Every event type, in the order the admin page lists them.
EVENTS: tuple[str, ...] = (
    "conversation.opened",
    "conversation.assigned",
    "conversation.transferred",
    "conversation.closed",
    "conversation.rated",
    "message.created",
    "note.created",
    "offline.message",
    "trigger.fired",
    "visitor.identified",
)
# What a new endpoint receives unless the admin chooses: all but internal notes.
DEFAULT_EVENTS: tuple[str, ...] = tuple(e for e in EVENTS if e != "note.created")


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    site_id: SiteId
    url: str
    events: frozenset[str]
    secret: str
    created_at: float
    allow_private: bool = False
    enabled: bool = True
    failures: int = 0
    from_seq: int = 0
    errors: tuple[JSON, ...] = ()
    disabled: JSON | None = field(default=None)

    @classmethod
    def from_doc(cls, doc: Doc) -> Endpoint:
        d = doc.data
        return cls(
            id=doc.id,
            site_id=doc.site_id,
            url=str(d.get("url", "")),
            events=frozenset(str(e) for e in d.get("events", ()) if e in EVENTS),
            secret=str(d.get("secret", "")),
            created_at=doc.created_at,
            allow_private=bool(d.get("allow_private", False)),
            enabled=bool(d.get("enabled", True)),
            failures=int(d.get("failures", 0)),
            from_seq=int(d.get("from_seq", 0)),
            errors=tuple(d.get("errors", ())),
            disabled=d.get("disabled"),
        )

    def to_doc(self) -> JSON:
        return {
            "url": self.url,
            "events": sorted(self.events),
            "allow_private": self.allow_private,
            "secret": self.secret,
            "enabled": self.enabled,
            "failures": self.failures,
            "errors": list(self.errors),
            "disabled": self.disabled,
            "from_seq": self.from_seq,
        }

    def __repr__(self) -> str:  # never the secret
        return f"Endpoint({self.id!r}, {self.url!r}, enabled={self.enabled})"


def cursor_name(endpoint_id: str, conv_id: str) -> str:
    """The endpoint's cursor and order key in one conversation (``wh:<endpoint>:<conv>``)."""
    return f"wh:{endpoint_id}:{conv_id}"


def key_prefix(endpoint_id: str) -> str:
    """The prefix of every order key of the endpoint (its deliveries in ``store.jobs``)."""
    return f"wh:{endpoint_id}:"
