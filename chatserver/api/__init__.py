"""The REST API under ``/api/v1/``: per-site keys, conversations, visitors, reports.

* ``keys``           API keys: made and revoked by admins, stored hashed, per-key rate
* ``endpoint``       what every request goes through: key, rate, method, errors
* ``errors``         the JSON errors, with the protocol's codes
* ``params``         checks of bodies and query parameters
* ``conversations``  list, one, its entries by offset
* ``actions``        post a message or note as an agent, assign, tag, close
* ``visitors``       one visitor, its page views
* ``reports``        the reports' tables
* ``openapi``        the OpenAPI 3.1 document (``schemas``: its components),
                     served at ``/api/v1/openapi.json``
* ``routes``         the routes (``web/app.py`` mounts them)

docs/integrations.md ("REST API") is the user's guide; the admin page that
makes keys is ``agent_console/admin/api_keys.py``.
"""
