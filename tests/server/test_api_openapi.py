"""The OpenAPI document: valid OpenAPI 3.1, served as is, and true to the real answers.

``tests/api_check.py`` checks every answer the API tests get against the
document; here one scenario calls every operation for its success and its
errors on a real server, and the check itself is shown to fail on an answer
the document does not describe.
"""

from __future__ import annotations

import json

import httpx
import jsonschema
import pytest
from openapi_spec_validator import validate

from chatserver.api.openapi import DOCUMENT

from .. import api_check
from ..api_check import Api, error_of
from ..conftest import Client, Server, seed
from .test_api import MANUAL, make_key

OPERATIONS = {op["operationId"] for item in DOCUMENT["paths"].values() for op in item.values()}


def test_the_document_is_valid_openapi_3_1() -> None:
    validate(DOCUMENT)  # raises on an invalid document
    assert DOCUMENT["openapi"].startswith("3.1")
    assert len(OPERATIONS) == sum(len(item) for item in DOCUMENT["paths"].values())


@pytest.mark.anyio
@pytest.mark.usefixtures("close_clients")
async def test_every_operation_answers_as_documented(server: Server) -> None:
    shop = await seed(server.data, agents=2, settings=MANUAL)
    owner, offline = shop.agents.values()
    await Client.agent(server, next(iter(shop.agents)))
    visitor = await Client.visitor(server, shop.key)
    assert (await visitor.request({"t": "page", "url": "https://shop.test/"}))["t"] == "ok"
    conv = (await visitor.request({"t": "send", "cid": "m1", "body": "hi"}))["conv"]
    vid = visitor.welcome["visitor"]
    api_check.SEEN.clear()
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.get("/api/v1/openapi.json")  # no key needed
        assert r.status_code == 200 and r.json() == json.loads(json.dumps(DOCUMENT))
        api_check.check(r)
    api = Api(server.url, await make_key(server, shop.site.id))
    nobody = Api(server.url, None)
    c = f"/conversations/{conv}"
    try:
        calls = [
            ("GET", "/conversations", {}, 200),
            ("GET", "/conversations", {"params": {"limit": 0}}, 400),
            ("GET", c, {}, 200),
            ("GET", "/conversations/c_none", {}, 404),
            ("GET", f"{c}/entries", {"params": {"after": 0}}, 200),
            ("GET", f"{c}/entries", {"params": {"after": "x"}}, 400),
            ("POST", f"{c}/messages", {"json": {"agent_id": owner, "body": "x"}}, 403),
            ("POST", f"{c}/assign", {"json": {"agent_id": owner}}, 200),
            ("POST", f"{c}/assign", {"json": {"agent_id": offline}}, 409),
            ("POST", f"{c}/assign", {"json": {"agent_id": "a_none"}}, 404),
            ("POST", f"{c}/messages", {"json": {"agent_id": owner, "body": "x", "cid": "1"}}, 201),
            ("POST", f"{c}/messages", {"json": {"agent_id": owner, "body": "x", "cid": "1"}}, 200),
            ("POST", f"{c}/messages", {"json": {"agent_id": owner}}, 400),
            ("POST", f"{c}/messages", {"content": b"x" * 70_000}, 413),
            ("POST", f"{c}/tags", {"json": {"add": ["a"]}}, 200),
            ("POST", f"{c}/tags", {"json": {"add": "a"}}, 400),
            ("POST", f"{c}/close", {"json": {}}, 200),
            ("POST", f"{c}/close", {"json": {"agent_id": "a_none"}}, 404),
            ("POST", f"{c}/messages", {"json": {"agent_id": owner, "body": "late"}}, 409),
            ("GET", f"/visitors/{vid}", {}, 200),
            ("GET", "/visitors/v_none", {}, 404),
            ("GET", f"/visitors/{vid}/pages", {}, 200),
            ("GET", f"/visitors/{vid}/pages", {"params": {"limit": "many"}}, 400),
            ("GET", "/reports", {}, 200),
            ("GET", "/reports", {"params": {"since": "x"}}, 400),
            ("GET", "/reports/daily", {}, 200),
            ("GET", "/reports/none", {}, 404),
        ]
        for method, path, kw, status in calls:
            r = await api.request(method, path, **kw)
            assert r.status_code == status, (method, path, r.status_code, r.text)
        for method, path, _, _ in calls:  # the same without a key
            r = await nobody.request(method, path)
            assert error_of(r)[:2] == (401, 4102), (method, path)
    finally:
        await api.close()
        await nobody.close()
    answered = {op for op, status in api_check.SEEN if status.startswith("2")}
    refused = {op for op, status in api_check.SEEN if status.startswith("4")}
    assert answered == OPERATIONS, OPERATIONS - answered
    assert refused == OPERATIONS - {"getOpenApi"}, OPERATIONS - refused


def test_an_answer_unlike_the_document_fails_the_check() -> None:
    request = httpx.Request("GET", "http://test/api/v1/conversations/c_1")
    good = {
        "id": "c_1",
        "visitor": "v_1",
        "state": "active",
        "epoch": "e",
        "offset": 3,
        "department": None,
        "agents": [],
        "created_at": 1.0,
        "closed_at": None,
        "offline": False,
        "tags": [],
        "rating": None,
    }
    api_check.check(httpx.Response(200, json={"conversation": good}, request=request))
    for body in (
        {"conversation": {**good, "secret": "new field"}},  # a field the document lacks
        {"conversation": {**good, "state": "open"}},
        {"conversation": {k: v for k, v in good.items() if k != "offset"}},
        {"error": {"code": 205}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            api_check.check(httpx.Response(200, json=body, request=request))
    with pytest.raises(AssertionError):  # a status the operation does not document
        api_check.check(httpx.Response(201, json={"conversation": good}, request=request))
    with pytest.raises(AssertionError):  # an unknown path must be a 404 error
        api_check.check(
            httpx.Response(200, json={}, request=httpx.Request("GET", "http://t/api/v1/x"))
        )
