"""The Store contract: sites, their identity secret and their documents (``SiteStore``).

Every test runs on each backend of ``conftest.FACTORIES``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable

import pytest

from chatserver.errors import NotFound
from chatserver.store import Store
from chatserver.types import (
    SiteSettings,
)

pytestmark = pytest.mark.anyio


async def test_create_and_get_site(store: Store) -> None:
    before = time.time()
    settings = SiteSettings(typing_preview=False, routing="manual", greeting="Hi!", language="de")
    site = await store.create_site(
        "Shop", ["https://shop.example"], settings, departments=["sales", "support"]
    )
    assert site.id and site.key and site.id != site.key
    assert site.name == "Shop"
    assert site.allowed_origins == ("https://shop.example",)
    assert site.settings == settings
    assert site.departments == ("sales", "support")
    assert before <= site.created_at <= time.time()
    assert await store.get_site(site.id) == site
    assert await store.site_by_key(site.key) == site


async def test_site_defaults(store: Store) -> None:
    site = await store.create_site("Plain")
    assert site.allowed_origins == ()
    assert site.settings == SiteSettings()
    assert site.departments == ()
    assert await store.get_site(site.id) == site


async def test_unknown_site(store: Store) -> None:
    site = await store.create_site("Shop")
    assert await store.get_site("s_nope") is None
    assert await store.site_by_key("nope") is None
    assert await store.get_site(site.key) is None  # a key is not an id
    assert await store.site_by_key(site.id) is None  # and the other way round


async def test_sites_get_distinct_ids_and_keys(store: Store) -> None:
    sites = [await store.create_site(f"Shop {i}") for i in range(5)]
    assert len({s.id for s in sites}) == 5
    assert len({s.key for s in sites}) == 5


async def test_save_site(store: Store) -> None:
    site = await store.create_site("Shop", ["https://a.example"])
    changed = dataclasses.replace(
        site,
        name="Renamed",
        allowed_origins=("https://b.example", "*"),
        settings=SiteSettings(color="#000000", greeting="Moin"),
        departments=("vip",),
    )
    await store.save_site(changed)
    assert await store.get_site(site.id) == changed
    assert await store.site_by_key(site.key) == changed


async def test_save_unknown_site_is_not_found(store: Store) -> None:
    site = await store.create_site("Shop")
    with pytest.raises(NotFound):
        await store.save_site(dataclasses.replace(site, id="s_ghost"))


async def test_list_sites(store: Store) -> None:
    assert await store.list_sites() == []
    a = await store.create_site("A")
    b = await store.create_site("B")
    assert sorted(await store.list_sites(), key=lambda s: s.name) == [a, b]


async def test_records_are_frozen(store: Store) -> None:
    site = await store.create_site("Shop")
    with pytest.raises(dataclasses.FrozenInstanceError):
        site.name = "x"  # type: ignore[misc]


async def test_docs_put_get_list_delete(store: Store) -> None:
    site = await store.create_site("Docs")
    other = await store.create_site("Other")
    first = await store.put_doc(site.id, "canned", "hi", {"text": "Hello!", "n": [1, 2]})
    assert first.data == {"text": "Hello!", "n": [1, 2]}
    await asyncio.sleep(0.002)
    await store.put_doc(site.id, "canned", "bye", {"text": "Bye"})
    await store.put_doc(site.id, "trigger", "t1", {"on": True})
    await store.put_doc(other.id, "canned", "hi", {"text": "other site"})

    got = await store.get_doc(site.id, "canned", "hi")
    assert got is not None and got.data["text"] == "Hello!" and got.kind == "canned"
    assert [d.id for d in await store.list_docs(site.id, "canned")] == ["hi", "bye"]
    assert [d.id for d in await store.list_docs(site.id, "trigger")] == ["t1"]
    assert await store.get_doc(site.id, "canned", "missing") is None
    assert await store.list_docs(site.id, "nothing") == []

    await asyncio.sleep(0.002)
    replaced = await store.put_doc(site.id, "canned", "hi", {"text": "Hi again"})
    assert replaced.created_at == first.created_at
    assert replaced.updated_at > first.updated_at
    listed = await store.list_docs(site.id, "canned")
    assert [d.id for d in listed] == ["hi", "bye"]  # a replace keeps its place
    assert listed[0].data == {"text": "Hi again"}

    assert await store.delete_doc(site.id, "canned", "hi")
    assert not await store.delete_doc(site.id, "canned", "hi")
    assert [d.id for d in await store.list_docs(site.id, "canned")] == ["bye"]
    other_doc = await store.get_doc(other.id, "canned", "hi")
    assert other_doc is not None and other_doc.data == {"text": "other site"}


async def test_docs_survive_reopen(make_store: Callable[[], Store]) -> None:
    store = make_store()
    await store.start()
    site = await store.create_site("Docs")
    await store.put_doc(site.id, "canned", "x", {"text": "kept"})
    await store.close()
    again = make_store()
    await again.start()
    try:
        doc = await again.get_doc(site.id, "canned", "x")
        assert doc is not None and doc.data == {"text": "kept"}
    finally:
        await again.close()


async def test_identity_secret(store: Store) -> None:
    site = await store.create_site("Shop")
    secret = await store.identity_secret(site.id)
    assert len(secret) == 64 and int(secret, 16) >= 0
    assert await store.identity_secret(site.id) == secret  # stable
    other = await store.create_site("Other")
    assert await store.identity_secret(other.id) != secret
    rotated = await store.identity_secret(site.id, rotate=True)
    assert rotated != secret and len(rotated) == 64
    assert await store.identity_secret(site.id) == rotated
    with pytest.raises(NotFound):
        await store.identity_secret("s_nope")
    # the secret is no part of the site record, and saving a site keeps it
    got = await store.get_site(site.id)
    assert got is not None and rotated not in repr(got)
    await store.save_site(dataclasses.replace(got, name="Renamed"))
    assert await store.identity_secret(site.id) == rotated


async def test_identity_secret_is_created_once_under_concurrency(store: Store) -> None:
    site = await store.create_site("Shop")
    secrets = await asyncio.gather(*(store.identity_secret(site.id) for _ in range(8)))
    assert len(set(secrets)) == 1
