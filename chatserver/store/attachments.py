"""The attachments domain of the Store: uploaded files' records and byte counters."""

from __future__ import annotations

from typing import Protocol

from ..types import (
    Attachment,
    ConversationId,
    SiteId,
)


class AttachmentStore(Protocol):
    """Uploaded files' records (their bytes live in the BlobStore).

    * ``create_attachment``, ``bind_attachment`` and
      ``delete_unposted_attachment`` keep each site's ``attachment_bytes`` in
      step atomically (the counters of group ``ATTACHMENT_BYTES``);
      ``delete_unposted_attachment`` never deletes a bound attachment, and of
      concurrent calls for one id at most one deletes.
    * ``bind_attachment`` binds once: of concurrent binds one conversation
      wins and every call returns it.
    """

    async def create_attachment(
        self, site_id: SiteId, uploader: str, name: str, content_type: str, size: int
    ) -> Attachment:
        """Record an uploaded file (its bytes are already in the BlobStore)."""

    async def get_attachment(self, attachment_id: str) -> Attachment | None: ...

    async def bind_attachment(self, attachment_id: str, conv_id: ConversationId) -> Attachment:
        """Set the attachment's conversation if it has none; return the record.

        An attachment already bound keeps its conversation (compare the
        returned ``conv_id``).  Raises ``NotFound`` for an unknown id.
        """

    async def attachment_bytes(self, site_id: SiteId) -> tuple[int, int]:
        """The site's attachment bytes: ``(unposted, total)``.

        ``unposted`` counts the files no entry holds yet (``bind_attachment``
        not called), ``total`` every stored file; both move in the same
        atomic step as the write that changes them.
        """

    async def unposted_attachments(self, before: float, limit: int = 100) -> list[Attachment]:
        """Attachments never bound, created before ``before`` (Unix time), oldest first."""

    async def delete_unposted_attachment(self, attachment_id: str) -> Attachment | None:
        """Delete the attachment's record if it is still unbound, atomically.

        Returns the deleted record (the caller deletes its blob), or ``None``
        when it is bound or gone (so a concurrent sweep, or a post that won
        the race, makes this a no-op).
        """
