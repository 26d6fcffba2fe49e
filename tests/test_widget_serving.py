"""How the server hands out the widget build (``chatserver/widget_build``, made by scripts/setup).

``/widget.js`` (the loader a shop pastes) is cached for five minutes; the
content-hashed chat bundle under ``/widget/`` for a year, immutable. Without
a build, ``/widget.js`` answers 404 and the log says to run the setup.
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from chatserver import app as app_module
from chatserver.app import WIDGET_BUILD, create_app
from chatserver.config import Config


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
    monkeypatch.setattr(app_module, "WIDGET_BUILD", tmp_path / "no-build")
    monkeypatch.setattr(app_module, "_widget_missing_logged", False)
    with caplog.at_level(logging.ERROR, logger="chatserver.app"):
        r = get(app, "/widget.js")
        get(app, "/widget.js")
    assert r.status_code == 404 and "scripts/setup" in r.text
    logged = [rec.getMessage() for rec in caplog.records if "widget.js" in rec.getMessage()]
    assert len(logged) == 1 and "run scripts/setup" in logged[0]
