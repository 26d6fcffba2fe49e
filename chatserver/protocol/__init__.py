"""The protocol core, sans-I/O: what crosses the wire and nothing that moves bytes.

* ``codec.py``: ``Connection`` (one connection's protocol state machine),
  the msgpack and JSON codecs, ``encode``;
* ``frames.py``: every client frame's schema, its validation into a
  ``Frame``, the wire limits;
* ``wire.py``: every server frame's shape, declared once (``docs/protocol.md``
  is checked against it), over ``shapes.py``: the shapes nested in them.

Nothing here imports asyncio, sockets or the web stack (``tests/unit/test_imports.py``).
"""
