"""File attachments: upload over HTTP, post into a conversation, serve back signed.

The flow (docs/widget.md, docs/protocol.md §4.4):

1. ``POST /api/attachments?name=<file name>`` with the file as the raw body
   and ``Authorization: Bearer <visitor or agent token>``.  The type is
   found from the first bytes (PNG, JPEG, GIF, WebP, PDF), never from the
   client's ``Content-Type``; anything else (SVG, HTML, ...) is ``415``.  At
   most ``MAX_ATTACHMENT_BYTES``.  The bytes go to the BlobStore, the
   metadata to the Store; the answer is ``{id, name, type, size, url}``.
2. An ``attach`` frame posts it into a conversation as a ``text`` entry whose
   ``body`` is the file name and whose ``data.attachment`` is
   ``{id, name, type, size}``.  Only its uploader may post it, and only into
   one conversation (the first it was posted into).
3. Entries reach clients with ``data.attachment.url`` added: a relative
   ``attachments/<id>?exp=<unix time>&sig=<hmac>`` signed with the server
   secret, valid ``URL_TTL`` (rounded up to the hour, so it stays the same
   for a while and browsers can cache), issued afresh on every delivery
   (live and ``history``).  Entries reach only the conversation's
   participants, so only they get working URLs; an ``<img>`` on the shop's
   page can use one without sending any header.
4. ``GET /attachments/<id>?exp&sig`` checks the signature and the expiry and
   answers with the stored type, ``nosniff``, a ``default-src 'none';
   sandbox`` CSP and, for PDFs, ``Content-Disposition: attachment``.

Bodies are held in memory while they arrive and while they are stored, so the
process has one ``UploadBudget`` (``--upload-memory``, default 64 MiB) for the
bytes of all uploads in flight: an upload that would pass it is ``503`` with
``Retry-After``, before its body is read when it declares a length.

The modules: ``records.py`` what a stored file is (accepted types found from
the first bytes, safe names, signed URLs); ``budget.py`` the process's
``UploadBudget``; ``endpoints.py`` ``POST /api/attachments`` and ``GET
/attachments/<id>``; ``sweep.py`` the deletion of uploads never posted
(``--upload-ttl``); ``attach.py`` the visitor's and the agent's ``attach``
frame.  What the rest of chatserver uses is re-exported here.
"""

from .attach import attach_agent, attach_visitor
from .budget import UploadBudget
from .endpoints import routes
from .records import MAX_ATTACHMENT_BYTES, URL_TTL, signed_url, with_url
from .sweep import sweeper

__all__ = [
    "MAX_ATTACHMENT_BYTES",
    "URL_TTL",
    "UploadBudget",
    "attach_agent",
    "attach_visitor",
    "routes",
    "signed_url",
    "sweeper",
    "with_url",
]
