"""How the server hands out the widget build (``chatserver/widget_build``, made by scripts/setup).

``/widget.js`` (the loader a shop pastes) is cached for five minutes; the
content-hashed chat bundle under ``/widget/`` for a year, immutable. Without
a build, ``/widget.js`` answers 404 and the log says to run the setup.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import re
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from chatserver.bundles import WIDGET_BUILD
from chatserver.config import Config
from chatserver.web import files as files_module
from chatserver.web.app import create_app


@pytest.fixture
def app(tmp_path: Path) -> Starlette:
    return create_app(Config(data_dir=tmp_path / "data"))


def get(app: Starlette, path: str, **headers: str) -> httpx.Response:
    """One GET through the ASGI app in this process (no lifespan needed)."""

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return await http.get(path, headers=headers)

    return asyncio.run(go())


def test_loader_and_bundle_are_served_with_their_cache_rules(app: Starlette) -> None:
    if not (WIDGET_BUILD / "widget.js").is_file():
        pytest.fail("chatserver/widget_build is missing: run scripts/setup (npm run build)")
    loader = get(app, "/widget.js")
    assert loader.status_code == 200
    assert "javascript" in loader.headers["content-type"]
    assert loader.headers["cache-control"] == "public, max-age=300, must-revalidate"
    assert get(app, "/widget.js", **{"If-None-Match": loader.headers["etag"]}).status_code == 304

    match = re.search(r"widget/chat\.[A-Z0-9]+\.js", loader.text)
    assert match, "the loader names the hashed bundle"
    bundle = get(app, f"/{match.group(0)}")
    assert bundle.status_code == 200
    assert bundle.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert get(app, "/widget/chat.NOSUCHHASH.js").status_code == 404
    assert get(app, "/widget/%2E%2E/%2E%2E/pyproject.toml").status_code == 404


def test_missing_build_is_a_404_with_a_hint_in_the_log(
    app: Starlette,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(files_module, "WIDGET_BUILD", tmp_path / "no-build")
    monkeypatch.setattr(files_module, "_widget_missing_logged", False)
    with caplog.at_level(logging.ERROR, logger="chatserver.app"):
        r = get(app, "/widget.js")
        get(app, "/widget.js")
    assert r.status_code == 404 and "scripts/setup" in r.text
    logged = [rec.getMessage() for rec in caplog.records if "widget.js" in rec.getMessage()]
    assert len(logged) == 1 and "run scripts/setup" in logged[0]


def sri(data: bytes) -> str:
    """The Subresource Integrity value of ``data`` (sha384, as the build writes it)."""
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def baked(script: str, bundle: str) -> tuple[str, str]:
    """The hashed ``bundle`` file a built script names, and the integrity next to it.

    The build bakes both in as string constants; in the minified code the
    integrity is the ``sha384-`` string nearest to the name.
    """
    names = re.findall(rf"widget/{bundle}\.[A-Z0-9]+\.js", script)
    assert len(set(names)) == 1, f"one {bundle} bundle named, got {names}"
    name = names[0]
    at = script.index(name)
    found = [
        (abs(m.start() - at), m.group(0)) for m in re.finditer(r"sha384-[A-Za-z0-9+/=]{64}", script)
    ]
    assert found, f"no integrity for {bundle}"
    return name, min(found)[1]


def test_bundles_carry_their_integrity_and_cors_headers(app: Starlette) -> None:
    if not (WIDGET_BUILD / "widget.js").is_file():
        pytest.fail("chatserver/widget_build is missing: run scripts/setup (npm run build)")
    loader = get(app, "/widget.js", Origin="https://shop.example")
    assert loader.headers["access-control-allow-origin"] == "*"
    assert loader.headers["cross-origin-resource-policy"] == "cross-origin"
    assert loader.headers["x-content-type-options"] == "nosniff"

    # The loader's integrity is that of the chat bundle's served bytes; the chat
    # bundle's, those of the recorder and co-browse bundles it adds.
    name, integrity = baked(loader.text, "chat")
    chat = get(app, f"/{name}", Origin="https://shop.example")
    assert chat.status_code == 200 and integrity == sri(chat.content)
    for bundle in (chat, loader):
        assert bundle.headers["access-control-allow-origin"] == "*"
        assert bundle.headers["cross-origin-resource-policy"] == "cross-origin"
    for other in ("recorder", "cobrowse"):
        name, integrity = baked(chat.text, other)
        served = get(app, f"/{name}")
        assert served.status_code == 200 and integrity == sri(served.content), other
        assert served.headers["access-control-allow-origin"] == "*"
        assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
    # A 304 keeps them (the browser revalidates the loader every five minutes).
    again = get(app, "/widget.js", **{"If-None-Match": loader.headers["etag"]})
    assert again.status_code == 304 and again.headers["access-control-allow-origin"] == "*"


def test_types_are_served_as_text(app: Starlette) -> None:
    if not (WIDGET_BUILD / "widget.js").is_file():
        pytest.fail("chatserver/widget_build is missing: run scripts/setup (npm run build)")
    types = get(app, "/widget/chat.d.ts")
    assert types.status_code == 200
    assert types.headers["content-type"] == "text/plain; charset=utf-8"
    assert types.headers["cache-control"] == "public, max-age=300, must-revalidate"
    assert "export type ChatCommand" in types.text and "var $chat: ChatQueue" in types.text
    source = Path(__file__).parents[2] / "widget" / "types" / "chat.d.ts"
    assert types.text == source.read_text()
