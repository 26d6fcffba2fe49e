"""The sites domain of the Store: sites, their identity secret and their documents."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..types import (
    JSON,
    DepartmentId,
    Doc,
    Site,
    SiteId,
    SiteSettings,
)


class SiteStore(Protocol):
    """The sites of a deployment, each site's identity secret and its documents.

    * ``create_site`` gives every site a new id and a new widget key;
      ``save_site`` overwrites what the admin may change.
    * **Identity secret.** ``identity_secret`` creates a site's secret on first
      use, atomically (two concurrent first calls return the same secret).
    * **Site documents** (canned responses, triggers, ...).  ``put_doc``
      creates or replaces one document of a site's ``kind`` (keeping its
      ``created_at``); ``list_docs`` returns a kind's documents oldest first.
      Kinds and ids are ids (at most 64 characters); what a document means is
      the caller's business.
    """

    async def create_site(
        self,
        name: str,
        allowed_origins: Sequence[str] = (),
        settings: SiteSettings | None = None,
        departments: Sequence[DepartmentId] = (),
    ) -> Site: ...

    async def get_site(self, site_id: SiteId) -> Site | None: ...

    async def site_by_key(self, key: str) -> Site | None: ...

    async def save_site(self, site: Site) -> None:
        """Overwrite name, origins, settings and departments of ``site.id``."""

    async def list_sites(self) -> list[Site]: ...

    async def identity_secret(self, site_id: SiteId, *, rotate: bool = False) -> str:
        """The site's identity secret (hex), created on first use or replaced
        with ``rotate``.  Raises ``NotFound`` for an unknown site."""

    async def put_doc(self, site_id: SiteId, kind: str, doc_id: str, data: JSON) -> Doc:
        """Create or replace a document; ``created_at`` survives a replace."""

    async def get_doc(self, site_id: SiteId, kind: str, doc_id: str) -> Doc | None: ...

    async def list_docs(self, site_id: SiteId, kind: str) -> list[Doc]:
        """The site's documents of ``kind``, oldest ``created_at`` first."""

    async def delete_doc(self, site_id: SiteId, kind: str, doc_id: str) -> bool:
        """Remove a document; ``True`` if it existed."""
