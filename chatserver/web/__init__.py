"""The HTTP and WebSocket edge: everything that speaks ASGI.

``app.py`` ``create_app`` (the Starlette application around a node) and its
routes; ``ws.py`` the chat WebSocket endpoint and ``ChatApp``;
``uvicorn_ws.py`` the uvicorn protocol that writes frames synchronously and
reads whole frames itself; ``files.py`` ``/static``, ``/widget`` and
``/widget.js``; ``api.py`` ``/api/login`` and ``/api/logout``; ``ops.py``
``/readyz`` and ``/metrics``; ``demo.py`` the demo shop at ``/demo/`` and the
demo site's names.  Nothing below ``web/`` is imported by the core (``hub``,
``node``, the features): the edge depends on them, never the other way.
"""
