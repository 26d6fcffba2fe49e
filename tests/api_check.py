"""The REST API's real answers checked against its OpenAPI document.

``Api`` is an httpx client for ``/api/v1/`` that checks every answer it
gets: the path and method must be an operation of the document
(``chatserver/api/openapi.py``), the status one of that operation's
responses, and the JSON body valid against that response's schema
(``jsonschema``, draft 2020-12, the document's components resolved).  It
keeps which (operation, status) pairs were seen, so a test can say that
every operation was answered for real.  An answer the document does not
describe fails the test that got it: the document cannot drift from the code.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import jsonschema

from chatserver.api.openapi import DOCUMENT

BASE = "/api/v1"
_OPS: list[tuple[re.Pattern[str], str, str, dict[str, Any]]] = []
for _path, _item in DOCUMENT["paths"].items():
    _pattern = re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", _path) + "$")
    for _method, _op in _item.items():
        _OPS.append((_pattern, _method.upper(), _op["operationId"], _op))

# Every (operationId, status) answered and checked, across the tests of a run.
SEEN: set[tuple[str, str]] = set()
ERROR_SCHEMA = {"$ref": "#/components/schemas/Error"}


def operation(method: str, path: str) -> tuple[str, dict[str, Any]] | None:
    for pattern, m, op_id, op in _OPS:
        if m == method and pattern.match(path):
            return op_id, op
    return None


def check_body(schema: dict[str, Any], body: Any) -> None:
    """``body`` against ``schema`` (refs into the document's components)."""
    whole = {"components": DOCUMENT["components"], "allOf": [schema]}
    jsonschema.Draft202012Validator(whole).validate(body)


def check(response: httpx.Response) -> None:
    """Fail unless the document describes ``response`` (see the module docstring)."""
    path = response.request.url.path
    assert path.startswith(BASE), path
    found = operation(response.request.method, path[len(BASE) :])
    status = str(response.status_code)
    if found is None:
        # No such operation: the answer must be the API's 404 or 405 error.
        assert status in ("404", "405"), (response.request.method, path, status)
        check_body(ERROR_SCHEMA, response.json())
        return
    op_id, op = found
    assert status in op["responses"], f"{op_id} answered {status}, not in the document"
    content = op["responses"][status].get("content", {}).get("application/json")
    assert content is not None, f"{op_id} {status}: no JSON body documented"
    assert response.headers["content-type"].startswith("application/json")
    check_body(content["schema"], response.json())
    for header in op["responses"][status].get("headers", {}):
        assert header in response.headers, f"{op_id} {status}: no {header} header"
    SEEN.add((op_id, status))


class Api:
    """An API client with a key; every answer is checked (``check``)."""

    def __init__(self, url: str, key: str | None) -> None:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.AsyncClient(base_url=url + BASE, headers=headers, timeout=10)

    async def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        response = await self.http.request(method, path, **kw)
        check(response)
        return response

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("POST", path, **kw)

    async def close(self) -> None:
        await self.http.aclose()


def error_of(response: httpx.Response) -> tuple[int, int, str]:
    """``(HTTP status, code, name)`` of an error answer."""
    error = response.json()["error"]
    return response.status_code, error["code"], error["name"]
