"""The OpenAPI document's components: the shapes the API answers with and accepts.

Answers are closed (``additionalProperties: false``) wherever the API owns
the shape, so a field added to the code but not here fails
``tests/server/test_api_openapi.py``, which checks every endpoint's real
answers against these schemas.
"""

from __future__ import annotations

from typing import Any

from ..protocol.frames import MAX_HISTORY, MAX_ID_CHARS, MAX_MESSAGE_CHARS, MAX_TAG_CHARS
from ..store import MAX_PAGE_VIEWS
from ..types import AuthorKind, ConvState, EntryKind

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def closed(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    """An object with exactly these properties (the ``optional`` ones may be missing)."""
    return {
        "type": "object",
        "properties": {**required, **(optional or {})},
        "required": list(required),
        "additionalProperties": False,
    }


STRING: Schema = {"type": "string"}
ID: Schema = {"type": "string", "maxLength": MAX_ID_CHARS}
TIME: Schema = {"type": "number", "description": "Unix time, seconds"}
NULLABLE_TIME: Schema = {"type": ["number", "null"], "description": "Unix time, seconds"}
TAG: Schema = {"type": "string", "minLength": 1, "maxLength": MAX_TAG_CHARS}

SCHEMAS: dict[str, Schema] = {
    "Error": closed(
        {
            "error": closed(
                {
                    "code": {
                        "type": "integer",
                        "description": "the protocol's code (docs/protocol.md): 100-199 retry "
                        "later, 200-299 fix the request, 4102 the key is refused",
                    },
                    "name": {"type": "string", "examples": ["not_found"]},
                    "message": STRING,
                }
            )
        }
    ),
    "Rating": closed(
        {
            "value": {"type": "string", "enum": ["great", "okay", "poor"]},
            "comment": STRING,
            "ts": NULLABLE_TIME,
        }
    ),
    "Conversation": closed(
        {
            "id": ID,
            "visitor": ID,
            "state": {"type": "string", "enum": [s.value for s in ConvState]},
            "epoch": STRING,
            "offset": {"type": "integer", "minimum": 0, "description": "the last entry's"},
            "department": {"type": ["string", "null"]},
            "agents": {"type": "array", "items": ID, "description": "agent ids"},
            "created_at": TIME,
            "closed_at": NULLABLE_TIME,
            "offline": {"type": "boolean", "description": "left with the offline form"},
            "tags": {"type": "array", "items": STRING},
            "rating": {"oneOf": [{"type": "null"}, ref("Rating")]},
        }
    ),
    "Author": closed(
        {
            "kind": {"type": "string", "enum": [k.value for k in AuthorKind]},
            "id": STRING,
            "name": STRING,
        }
    ),
    "Entry": closed(
        {
            "conv": ID,
            "offset": {"type": "integer", "minimum": 1},
            "kind": {"type": "string", "enum": [k.value for k in EntryKind]},
            "from": ref("Author"),
            "body": STRING,
            "ts": TIME,
        },
        {
            "cid": {"type": "string", "description": "the client id it was posted with"},
            "data": {
                "type": "object",
                "description": 'an event\'s details ({"event": "joined", ...}) or a '
                'file\'s ({"attachment": {...}})',
            },
        },
    ),
    "PageView": closed(
        {
            "url": STRING,
            "title": STRING,
            "referrer": STRING,
            "ts": TIME,
            "visit": {"type": "integer", "minimum": 1},
        }
    ),
    "Visitor": closed(
        {
            "id": ID,
            "name": STRING,
            "email": STRING,
            "attributes": {"type": "object"},
            "visits": {"type": "integer", "minimum": 0},
            "user_id": STRING,
            "verified": {"type": "boolean"},
            "page": {"oneOf": [{"type": "null"}, ref("PageView")]},
            "created_at": TIME,
        }
    ),
    "Table": closed(
        {
            "table": STRING,
            "columns": {"type": "array", "items": STRING},
            "rows": {"type": "array", "items": {"type": "array"}},
        }
    ),
    "Figures": {
        "type": "object",
        "additionalProperties": {"type": ["number", "null"]},
        "description": "the overview's figures by name (docs/reports.md)",
    },
    "Period": closed(
        {
            "since": {"type": "string", "format": "date"},
            "until": {"type": "string", "format": "date"},
            "timezone": STRING,
        }
    ),
    "Filters": closed({}, {"agent": ID, "department": ID, "tag": STRING}),
    "MessageIn": closed(
        {
            "agent_id": {**ID, "description": "the agent who writes; must be in the conversation"},
            "body": {"type": "string", "minLength": 1, "maxLength": MAX_MESSAGE_CHARS},
        },
        {
            "note": {"type": "boolean", "default": False, "description": "an internal note"},
            "cid": {
                **ID,
                "description": "a client id: a retried POST with the same one posts nothing "
                "and answers the first entry",
            },
        },
    ),
    "AssignIn": closed({"agent_id": ID}),
    "TagsIn": closed(
        {},
        {
            "add": {"type": "array", "items": TAG, "maxItems": 20},
            "remove": {"type": "array", "items": TAG, "maxItems": 20},
            "agent_id": {**ID, "description": "the agent the change is told as by"},
        },
    ),
    "CloseIn": closed({}, {"agent_id": ID}),
}

# Bounds the parameters document (the code's constants).
LIMITS = {"entries": MAX_HISTORY, "pages": MAX_PAGE_VIEWS}
