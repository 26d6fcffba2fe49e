"""API keys and the API's error paths on an in-process node (milliseconds, real SQLite).

``ApiKeys`` against the node's real store: a key works until revoked, only
its digest is stored, its last use is written at most once a minute, a use
that raced a revocation leaves nothing behind once listed.  Then what every
endpoint answers when the store fails (503) or the code does (500), with a
fault injected into the node's store for one call.
"""

from __future__ import annotations

import logging

import pytest

from chatserver.api import keys as keys_module
from chatserver.api.keys import KIND, USED_KIND, ApiKeys, digest, parse
from chatserver.errors import StoreError

from ..node import Node

pytestmark = pytest.mark.anyio


async def test_a_key_works_until_revoked_and_only_its_digest_is_kept(node: Node) -> None:
    shop = await node.seed()
    keys: ApiKeys = node.parts.api_keys
    key, token = await keys.create(shop.site.id, "CRM")
    parsed = parse(token)
    assert parsed == (shop.site.id, key.id, token.rpartition("_")[2])
    (doc,) = await node.store.list_docs(shop.site.id, KIND)
    assert doc.data == {"name": "CRM", "digest": digest(parsed[2])}
    assert await keys.authenticate(token) == key
    assert await keys.authenticate(token[:-1] + ("0" if token[-1] != "0" else "1")) is None
    other = await node.seed()
    forged = f"csk_{other.site.id}.{key.id}_{parsed[2]}"  # the right secret, another site
    assert await keys.authenticate(forged) is None
    assert await keys.revoke(other.site.id, key.id) is None  # not that site's key
    assert (await keys.revoke(shop.site.id, key.id)) == key
    assert await keys.authenticate(token) is None
    assert await keys.revoke(shop.site.id, key.id) is None
    assert await keys.revoke(shop.site.id, "../x") is None


async def test_last_use_is_written_once_a_minute_and_never_revives_a_key(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = await node.seed()
    keys: ApiKeys = node.parts.api_keys
    clock = [1000.0]
    monkeypatch.setattr(keys_module, "now", lambda: clock[0])
    key, token = await keys.create(shop.site.id, "CRM")
    assert (await keys.of_site(shop.site.id))[0].last_used is None
    await keys.authenticate(token)
    clock[0] += 59
    await keys.authenticate(token)
    assert (await keys.of_site(shop.site.id))[0].last_used == 1000.0
    clock[0] += 1
    await keys.authenticate(token)
    assert (await keys.of_site(shop.site.id))[0].last_used == 1060.0
    # A use that raced the revocation wrote its document after it: listing drops it.
    await keys.revoke(shop.site.id, key.id)
    await node.store.put_doc(shop.site.id, USED_KIND, key.id, {"at": 1.0})
    assert await keys.of_site(shop.site.id) == []
    assert await node.store.list_docs(shop.site.id, USED_KIND) == []
    assert await keys.authenticate(token) is None


async def test_store_and_code_failures_are_json_errors(
    node: Node, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    shop = await node.seed()
    _, token = await node.parts.api_keys.create(shop.site.id, "CRM")
    store = node.parts.store
    headers = {"Authorization": f"Bearer {token}"}

    async def unavailable(*args: object, **kw: object) -> None:
        raise StoreError("disk on fire")

    async def broken(*args: object, **kw: object) -> None:
        raise RuntimeError("a bug")

    async with node.http() as http:
        monkeypatch.setattr(store, "get_conversation", unavailable)
        with caplog.at_level(logging.ERROR, "chatserver.api"):
            r = await http.get("/api/v1/conversations/c_1", headers=headers)
        assert r.status_code == 503
        assert r.json()["error"] == {
            "code": 101,
            "name": "unavailable",
            "message": "storage failed; retry later",
        }
        monkeypatch.setattr(store, "get_conversation", broken)
        with caplog.at_level(logging.ERROR, "chatserver.api"):
            r = await http.get("/api/v1/conversations/c_1", headers=headers)
        assert r.status_code == 500 and r.json()["error"]["code"] == 100
        assert "a bug" not in r.text  # the client gets no traceback
        assert any("a bug" in (rec.exc_text or "") for rec in caplog.records)
        assert token not in caplog.text
