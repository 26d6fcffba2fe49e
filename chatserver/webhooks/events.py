"""Which webhook event an entry of the conversation log is, and the body sent.

Webhook events are a projection of the durable log (``store.entries``):

=========================  ==============================================
event type                 entry
=========================  ==============================================
conversation.opened        none: sent before the conversation's first entry
                           (offset 0) when it began after the endpoint was made
conversation.assigned      event ``joined`` (an agent joined: routed or took it)
conversation.transferred   event ``transferred`` (to an agent or a department)
conversation.closed        event ``closed``
conversation.rated         event ``rated`` (the visitor's rating)
message.created            a text entry by the visitor or an agent
note.created               an agents-only note (only if the endpoint asks)
offline.message            the offline form's message (a visitor's text with
                           ``data.offline``: the name and e-mail given)
trigger.fired              a trigger's greeting (a text entry with ``data.auto``)
=========================  ==============================================

Other entries (an agent left, co-browsing) are no webhook event.
``visitor.identified`` is not in a conversation's log: ``Webhooks.visitor_identified``
enqueues it when a visitor identifies.
"""

from __future__ import annotations

from ..types import JSON, AuthorKind, Conversation, Entry, EntryKind

_LIFECYCLE = {
    "joined": "conversation.assigned",
    "transferred": "conversation.transferred",
    "closed": "conversation.closed",
    "rated": "conversation.rated",
}


def event_type(entry: Entry) -> str | None:
    """The webhook event ``entry`` is, or ``None``."""
    if entry.kind is EntryKind.NOTE:
        return "note.created"
    if entry.kind is EntryKind.EVENT:
        return _LIFECYCLE.get(str(entry.data.get("event", "")))
    auto = entry.data.get("auto")
    if isinstance(auto, dict) and "trigger" in auto:
        return "trigger.fired"
    if entry.author_kind is AuthorKind.VISITOR:
        return "offline.message" if "offline" in entry.data else "message.created"
    if entry.author_kind is AuthorKind.AGENT:
        return "message.created"
    return None


def _conversation(conv: Conversation) -> JSON:
    return {
        "id": conv.id,
        "epoch": conv.epoch,
        "visitor": conv.visitor_id,
        "offline": conv.offline,
        "created_at": conv.created_at,
    }


def body(delivery: str, kind: str, conv: Conversation, entry: Entry | None) -> JSON:
    """The JSON body of one delivery (docs/integrations.md, "Payloads")."""
    out: JSON = {
        "id": delivery,
        "type": kind,
        "site": conv.site_id,
        "conversation": _conversation(conv),
        "offset": entry.offset if entry is not None else 0,
        "created_at": entry.ts if entry is not None else conv.created_at,
    }
    if entry is not None:
        out["entry"] = entry.to_wire()
    return out
