"""The OpenAPI 3.1 document of ``/api/v1/``, as data (served at ``/api/v1/openapi.json``).

Written by hand next to the code and kept true by
``tests/server/test_api_openapi.py``: the document is validated as OpenAPI
3.1, and every endpoint's real answers, successes and errors, are checked
against the schemas listed here for their status.
"""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..reports.service import TABLES
from ..types import ConvState
from .conversations import DEFAULT_ENTRIES, DEFAULT_LIMIT, MAX_LIMIT
from .schemas import ID, LIMITS, SCHEMAS, Schema, closed, ref
from .visitors import DEFAULT_PAGES

_ERRORS = {
    "400": "invalid parameter or body (203 invalid_field, 200 bad_frame, 208 too_long)",
    "401": "no key, or a malformed, unknown or revoked one (4102 unauthorized)",
    "403": "not allowed (206 forbidden)",
    "404": "no such record, or another site's (205 not_found)",
    "405": "method not allowed (204 not_allowed)",
    "409": "the state forbids it (207 conflict)",
    "413": "body over 64 KiB (201 frame_too_large)",
    "429": "over the key's rate (102 rate_limited); see Retry-After",
    "503": "storage failed; retry later (101 unavailable)",
}


def _error(status: str) -> Schema:
    response: Schema = {
        "description": _ERRORS[status],
        "content": {"application/json": {"schema": ref("Error")}},
    }
    if status == "429":
        response["headers"] = {
            "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}
        }
    return response


def _ok(description: str, schema: Schema, status: str = "200") -> dict[str, Schema]:
    return {
        status: {"description": description, "content": {"application/json": {"schema": schema}}}
    }


def _operation(
    op_id: str,
    summary: str,
    responses: dict[str, Schema],
    errors: tuple[str, ...],
    params: list[Schema] | None = None,
    body: str | None = None,
    description: str = "",
) -> Schema:
    out: Schema = {"operationId": op_id, "summary": summary}
    if description:
        out["description"] = description
    if params:
        out["parameters"] = params
    if body:
        out["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": ref(body)}},
        }
    codes = ("400", "401", "429", "503", *errors, *(("413",) if body else ()))
    out["responses"] = {**responses, **{s: _error(s) for s in sorted(set(codes))}}
    return out


def _path(name: str, description: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": ID, "description": description}


def _q(name: str, schema: Schema, description: str) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


_CONV = _path("conv_id", "a conversation id (c_...)")
_VISITOR = _path("visitor_id", "a visitor id (v_...)")
_CONV_ANSWER = closed({"conversation": ref("Conversation")})
_REPORT_FILTERS = [
    _q(
        "since",
        {"type": "string", "format": "date"},
        "first day, the site's time zone; default 6 days before until",
    ),
    _q("until", {"type": "string", "format": "date"}, "last day (included); default today"),
    _q("agent", ID, "only conversations this agent was in"),
    _q("department", ID, "only this department's"),
    _q("tag", {"type": "string", "maxLength": 32}, "only conversations with this tag"),
]
_HEAD = {
    "period": ref("Period"),
    "filters": ref("Filters"),
}

PATHS: dict[str, Any] = {
    "/openapi.json": {
        "get": {
            "operationId": "getOpenApi",
            "summary": "This document",
            "security": [],
            "responses": {
                "200": {
                    "description": "the OpenAPI 3.1 document",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    },
    "/conversations": {
        "get": _operation(
            "listConversations",
            "List the site's conversations, newest first",
            _ok(
                "a page; follow next_cursor until it is null",
                closed(
                    {
                        "conversations": {"type": "array", "items": ref("Conversation")},
                        "next_cursor": {"type": ["string", "null"]},
                    }
                ),
            ),
            (),
            [
                _q(
                    "state",
                    {"type": "string", "enum": [s.value for s in ConvState]},
                    "only this state",
                ),
                _q("agent", ID, "only conversations this agent is or was in"),
                _q("department", ID, "only this department's"),
                _q("tag", {"type": "string", "maxLength": 32}, "only those with this tag"),
                _q(
                    "since",
                    {"type": "string"},
                    "created at or after: a date (UTC) or an ISO 8601 time",
                ),
                _q(
                    "until",
                    {"type": "string"},
                    "created before: an ISO 8601 time, or a date (UTC, included)",
                ),
                _q("cursor", {"type": "string", "maxLength": 64}, "next_cursor of the page before"),
                _q(
                    "limit",
                    {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": MAX_LIMIT,
                        "default": DEFAULT_LIMIT,
                    },
                    "conversations per page",
                ),
            ],
            description="A page may hold fewer than limit conversations and still name a next "
            "cursor. A conversation shows here within about a quarter of a second of opening.",
        )
    },
    "/conversations/{conv_id}": {
        "get": _operation(
            "getConversation",
            "Read one conversation",
            _ok("the conversation", _CONV_ANSWER),
            ("404",),
            [_CONV],
        )
    },
    "/conversations/{conv_id}/entries": {
        "get": _operation(
            "listEntries",
            "Read a conversation's entries by offset",
            _ok(
                "entries with offsets above after, oldest first, notes included",
                closed(
                    {
                        "entries": {"type": "array", "items": ref("Entry")},
                        "offset": {
                            "type": "integer",
                            "description": "the conversation's last offset",
                        },
                        "next_after": {
                            "type": ["integer", "null"],
                            "description": "after= of the next page; null: none yet",
                        },
                    }
                ),
            ),
            ("400", "404"),
            [
                _CONV,
                _q(
                    "after",
                    {"type": "integer", "minimum": 0, "default": 0},
                    "entries with a larger offset",
                ),
                _q(
                    "limit",
                    {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": LIMITS["entries"],
                        "default": DEFAULT_ENTRIES,
                    },
                    "entries at most",
                ),
            ],
        )
    },
    "/conversations/{conv_id}/messages": {
        "post": _operation(
            "postMessage",
            "Post a message or an internal note as an agent",
            {
                **_ok(
                    "posted; the visitor (or, for a note, the agents) got it live",
                    closed({"entry": ref("Entry"), "duplicate": {"const": False}}),
                    "201",
                ),
                **_ok(
                    "the cid was used: nothing posted, the first entry",
                    closed({"entry": ref("Entry"), "duplicate": {"const": True}}),
                ),
            },
            ("403", "404", "409"),
            [_CONV],
            "MessageIn",
            description="The agent must be in the conversation (assign it first): 403 if not; "
            "404 for an unknown agent or conversation; 409 when the conversation is closed.",
        )
    },
    "/conversations/{conv_id}/assign": {
        "post": _operation(
            "assignConversation",
            "Add an agent to the conversation",
            _ok("the conversation after it", _CONV_ANSWER),
            ("404", "409"),
            [_CONV],
            "AssignIn",
            description="As the agent's join: 409 when the conversation is closed or the agent "
            "is offline or at capacity.",
        )
    },
    "/conversations/{conv_id}/tags": {
        "post": _operation(
            "tagConversation",
            "Add and remove tags",
            _ok("the conversation after it", _CONV_ANSWER),
            ("404", "409"),
            [_CONV],
            "TagsIn",
        )
    },
    "/conversations/{conv_id}/close": {
        "post": _operation(
            "closeConversation",
            "Close the conversation",
            _ok("the conversation, closed (closing it again changes nothing)", _CONV_ANSWER),
            ("404",),
            [_CONV],
            "CloseIn",
            description="Shown as closed by agent_id when given, else by the key's name.",
        )
    },
    "/visitors/{visitor_id}": {
        "get": _operation(
            "getVisitor",
            "Read a visitor and its latest conversations",
            _ok(
                "the visitor",
                closed(
                    {
                        "visitor": ref("Visitor"),
                        "conversations": {
                            "type": "array",
                            "items": ref("Conversation"),
                            "maxItems": 20,
                        },
                    }
                ),
            ),
            ("400", "404"),
            [_VISITOR],
        )
    },
    "/visitors/{visitor_id}/pages": {
        "get": _operation(
            "listPageViews",
            "Read a visitor's page views, newest first",
            _ok("page views", closed({"pages": {"type": "array", "items": ref("PageView")}})),
            ("400", "404"),
            [
                _VISITOR,
                _q(
                    "limit",
                    {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": LIMITS["pages"],
                        "default": DEFAULT_PAGES,
                    },
                    "page views at most",
                ),
            ],
        )
    },
    "/reports": {
        "get": _operation(
            "getReport",
            "Every report table of a period",
            _ok(
                "the report",
                closed(
                    {
                        **_HEAD,
                        "overview": ref("Figures"),
                        "previous": ref("Figures"),
                        "tables": {"type": "object", "additionalProperties": ref("Table")},
                    }
                ),
            ),
            ("400",),
            _REPORT_FILTERS,
        )
    },
    "/reports/{table}": {
        "get": _operation(
            "getReportTable",
            "One report table",
            _ok(
                "the table",
                closed(
                    {
                        **_HEAD,
                        "table": {"type": "string", "enum": list(TABLES)},
                        "columns": {"type": "array", "items": {"type": "string"}},
                        "rows": {"type": "array", "items": {"type": "array"}},
                    }
                ),
            ),
            ("400", "404"),
            [
                {
                    "name": "table",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "enum": list(TABLES)},
                },
                *_REPORT_FILTERS,
            ],
        )
    },
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "chatserver REST API",
        "version": __version__,
        "description": "Conversations, visitors and reports of one site, for the shop's other "
        "systems. Authenticate with a site's API key: 'Authorization: Bearer csk_...'. "
        "Guide: docs/integrations.md.",
    },
    "servers": [{"url": "/api/v1"}],
    "security": [{"apiKey": []}],
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {
            "apiKey": {
                "type": "http",
                "scheme": "bearer",
                "description": "an API key made on the console's API keys page (csk_...)",
            }
        },
    },
}
