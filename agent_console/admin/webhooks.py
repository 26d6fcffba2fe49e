"""Webhook endpoints (``chatserver/webhooks/``): list, add, test, deliveries, re-send.

An endpoint's secret is shown once, on the page that answers its creation,
and never again (the admin makes a new endpoint to get a new one).  The
detail page lists the endpoint's newest deliveries from the outbox with
their state, attempts and last error; a delivery that failed or was given
up can be sent again.  An endpoint switched off after failures says so on
the list, the detail page and the admin overview.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from chatserver.store.outbox import JobState
from chatserver.types import Role, Site, now
from chatserver.webhooks import Webhooks
from chatserver.webhooks.client import Refused, check_url
from chatserver.webhooks.endpoints import (
    DEFAULT_EVENTS,
    EVENTS,
    MAX_ENDPOINTS,
    Endpoint,
    key_prefix,
)

from ..auth import guard
from ..confirm import confirmation_page
from ..forms import Fields, Form
from ..i18n import _
from .common import BASE, GET_POST, done, form_data, missing, node_of, own_site, page

MAX_URL = 2000


def _hooks(request: Request) -> Webhooks:
    return node_of(request).webhooks


def webhook_form(data: Any) -> Form:
    """An endpoint: an http(s) URL, the events it wants, whether it may reach private
    addresses."""
    fields, form = Fields(data), Form()
    url = fields.text("url").strip()
    form.values["url"] = url
    if not url:
        form.errors["url"] = _("A URL is required.")
    elif len(url) > MAX_URL:
        form.errors["url"] = _("At most %(n)s characters.") % {"n": MAX_URL}
    else:
        try:
            check_url(url)
            form.clean["url"] = url
        except Refused as exc:
            form.errors["url"] = _("Not a valid endpoint URL: %(exc)s.") % {"exc": exc}
    chosen = [e for e in fields.texts("events") if e in EVENTS]
    form.values["events"] = chosen
    if not chosen:
        form.errors["events"] = _("Choose at least one event.")
    else:
        form.clean["events"] = chosen
    form.values["allow_private"] = form.clean["allow_private"] = fields.checked("allow_private")
    return form


async def _endpoint(request: Request, site: Site) -> Endpoint | None:
    return await _hooks(request).endpoint(site.id, request.path_params["hook_id"])


def _ctx(**kw: Any) -> dict[str, Any]:
    return {"section": "webhooks", "all_events": EVENTS, **kw}


@guard(Role.ADMIN)
async def webhooks(request: Request) -> Response:
    site = await own_site(request)
    endpoints = await _hooks(request).endpoints(site.id)
    return page(request, "admin/webhooks.html", _ctx(endpoints=endpoints))


@guard(Role.ADMIN)
async def webhook_new(request: Request) -> Response:
    site = await own_site(request)
    if request.method == "GET":
        form = Form(values={"events": list(DEFAULT_EVENTS)})
        return page(request, "admin/webhook_form.html", _ctx(form=form))
    form = webhook_form(await form_data(request))
    if form.ok and len(await _hooks(request).endpoints(site.id)) >= MAX_ENDPOINTS:
        form.errors["url"] = _("A site has at most %(n)s webhook endpoints.") % {"n": MAX_ENDPOINTS}
    if not form.ok:
        return page(request, "admin/webhook_form.html", _ctx(form=form), 422)
    endpoint = await _hooks(request).add(
        site.id, form.clean["url"], form.clean["events"], form.clean["allow_private"]
    )
    # The secret is shown on this answer only (no redirect: it is never shown again).
    return page(request, "admin/webhook_created.html", _ctx(endpoint=endpoint))


@guard(Role.ADMIN)
async def webhook(request: Request) -> Response:
    node, site = node_of(request), await own_site(request)
    endpoint = await _endpoint(request, site)
    if endpoint is None:
        return missing(request, _("No such webhook endpoint."))
    jobs = await node.store.jobs(site.id, key_prefix(endpoint.id), limit=50)
    return page(
        request,
        "admin/webhook.html",
        _ctx(endpoint=endpoint, jobs=jobs, failed=JobState.FAILED, pending=JobState.PENDING),
    )


@guard(Role.ADMIN)
async def webhook_test(request: Request) -> Response:
    site = await own_site(request)
    endpoint = await _endpoint(request, site)
    if endpoint is None:
        return missing(request, _("No such webhook endpoint."))
    error = await _hooks(request).test_send(endpoint)
    message = (
        _("Test delivery failed: %(error)s") % {"error": error}
        if error
        else _("Test delivery answered 2xx.")
    )
    return done(request, f"{BASE}/webhooks/{endpoint.id}", message)


async def _switch(request: Request, enabled: bool) -> Response:
    site = await own_site(request)
    endpoint = await _endpoint(request, site)
    if endpoint is None:
        return missing(request, _("No such webhook endpoint."))
    await _hooks(request).change(endpoint, enabled=enabled)
    said = _("Switched on.") if enabled else _("Switched off.")
    return done(request, f"{BASE}/webhooks/{endpoint.id}", said)


@guard(Role.ADMIN)
async def webhook_enable(request: Request) -> Response:
    return await _switch(request, True)


@guard(Role.ADMIN)
async def webhook_disable(request: Request) -> Response:
    return await _switch(request, False)


@guard(Role.ADMIN)
async def webhook_delete(request: Request) -> Response:
    site = await own_site(request)
    endpoint = await _endpoint(request, site)
    if endpoint is not None:
        question = _("Delete the webhook endpoint %(url)s?") % {"url": endpoint.url}
        back = f"{BASE}/webhooks/{endpoint.id}"
        if ask := await confirmation_page(request, question, _("Delete"), back):
            return ask
    if endpoint is None or not await _hooks(request).delete(endpoint):
        return missing(request, _("No such webhook endpoint."))
    return done(
        request, f"{BASE}/webhooks", _("Deleted the endpoint %(url)s.") % {"url": endpoint.url}
    )


@guard(Role.ADMIN)
async def webhook_resend(request: Request) -> Response:
    node, site = node_of(request), await own_site(request)
    endpoint = await _endpoint(request, site)
    if endpoint is None:
        return missing(request, _("No such webhook endpoint."))
    delivery = Fields(await form_data(request)).text("delivery")[:300]
    job = await node.store.get_job(delivery) if delivery else None
    if job is None or job.site_id != site.id or not job.key.startswith(key_prefix(endpoint.id)):
        return missing(request, _("No such delivery."))
    if job.state is JobState.PENDING:
        return done(request, f"{BASE}/webhooks/{endpoint.id}", _("That delivery is still due."))
    await node.store.resend(job.id, now())
    node.outbox.wake()
    return done(request, f"{BASE}/webhooks/{endpoint.id}", _("The delivery will be sent again."))


routes: list[BaseRoute] = [
    Route("/admin/webhooks", webhooks, name="admin_webhooks"),
    Route("/admin/webhooks/new", webhook_new, methods=GET_POST, name="admin_webhook_new"),
    Route("/admin/webhooks/{hook_id}", webhook, name="admin_webhook"),
    Route("/admin/webhooks/{hook_id}/test", webhook_test, methods=["POST"]),
    Route("/admin/webhooks/{hook_id}/enable", webhook_enable, methods=["POST"]),
    Route("/admin/webhooks/{hook_id}/disable", webhook_disable, methods=["POST"]),
    Route("/admin/webhooks/{hook_id}/delete", webhook_delete, methods=["POST"]),
    Route("/admin/webhooks/{hook_id}/resend", webhook_resend, methods=["POST"]),
]
