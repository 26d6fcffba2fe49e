"""The admin pages (role ``admin``): agents, departments, canned responses, webhooks, site,
privacy, audit trail, API keys, e-mail.

Every page acts on the signed-in admin's own site: a record named in a URL
is looked up and checked against that site, and another site's id gets the
same 404 as an unknown one.  Every form posts through ``guard`` (session,
role, CSRF token and origin checked), is validated by ``forms``, shows its
errors next to the fields with the entered values kept (status 422), and on
success redirects (POST-redirect-GET) to a page that shows a one-time
confirmation carried by a short-lived signed cookie.

Changes are written to the Store, then handed to ``chatserver.control``,
which updates routing and tells every process (through the broker) to drop
its cached site or to refresh, or close, the agent's live connections.
``docs/admin.md`` says what takes effect when.
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from . import agents, api_keys, audit, canned, departments, erase, mail, privacy, site, webhooks

routes: list[BaseRoute] = [
    *site.routes,
    *agents.routes,
    *departments.routes,
    *canned.routes,
    *privacy.routes,
    *erase.routes,
    *audit.routes,
    *api_keys.routes,
    *webhooks.routes,
    *mail.routes,
]
