"""#21: agents' pictures (``agent_console/avatars.py``): uploaded on the profile page
or by an admin on the agent's page, sniffed, size-capped, kept in the blob store and
served only to the same site, with a safe type and ``nosniff``."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import httpx
import pytest

from agent_console.avatars import MAX_AVATAR_BYTES
from agent_console.web import avatar_hue, initials
from chatserver.types import Role

from ..conftest import console_login, csrf_of
from ..node import Node

pytestmark = pytest.mark.anyio
ORIGIN = {"Origin": "http://127.0.0.1"}
AVATARS_JS = (
    Path(__file__).resolve().parents[2] / "agent_console" / "static" / "chat" / "avatars.js"
)


def png(width: int = 2, height: int = 2) -> bytes:
    """A valid, tiny PNG (red pixels)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + b"\x00" * 64 + b"\xff\xd9"
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 40


async def sign_in(http: httpx.AsyncClient, email: str) -> str:
    """Sign in; the session's CSRF token."""
    assert (await console_login(http, email)).status_code == 303
    return csrf_of((await http.get("/console/profile")).text)


async def upload(
    http: httpx.AsyncClient, path: str, csrf: str, data: bytes, name: str, kind: str
) -> httpx.Response:
    files = {"avatar": (name, data, kind)}
    return await http.post(path, data={"csrf": csrf}, files=files, headers=ORIGIN)


async def pictures(http: httpx.AsyncClient) -> dict[str, str | None]:
    listed = (await http.get("/console/api/agents", headers={"Accept": "application/json"})).json()
    return {a["id"]: a["avatar"] for a in listed}


async def test_an_agent_uploads_their_picture_and_colleagues_get_it_safely(node: Node) -> None:
    shop = await node.seed(agents=2)
    (anna_email, anna), (_marc_email, marc) = shop.agents.items()
    async with node.http() as anna_http:
        csrf = await sign_in(anna_http, anna_email)
        assert (await pictures(anna_http)) == {anna: None, marc: None}
        picture = png()
        sent = await upload(anna_http, "/console/profile", csrf, picture, "me.png", "image/png")
        assert sent.status_code == 303
        url = (await pictures(anna_http))[anna]
        assert url and url.startswith(f"/console/avatars/{anna}?v=")
        served = await anna_http.get(url)
        assert served.status_code == 200 and served.content == picture
        assert served.headers["content-type"] == "image/png"
        assert served.headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in served.headers["content-security-policy"]
        profile = await anna_http.get("/console/profile")
        assert f'src="{url.replace("&", "&amp;")}"' in profile.text  # shown on the page

        # The type is the bytes', never the name's or the browser's claim.
        sent = await upload(anna_http, "/console/profile", csrf, JPEG, "me.png", "image/png")
        assert sent.status_code == 303
        newer = (await pictures(anna_http))[anna]
        assert newer != url  # a new picture, a new URL (caches)
        served = await anna_http.get(str(newer))
        assert served.headers["content-type"] == "image/jpeg"

        # Removed: the blob goes, the URL answers 404, initials come back.
        removed = await anna_http.post(
            "/console/profile", data={"csrf": csrf, "action": "remove"}, headers=ORIGIN
        )
        assert removed.status_code == 303
        assert (await pictures(anna_http))[anna] is None
        assert (await anna_http.get(str(newer))).status_code == 404
        assert await node.app.state.node.blobs.size(f"avatars/{shop.site.id}/{anna}") is None


async def test_refused_pictures_store_nothing(node: Node) -> None:
    shop = await node.seed(agents=1)
    email, agent = next(iter(shop.agents.items()))
    async with node.http() as http:
        csrf = await sign_in(http, email)
        html = b"<html><script>alert(1)</script></html>"
        refused = await upload(http, "/console/profile", csrf, html, "x.png", "image/png")
        assert refused.status_code == 422 and "Only PNG, JPEG and WebP" in refused.text
        gif = b"GIF89a" + b"\x00" * 30  # an image, but not one of the three
        assert (
            await upload(http, "/console/profile", csrf, gif, "x.gif", "image/gif")
        ).status_code == 422
        big = png() + b"\x00" * MAX_AVATAR_BYTES
        too_big = await upload(http, "/console/profile", csrf, big, "big.png", "image/png")
        assert too_big.status_code == 422 and "too large" in too_big.text
        empty = await http.post("/console/profile", data={"csrf": csrf}, headers=ORIGIN)
        assert empty.status_code == 422 and "Choose a picture" in empty.text
        no_csrf = await upload(http, "/console/profile", "", png(), "x.png", "image/png")
        assert no_csrf.status_code == 403
        assert (await pictures(http))[agent] is None
        assert await node.app.state.node.blobs.size(f"avatars/{shop.site.id}/{agent}") is None
        # WebP is the third accepted type.
        ok = await upload(http, "/console/profile", csrf, WEBP, "x.webp", "image/webp")
        assert ok.status_code == 303
        url = (await pictures(http))[agent]
        assert (await http.get(str(url))).headers["content-type"] == "image/webp"


async def test_an_admin_sets_an_agents_picture_and_other_sites_see_nothing(node: Node) -> None:
    shop = await node.seed(agents=2, roles={0: Role.ADMIN})
    other = await node.seed(agents=1)
    (admin_email, _admin), (agent_email, agent) = shop.agents.items()
    async with node.http() as admin_http:
        csrf = await sign_in(admin_http, admin_email)
        edit = await admin_http.get(f"/console/admin/agents/{agent}")
        assert 'class="avatar avatar-lg initials"' in edit.text  # initials until then
        path = f"/console/admin/agents/{agent}/avatar"
        assert (
            await upload(admin_http, path, csrf, png(), "a.png", "image/png")
        ).status_code == 303
        url = str((await pictures(admin_http))[agent])
        assert f'src="{url}"' in (await admin_http.get(f"/console/admin/agents/{agent}")).text
    async with node.http() as agent_http:
        agent_csrf = await sign_in(agent_http, agent_email)
        assert (await agent_http.get(url)).status_code == 200  # a colleague
        # Not an admin: may not set a colleague's picture.
        refused = await upload(
            agent_http,
            f"/console/admin/agents/{_admin}/avatar",
            agent_csrf,
            png(),
            "a.png",
            "image/png",
        )
        assert refused.status_code == 403
    async with node.http() as stranger_http:
        _ = await sign_in(stranger_http, next(iter(other.agents)))
        assert (await stranger_http.get(url)).status_code == 404  # another site's agent
        assert (await stranger_http.get("/console/avatars/nobody")).status_code == 404
    anonymous = node.http()
    async with anonymous:
        answer = await anonymous.get(url, headers={"Accept": "application/json"})
        assert answer.status_code == 401


def test_initials_and_hue_agree_with_the_script() -> None:
    """Pages (Jinja filters) and the workspace (avatars.js) draw the same avatar."""
    node_js = shutil.which("node")
    if node_js is None:
        pytest.skip("node is not installed (scripts/setup installs it)")
    names = ["Ann Smith", "ann", "Marie-Claire van der Berg", "  ", "élodie  ørsted", "#1 fan"]
    ids = ["", "a", "ag_3f2a9c", "v_8d1e0b7a", "a_é", "😀x"]
    script = (
        f"import {{ hue, initials }} from {json.dumps(AVATARS_JS.as_uri())};"
        f"const names = {json.dumps(names)}, ids = {json.dumps(ids)};"
        "console.log(JSON.stringify([names.map(initials), ids.map(hue)]));"
    )
    out = subprocess.run(
        [node_js, "--input-type=module", "-e", script],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    ).stdout
    assert json.loads(out) == [[initials(n) for n in names], [avatar_hue(i) for i in ids]]
    assert initials("Ann Smith") == "AS" and initials("  ") == "?"
    assert len({avatar_hue(i) for i in ids}) > 3  # spread, not one colour
