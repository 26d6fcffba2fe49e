"""Webhooks: signed HTTP deliveries of what happens in a site's conversations.

* ``endpoints``  the endpoints (site documents of kind ``webhook``) and event types
* ``events``     which event an entry of the log is, and the body sent
* ``dispatcher`` the change feed to durable jobs (the kill -9-safe half)
* ``client``     outgoing requests with no way into private networks (SSRF)
* ``signing``    ``Chatserver-Signature`` and its verification recipe
* ``settings``   the ``--webhook-*`` options

``Webhooks`` is the service a node holds (``node.webhooks``): it keeps the
sites' enabled endpoints in memory (re-read every ``REFRESH`` seconds and at
once after an admin change here), runs the dispatcher when a conversation
of a site with endpoints changes in this process (a conversation event) or
every ``poll`` seconds (other processes, restarts), and delivers the jobs
the outbox runner (``chatserver/outbox.py``) hands it.  A site without
endpoints costs the chat nothing beyond the feed's write in ``append``.
docs/integrations.md tells the whole story.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import httpx

from .. import __version__, redact
from ..events import ConversationEvent
from ..outbox import GiveUp
from ..store.outbox import FEED_MARGIN, Job, NewJob
from ..tasks import stop
from ..types import SiteId, Visitor, new_id, now
from .client import Refused, Reply, WebhookClient
from .dispatcher import JOB_KIND, Dispatcher
from .endpoints import ERRORS_KEPT, EVENTS, KIND, Endpoint, cursor_name
from .signing import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, new_secret, signature

if TYPE_CHECKING:
    from ..node import Node

log = logging.getLogger("chatserver.webhooks")


class DeliveryFailed(Exception):
    """An attempt failed (an answer other than 2xx, a timeout, a refused address)."""


class Webhooks:
    """The webhook service of a node (see the module docstring)."""

    REFRESH = 5.0  # seconds between re-reads of the sites' endpoints

    def __init__(self, node: Node) -> None:
        self.node = node
        self.store = node.store
        self.config = node.config.webhooks
        self.client = WebhookClient(self.config.timeout, self.config.max_response)
        margin = FEED_MARGIN if node.config.database_url else 0
        self.dispatcher = Dispatcher(node.store, margin)
        self.by_site: dict[SiteId, list[Endpoint]] = {}
        self._enabled: set[str] | None = None  # ids seen enabled at the last refresh
        self._refreshed = 0.0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._locks: dict[str, asyncio.Lock] = {}

    def install(self) -> None:
        """Hook into the node (before it starts)."""
        self.node.outbox.handle(JOB_KIND, self.deliver)
        self.node.convs.events.listen("webhooks", self._on_event, self._wants)
        self.node.hub.add_service(self.start, self.close)

    def _wants(self, event: ConversationEvent) -> bool:
        return event.site_id in self.by_site

    async def _on_event(self, event: ConversationEvent) -> None:
        self._wake.set()

    def wake(self) -> None:
        """Look at the feed now (an admin change, a test)."""
        self._refreshed = 0.0
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="chatserver-webhooks")

    async def close(self) -> None:
        if self._task is not None:
            await stop(self._task)
            self._task = None
        await self.client.close()

    async def refresh(self) -> None:
        """Re-read every site's endpoints; look back for those newly switched on."""
        by_site: dict[SiteId, list[Endpoint]] = {}
        for site in await self.store.list_sites():
            docs = await self.store.list_docs(site.id, KIND)
            endpoints = [Endpoint.from_doc(d) for d in docs]
            for endpoint in endpoints:  # never in a log line, whatever quotes it
                redact.protect_value(endpoint.secret)
            enabled = [e for e in endpoints if e.enabled]
            if enabled:
                by_site[site.id] = enabled
        ids = {e.id for eps in by_site.values() for e in eps}
        if self._enabled is not None:
            for endpoint in (e for eps in by_site.values() for e in eps):
                if endpoint.id not in self._enabled:
                    self.dispatcher.rewind(endpoint.from_seq)
        self._enabled = ids
        self.by_site = by_site
        self._refreshed = time.monotonic()

    async def dispatch(self) -> int:
        """Rounds until the feed's head is reached; the number of jobs added."""
        if time.monotonic() - self._refreshed >= self.REFRESH:
            await self.refresh()
        total = 0
        for _ in range(100):  # bounded: the poll comes back for the rest
            added, reached = await self.dispatcher.round(self.by_site)
            total += added
            if added:
                self.node.outbox.wake()
            if reached:
                break
        return total

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.dispatch()
            except Exception:
                log.exception("webhook dispatch failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.poll)

    # -- events outside the conversation log --------------------------------

    async def visitor_identified(self, visitor: Visitor) -> None:
        """Enqueue ``visitor.identified`` for the endpoints of the visitor's site that
        want it; awaited before the visitor's ``identify`` is answered.

        Not in a conversation's log, so not in the change feed: the jobs are
        written right after the visitor's row (a kill -9 between the two loses
        this one event; docs/integrations.md).  Ordered per endpoint and visitor.
        """
        endpoints = [
            e for e in self.by_site.get(visitor.site_id, ()) if "visitor.identified" in e.events
        ]
        if not endpoints:
            return
        at = now()
        seq = int(at * 1000)
        jobs = []
        for endpoint in endpoints:
            delivery = f"{endpoint.id}.{visitor.id}.{seq}"
            body = {
                "id": delivery,
                "type": "visitor.identified",
                "site": visitor.site_id,
                "visitor": visitor.to_wire(),
                "created_at": at,
            }
            key = cursor_name(endpoint.id, visitor.id)
            payload = {"endpoint": endpoint.id, "body": body}
            jobs.append(NewJob(delivery, visitor.site_id, JOB_KIND, key, seq, payload))
        await self.store.enqueue(jobs, {})
        self.node.outbox.wake()

    # -- endpoints (the admin pages) ---------------------------------------

    async def endpoints(self, site_id: SiteId) -> list[Endpoint]:
        """The site's endpoints, oldest first."""
        return [Endpoint.from_doc(d) for d in await self.store.list_docs(site_id, KIND)]

    async def endpoint(self, site_id: SiteId, endpoint_id: str) -> Endpoint | None:
        if len(endpoint_id) > 64:
            return None
        doc = await self.store.get_doc(site_id, KIND, endpoint_id)
        return Endpoint.from_doc(doc) if doc is not None else None

    async def add(
        self, site_id: SiteId, url: str, events: Iterable[str], allow_private: bool = False
    ) -> Endpoint:
        """A new endpoint with a new secret; it receives what happens from now on."""
        secret = new_secret()
        redact.protect_value(secret)
        data = {
            "url": url,
            "events": sorted(set(events) & set(EVENTS)),
            "allow_private": allow_private,
            "secret": secret,
            "enabled": True,
            "failures": 0,
            "errors": [],
            "disabled": None,
            "from_seq": await self.store.feed_head(),
        }
        doc = await self.store.put_doc(site_id, KIND, new_id("wh"), data)
        self.wake()
        return Endpoint.from_doc(doc)

    async def change(self, endpoint: Endpoint, **data: Any) -> Endpoint:
        """Save ``endpoint`` with ``data`` changed (``enabled=True`` clears the failures
        and looks back to where it was switched off)."""
        doc = dict(endpoint.to_doc())
        doc.update(data)
        if data.get("enabled") and not endpoint.enabled:
            off = endpoint.disabled or {}
            doc["from_seq"] = int(off.get("seq", endpoint.from_seq))
            doc["failures"] = 0
            doc["disabled"] = None
        elif data.get("enabled") is False and endpoint.enabled:
            doc["disabled"] = {
                "at": now(),
                "reason": "switched off by an admin",
                "seq": await self.store.feed_head(),
            }
        saved = await self.store.put_doc(endpoint.site_id, KIND, endpoint.id, doc)
        self.wake()
        return Endpoint.from_doc(saved)

    async def delete(self, endpoint: Endpoint) -> bool:
        gone = await self.store.delete_doc(endpoint.site_id, KIND, endpoint.id)
        self.wake()
        return gone

    async def test_send(self, endpoint: Endpoint) -> str:
        """Send a signed ``ping`` now (not through the outbox); ``""`` or the error."""
        delivery = new_id("ping")
        body = {"id": delivery, "type": "ping", "site": endpoint.site_id, "created_at": now()}
        raw = json.dumps(body, separators=(",", ":")).encode()
        return await self.attempt(endpoint, raw, delivery, "ping")

    # -- delivery ----------------------------------------------------------

    async def send(self, endpoint: Endpoint, body: bytes, delivery: str, kind: str) -> Reply:
        """POST one signed body to ``endpoint`` (raises what ``WebhookClient.post`` does)."""
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"chatserver/{__version__} (webhooks)",
            SIGNATURE_HEADER: signature(endpoint.secret, int(time.time()), body),
            DELIVERY_HEADER: delivery,
            EVENT_HEADER: kind,
        }
        allow = endpoint.allow_private or self.config.allow_private
        return await self.client.post(endpoint.url, body, headers, allow_private=allow)

    async def attempt(self, endpoint: Endpoint, body: bytes, delivery: str, kind: str) -> str:
        """One attempt: ``""`` on a 2xx answer, else what went wrong."""
        try:
            reply = await self.send(endpoint, body, delivery, kind)
        except Refused as exc:
            return f"refused: {exc}"
        except TimeoutError:
            return f"no answer within {self.config.timeout:g} s"
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
        if 200 <= reply.status < 300:
            return ""
        return f"HTTP {reply.status}"

    async def deliver(self, job: Job) -> None:
        """The outbox handler of ``webhook`` jobs."""
        endpoint_id = str(job.payload.get("endpoint", ""))
        doc = await self.store.get_doc(job.site_id, KIND, endpoint_id)
        if doc is None:
            raise GiveUp("the endpoint was deleted")
        endpoint = Endpoint.from_doc(doc)
        if not endpoint.enabled:
            raise GiveUp("the endpoint is switched off")
        payload: Any = job.payload.get("body", {})
        body = json.dumps(payload, separators=(",", ":")).encode()
        error = await self.attempt(endpoint, body, job.id, str(payload.get("type", "")))
        if not error:
            if endpoint.failures:
                await self._update(endpoint, None, job.id)
            return
        await self._update(endpoint, error, job.id)
        raise DeliveryFailed(error)

    async def _update(self, endpoint: Endpoint, error: str | None, delivery: str) -> None:
        """Count a failure (``error``) or reset the count; switch off after too many."""
        lock = self._locks.setdefault(endpoint.id, asyncio.Lock())
        async with lock:
            doc = await self.store.get_doc(endpoint.site_id, KIND, endpoint.id)
            if doc is None:
                return
            data = dict(doc.data)
            if error is None:
                data["failures"] = 0
            else:
                data["failures"] = int(data.get("failures", 0)) + 1
                entry = {"at": now(), "delivery": delivery, "error": error}
                data["errors"] = [*list(data.get("errors", ()))[-(ERRORS_KEPT - 1) :], entry]
                limit = self.config.disable_after
                if data.get("enabled", True) and data["failures"] >= limit:
                    data["enabled"] = False
                    data["disabled"] = {
                        "at": now(),
                        "reason": f"{data['failures']} failed attempts in a row; last: {error}",
                        "seq": await self.store.feed_head(),
                    }
                    log.warning(
                        "webhook endpoint %s of site %s switched off after %d failed attempts",
                        endpoint.id,
                        endpoint.site_id,
                        data["failures"],
                    )
            await self.store.put_doc(endpoint.site_id, KIND, endpoint.id, data)
            if data.get("enabled") is False:
                self.wake()
