"""Agents' avatars: a picture an agent uploads (``/console/profile``) or an admin
sets on the agent's page, kept in the node's blob store like attachments.

* Accepted: PNG, JPEG and WebP up to ``MAX_AVATAR_BYTES``; the type is found from
  the first bytes (``sniff``), never from the file name or what the browser says.
* Stored: the bytes under ``avatars/<site>/<agent>`` in the blob store, and a site
  document (kind ``avatar``, id the agent's) with the sniffed type and a version,
  so the console lists a site's avatars in one read and a new picture gets a new URL.
* Served: ``GET /console/avatars/<agent>?v=<version>`` to signed-in people of the
  same site only, with the stored type, ``X-Content-Type-Options: nosniff`` and a
  policy that runs nothing (``default-src 'none'; sandbox``), cached privately.

Without a picture the console draws initials on a colour derived from the id
(``static/chat/avatars.js``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from chatserver.errors import NotFound
from chatserver.features.attachments.records import sniff
from chatserver.types import Agent

from . import alert_prefs, i18n
from .admin.common import done, form_data, me, node_of, page
from .auth import guard
from .i18n import _
from .web import ALL_ROLES, security_headers

if TYPE_CHECKING:
    from chatserver.node import Node

AVATAR_KIND = "avatar"
MAX_AVATAR_BYTES = 512 * 1024
TYPES = frozenset({"image/png", "image/jpeg", "image/webp"})
PATH = "/console/profile"


def blob_key(agent: Agent) -> str:
    return f"avatars/{agent.site_id}/{agent.id}"


def url(agent_id: str, version: Any) -> str:
    return f"/console/avatars/{agent_id}?v={int(version)}"


async def urls(node: Node, site_id: str) -> dict[str, str]:
    """Each agent of the site who has a picture: their avatar's URL."""
    found = {}
    for doc in await node.store.list_docs(site_id, AVATAR_KIND):
        version = doc.data.get("v")
        if isinstance(version, int) and doc.data.get("type") in TYPES:
            found[doc.id] = url(doc.id, version)
    return found


async def url_of(node: Node, agent: Agent) -> str | None:
    doc = await node.store.get_doc(agent.site_id, AVATAR_KIND, agent.id)
    if doc is None or not isinstance(doc.data.get("v"), int):
        return None
    return url(agent.id, doc.data["v"])


async def read_upload(form: Any) -> tuple[bytes, str] | str:
    """The uploaded picture and its sniffed type, or why it is refused."""
    upload = form.get("avatar")
    if not isinstance(upload, UploadFile):
        return _("Choose a picture to upload.")
    data = await upload.read(MAX_AVATAR_BYTES + 1)
    if not data:
        return _("Choose a picture to upload.")
    if len(data) > MAX_AVATAR_BYTES:
        return _("The picture is too large: at most %(n)s KB.") % {"n": MAX_AVATAR_BYTES // 1024}
    kind = sniff(data[:16])
    if kind not in TYPES:
        return _("Only PNG, JPEG and WebP pictures.")
    return data, kind


async def save(node: Node, agent: Agent, data: bytes, kind: str) -> None:
    await node.blobs.put(blob_key(agent), data)
    version = time.time_ns() // 1_000_000
    await node.store.put_doc(agent.site_id, AVATAR_KIND, agent.id, {"type": kind, "v": version})


async def remove(node: Node, agent: Agent) -> None:
    await node.store.delete_doc(agent.site_id, AVATAR_KIND, agent.id)
    await node.blobs.delete(blob_key(agent))


async def change(request: Request, agent: Agent) -> str | None:
    """Apply the posted avatar form to ``agent``: an error to show, or ``None``."""
    node, form = node_of(request), await form_data(request)
    try:
        if form.get("action") == "remove":
            await remove(node, agent)
            return None
        got = await read_upload(form)
        if isinstance(got, str):
            return got
        await save(node, agent, *got)
        return None
    finally:
        await form.close()  # the upload's temporary file


@guard(*ALL_ROLES)
async def serve(request: Request) -> Response:
    node, viewer = node_of(request), me(request)
    agent = await node.store.get_agent(str(request.path_params["agent_id"]))
    doc = None
    if agent is not None and agent.site_id == viewer.site_id:
        doc = await node.store.get_doc(agent.site_id, AVATAR_KIND, agent.id)
    kind = doc.data.get("type") if doc else None
    if agent is None or kind not in TYPES:
        return security_headers(Response("no such avatar\n", 404, media_type="text/plain"))
    try:
        data = await node.blobs.read(blob_key(agent))
    except NotFound:
        return security_headers(Response("no such avatar\n", 404, media_type="text/plain"))
    response = Response(data, media_type=str(kind))
    security_headers(response, "default-src 'none'; sandbox")
    response.headers["Cache-Control"] = "private, max-age=86400"
    return response


@guard(*ALL_ROLES)
async def profile(request: Request) -> Response:
    node, agent = node_of(request), me(request)
    error = None
    if request.method == "POST":
        error = await change(request, agent)
        if error is None:
            return done(request, PATH, _("Saved your picture."))
    ctx = {
        "avatar": await url_of(node, agent),
        "error": error,
        "max_kb": MAX_AVATAR_BYTES // 1024,
        "alerts": await alert_prefs.prefs(node, agent),
        "language_chosen": await i18n.chosen(node, agent),
    }
    return page(request, "profile.html", ctx, status_code=422 if error else 200)


routes: list[BaseRoute] = [
    Route("/profile", profile, methods=["GET", "POST"], name="console_profile"),
    Route("/avatars/{agent_id}", serve, name="console_avatar"),
]
