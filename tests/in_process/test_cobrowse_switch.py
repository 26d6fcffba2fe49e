"""The site's co-browsing switch (``SiteSettings.cobrowse``, docs/cobrowse.md): off, an
agent's request is refused with ``204`` and nothing is asked of the visitor; on again, it works."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chatserver import sites
from chatserver.errors import ErrorCode
from chatserver.types import SiteSettings

from ..node import Node

pytestmark = pytest.mark.anyio


async def test_co_browsing_off_refuses_the_request(node: Node) -> None:
    shop = await node.seed(agents=1, settings=SiteSettings(cobrowse=False))
    agent = await node.agent(next(iter(shop.agents)))
    visitor = await node.visitor(shop.key)
    conv = (await visitor.request({"t": "send", "cid": "m1", "body": "help?"}))["conv"]
    await agent.expect("conv", lambda f: f["conv"]["id"] == conv and f["conv"]["state"] == "active")
    refused = await agent.request({"t": "cobrowse", "conv": conv, "action": "request"})
    assert refused["t"] == "error" and refused["code"] == ErrorCode.NOT_ALLOWED
    assert "off for this site" in refused["message"]
    assert not [
        f
        for f in visitor.frames
        if f["t"] == "msg"
        and f.get("kind") == "event"
        and f.get("data", {}).get("event") == "cobrowse"
    ]
    site = await node.store.get_site(shop.site.id)
    assert site is not None
    await sites.save(node.parts, replace(site, settings=replace(site.settings, cobrowse=True)))
    asked = await agent.request({"t": "cobrowse", "conv": conv, "action": "request"})
    assert asked["t"] == "cobrowse" and asked["state"] == "requested", asked
