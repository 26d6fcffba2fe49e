"""Row and field conversions shared by the Redis domain modules (moved from ``store_redis``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from ...errors import StoreError
from ...types import (
    Agent,
    Attachment,
    AuthorKind,
    Conversation,
    ConversationId,
    ConvState,
    Entry,
    EntryKind,
    Role,
    Site,
    SiteSettings,
    Visitor,
)

_BATCH = 200  # stream entries per read when notes are filtered out


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _fields(raw: object) -> dict[str, str]:
    """A hash as HGETALL returns it (a dict) or a script does (a flat list)."""
    if isinstance(raw, dict):
        return {_text(k): _text(v) for k, v in raw.items()}
    if isinstance(raw, list):
        return {_text(k): _text(v) for k, v in zip(raw[::2], raw[1::2], strict=True)}
    raise StoreError(f"redis: unexpected reply {raw!r}")


def _flat(fields: Mapping[str, str]) -> list[str]:
    return [part for pair in fields.items() for part in pair]


def _status(reply: object) -> tuple[str, list[object]]:
    """A script's ``{status, ...}`` reply."""
    if isinstance(reply, list) and reply:
        return _text(reply[0]), reply[1:]
    raise StoreError(f"redis: unexpected reply {reply!r}")


def _email_key(email: str) -> str:
    return email.strip().lower()


def _cid_field(author_id: str, cid: str) -> str:
    return f"{len(author_id)}:{author_id}:{cid}"


def _limit(limit: int) -> int | None:
    """SQL's LIMIT: a negative limit is no limit."""
    return None if limit < 0 else limit


def _site_fields(site: Site) -> dict[str, str]:
    return {
        "name": site.name,
        "origins": json.dumps(list(site.allowed_origins)),
        "settings": json.dumps(site.settings.to_json()),
        "departments": json.dumps(list(site.departments)),
    }


def _site(h: Mapping[str, str]) -> Site:
    return Site(
        id=h["id"],
        key=h["key"],
        name=h["name"],
        allowed_origins=tuple(json.loads(h["origins"])),
        settings=SiteSettings.from_json(json.loads(h["settings"])),
        departments=tuple(json.loads(h["departments"])),
        created_at=float(h["created_at"]),
    )


def _agent_fields(agent: Agent) -> dict[str, str]:
    """The fields ``save_agent`` overwrites (all but id, site and creation time)."""
    return {
        "email": agent.email,
        "email_key": _email_key(agent.email),
        "name": agent.name,
        "password_hash": agent.password_hash,
        "role": agent.role.value,
        "capacity": str(agent.capacity),
        "departments": json.dumps(list(agent.departments)),
        "disabled": "1" if agent.disabled else "0",
    }


def _agent(h: Mapping[str, str]) -> Agent:
    return Agent(
        id=h["id"],
        site_id=h["site_id"],
        email=h["email"],
        name=h["name"],
        password_hash=h["password_hash"],
        role=Role(h["role"]),
        capacity=int(h["capacity"]),
        departments=tuple(json.loads(h["departments"])),
        disabled=h["disabled"] == "1",
        created_at=float(h["created_at"]),
    )


def _visitor(h: Mapping[str, str]) -> Visitor:
    return Visitor(
        id=h["id"],
        site_id=h["site_id"],
        created_at=float(h["created_at"]),
        name=h.get("name", ""),
        email=h.get("email", ""),
        attributes=json.loads(h.get("attributes", "{}")),
        last_agent_id=h.get("last_agent_id"),
        visits=int(h.get("visits", "0")),
        user_id=h.get("user_id", ""),
        verified=h.get("verified") == "1",
    )


def _conv(h: Mapping[str, str]) -> Conversation:
    closed_at = h.get("closed_at")
    rated_at = h.get("rated_at")
    return Conversation(
        id=h["id"],
        site_id=h["site_id"],
        visitor_id=h["visitor_id"],
        epoch=h["epoch"],
        state=ConvState(h["state"]),
        created_at=float(h["created_at"]),
        queued_at=float(h["queued_at"]),
        department=h.get("department"),
        agents=tuple(json.loads(h["agents"])),
        last_offset=int(h["last_offset"]),
        offline=h["offline"] == "1",
        closed_at=float(closed_at) if closed_at is not None else None,
        tags=tuple(json.loads(h.get("tags", "[]"))),
        rating=h.get("rating"),
        rating_comment=h.get("rating_comment", ""),
        rated_at=float(rated_at) if rated_at is not None else None,
    )


def _attachment(h: Mapping[str, str]) -> Attachment:
    return Attachment(
        id=h["id"],
        site_id=h["site_id"],
        uploader=h["uploader"],
        name=h["name"],
        content_type=h["content_type"],
        size=int(h["size"]),
        created_at=float(h["created_at"]),
        conv_id=h.get("conv_id"),
    )


def _entry(conv_id: ConversationId, offset: int, h: Mapping[str, str]) -> Entry:
    data = h.get("data")
    return Entry(
        conversation_id=conv_id,
        offset=offset,
        kind=EntryKind(h["kind"]),
        author_kind=AuthorKind(h["author_kind"]),
        author_id=h["author_id"],
        author_name=h["author_name"],
        body=h["body"],
        ts=float(h["ts"]),
        cid=h.get("cid"),
        data=json.loads(data) if data else {},
    )


def _offset(stream_id: object) -> int:
    """The offset of the stream entry ``<offset>-0``."""
    return int(_text(stream_id).partition("-")[0])


def _stream_entries(conv_id: ConversationId, rows: Iterable[tuple[object, object]]) -> list[Entry]:
    """Entries from XRANGE rows ``(id, fields)``."""
    return [_entry(conv_id, _offset(sid), _fields(fields)) for sid, fields in rows]
